// ipckit/status.hpp — the expected outcomes of an operation, as values.
//
// `Status` is what a blocking or non-blocking operation returns when it did not fail: it
// either completed (`ok`) or ended for an expected reason (would block, timed out, closed).
// `IoResult` carries it with the number of bytes (or messages) moved. Failures are not
// statuses: they throw `ipckit::Error` (error.hpp).
//
// Example:
//     const ipckit::IoResult r = reader.read_some(buffer, ipckit::Deadline::after(500ms));
//     if (r.status == ipckit::Status::timed_out) { ... }
//     std::cout << ipckit::to_string(r.status);               // "timed out"
//
// Thread-safety: plain values. Errors: none.
#pragma once

#include <cstddef>
#include <string_view>

namespace ipckit {

enum class Status {
    ok,           // the operation completed
    would_block,  // non-blocking: nothing could be done now
    timed_out,    // the deadline passed first
    closed,       // the peer closed or died, or the object was removed: nothing more will come
};

[[nodiscard]] std::string_view to_string(Status status) noexcept;

// A status with the number of bytes (or messages) moved.
struct IoResult {
    Status status = Status::ok;
    std::size_t bytes = 0;

    [[nodiscard]] bool ok() const noexcept { return status == Status::ok; }
};

}  // namespace ipckit
