// ipckit/deadline.hpp — the time limit of every blocking call.
//
// `Deadline` is a point on the monotonic clock, so a change of the wall clock never shortens
// or lengthens a wait. It includes ipckit/status.hpp (`Status`, `IoResult`), the outcomes a
// call with a deadline returns.
//
// Example:
//     auto deadline = ipckit::Deadline::after(std::chrono::milliseconds(500));
//     auto result = reader.read_some(buffer, deadline);
//     if (result.status == ipckit::Status::timed_out) { ... }
//
// Thread-safety: a plain value.
#pragma once

#include <chrono>
#include <ctime>

#include "ipckit/status.hpp"

namespace ipckit {

class Deadline {
public:
    using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC on Linux

    // Waits forever.
    [[nodiscard]] static Deadline never() noexcept { return Deadline(Clock::time_point::max()); }
    // Does not wait at all: the non-blocking form of an operation.
    [[nodiscard]] static Deadline immediate() noexcept { return Deadline(Clock::time_point::min()); }
    [[nodiscard]] static Deadline after(Clock::duration timeout) noexcept;
    [[nodiscard]] static Deadline at(Clock::time_point when) noexcept { return Deadline(when); }

    [[nodiscard]] bool is_never() const noexcept { return when_ == Clock::time_point::max(); }
    [[nodiscard]] bool is_immediate() const noexcept { return when_ == Clock::time_point::min(); }
    [[nodiscard]] bool expired() const noexcept;
    [[nodiscard]] Clock::duration remaining() const noexcept;  // zero when expired
    [[nodiscard]] Clock::time_point when() const noexcept { return when_; }
    // For poll(2): -1 waits forever; a partial millisecond rounds up so a wait never ends early.
    [[nodiscard]] int poll_timeout_ms() const noexcept;
    // Absolute CLOCK_MONOTONIC time, for the calls that take one (futex, sem_clockwait).
    [[nodiscard]] timespec monotonic_timespec() const noexcept;

private:
    explicit Deadline(Clock::time_point when) noexcept : when_(when) {}
    Clock::time_point when_;
};

}  // namespace ipckit
