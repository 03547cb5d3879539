// ipckit/loan.hpp — what zero-copy calls return: record space lent to fill in place (`Loan`)
// and a record shown in place (`RecordView`).
//
// Returned by `Sender::loan` / `Receiver::read` (channel.hpp) and by the rings' own `loan` and
// `read` (ring.hpp, lanes.hpp, topic.hpp). The span points into shared memory: valid until the
// matching `commit` or `release`, or until the end that lent it goes away.
//
// Example:
//     auto loan = tx.loan(64, ipckit::Deadline::after(1s));
//     if (loan.ok()) { std::memcpy(loan.buffer.data(), "hi", 2); tx.commit(2); }
//     auto record = rx.read();
//     if (record.ok()) { use(record.message); rx.release(); }
//
// Errors: none here; `status` says whether there is a span (ok) or why not (would_block,
// timed_out, closed). Thread-safety: plain values.
#pragma once

#include <cstddef>
#include <span>

#include "ipckit/status.hpp"

namespace ipckit {

// What `loan` gives: on ok, `buffer` is writable record space inside the ring.
struct Loan {
    Status status = Status::ok;
    std::span<std::byte> buffer;
    [[nodiscard]] bool ok() const noexcept { return status == Status::ok; }
};

// What `read` gives: on ok, `message` is the next record in place, valid until `release`.
struct RecordView {
    Status status = Status::ok;
    std::span<const std::byte> message;
    [[nodiscard]] bool ok() const noexcept { return status == Status::ok; }
};

}  // namespace ipckit
