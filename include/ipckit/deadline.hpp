// ipckit/deadline.hpp — expected outcomes and time limits shared by every blocking call.
//
// `Status` is what a blocking or non-blocking operation returns when it did not fail:
// it either completed (`ok`) or ended for an expected reason. `Deadline` is a point on the
// monotonic clock, so a change of the wall clock never shortens or lengthens a wait.
//
// Example:
//     auto deadline = ipckit::Deadline::after(std::chrono::milliseconds(500));
//     auto result = reader.read_some(buffer, deadline);
//     if (result.status == ipckit::Status::timed_out) { ... }
//
// Thread-safety: both are plain values.
#pragma once

#include <chrono>
#include <cstddef>
#include <ctime>
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
