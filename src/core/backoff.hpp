// backoff.hpp — the one wait-and-retry policy of ipckit: how a wait sleeps where
// the kernel offers nothing to wait on (a System V queue has no timed msgrcv, a FIFO no "reader
// came" event, an unconnected datagram socket no "room in the peer's queue" poll, a name no
// "created now" event).
//
// Internal: used by every loop that waits to open, attach or receive. Each pause is twice the
// last, from the profile's first to its longest, and never runs past the deadline. Two
// profiles, so every wait of a kind costs the same:
//   Backoff::for_message()  20 µs → 2 ms   a message or room for one, expected soon
//   Backoff::for_peer()    100 µs → 20 ms  another process: to create or format an object, to
//                                          listen, open a FIFO, drain a queue
// `retry_while_absent` retries an open while its object does not exist yet; an opener gives a
// creator kFormatGrace to size and format what it made.
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
#include <system_error>
#include <thread>

#include "ipckit/deadline.hpp"
#include "ipckit/error.hpp"

namespace ipckit::detail {

class Backoff {
public:
    using Duration = Deadline::Clock::duration;

    [[nodiscard]] static constexpr Backoff for_message() noexcept {
        return {std::chrono::microseconds(20), std::chrono::milliseconds(2)};
    }
    [[nodiscard]] static constexpr Backoff for_peer() noexcept {
        return {std::chrono::microseconds(100), std::chrono::milliseconds(20)};
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

// An opener of a shared region may arrive between the creator's create and its format (or its
// size): it looks again, for_peer, this long.
inline constexpr std::chrono::seconds kFormatGrace{1};

// Runs `open` until it returns, retrying (for_peer) while it throws that its object is absent:
// no such file or name, or a socket nobody listens on yet. So peers may start in either order.
// Other errors, and the last one at the deadline, are thrown. With Deadline::never() the first
// absence is final: nobody may ever come.
template <class Open>
auto retry_while_absent(Deadline deadline, Open open) {
    for (auto backoff = Backoff::for_peer();;) {
        try {
            return open();
        } catch (const Error& e) {
            const bool absent =
                e.code() == std::errc::connection_refused || e.code() == std::errc::no_such_file_or_directory;
            if (!absent || deadline.is_never() || !backoff.pause(deadline)) throw;
        }
    }
}

}  // namespace ipckit::detail
