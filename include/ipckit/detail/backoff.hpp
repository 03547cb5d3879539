// ipckit/detail/backoff.hpp — the one back-off of ipckit: how a wait sleeps where the kernel
// offers nothing to wait on (a System V queue has no timed msgrcv, a FIFO no "reader came"
// event, an unconnected datagram socket no "room in the peer's queue" poll).
//
// Internal: used by the mechanisms and the channels. Each pause is twice the last, from the
// profile's first to its longest, and never runs past the deadline. Two profiles, so every
// wait of a kind costs the same:
//   Backoff::for_message()  20 µs → 2 ms   a message or room for one, expected soon
//   Backoff::for_peer()      1 ms → 20 ms  another process: to open a FIFO, drain a queue
//
// Example:
//     for (auto backoff = detail::Backoff::for_message(); backoff.pause(deadline);)
//         if (auto done = attempt()) return *done;
//     return {Status::timed_out, 0};
//
// Thread-safety: a value used by one thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

#include "ipckit/deadline.hpp"

namespace ipckit::detail {

class Backoff {
public:
    using Duration = Deadline::Clock::duration;

    [[nodiscard]] static constexpr Backoff for_message() noexcept {
        return {std::chrono::microseconds(20), std::chrono::milliseconds(2)};
    }
    [[nodiscard]] static constexpr Backoff for_peer() noexcept {
        return {std::chrono::milliseconds(1), std::chrono::milliseconds(20)};
    }

    // Sleeps the next pause, cut short at the deadline; false, without sleeping, once the
    // deadline has passed (there is no point trying again).
    bool pause(const Deadline& deadline) {
        if (deadline.expired()) return false;
        std::this_thread::sleep_for(std::min(pause_, deadline.remaining()));
        pause_ = std::min(pause_ * 2, longest_);
        return true;
    }

private:
    constexpr Backoff(Duration first, Duration longest) noexcept : pause_(first), longest_(longest) {}

    Duration pause_;
    Duration longest_;
};

}  // namespace ipckit::detail
