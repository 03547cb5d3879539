#include "ipckit/deadline.hpp"

#include <algorithm>
#include <limits>

namespace ipckit {

Deadline Deadline::after(Clock::duration timeout) noexcept {
    const auto now = Clock::now();
    if (timeout <= Clock::duration::zero()) return Deadline(now);
    // Saturate instead of overflowing for absurdly long timeouts.
    if (timeout > Clock::time_point::max() - now) return never();
    return Deadline(now + timeout);
}

bool Deadline::expired() const noexcept {
    if (is_never()) return false;
    return Clock::now() >= when_;
}

Deadline::Clock::duration Deadline::remaining() const noexcept {
    if (is_never()) return Clock::duration::max();
    const auto now = Clock::now();
    return when_ > now ? when_ - now : Clock::duration::zero();
}

int Deadline::poll_timeout_ms() const noexcept {
    if (is_never()) return -1;
    const auto left = remaining();
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return static_cast<int>(std::min<long long>(ms, std::numeric_limits<int>::max()));
}

timespec Deadline::monotonic_timespec() const noexcept {
    // steady_clock is CLOCK_MONOTONIC in libstdc++, so its epoch is the kernel's.
    const auto since = std::max(when_, Clock::time_point{}).time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(secs.count());
    ts.tv_nsec =
        static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(since - secs).count());
    return ts;
}

}  // namespace ipckit
