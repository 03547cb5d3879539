#include "futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "ipckit/error.hpp"

namespace ipckit::detail {
namespace {

long futex(std::atomic<std::uint32_t>& word, int op, std::uint32_t value, const timespec* timeout,
           std::uint32_t mask) {
    // std::atomic<uint32_t> is layout-compatible with uint32_t (asserted in the header).
    return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op, value, timeout, nullptr, mask);
}

}  // namespace

Status futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline) {
    if (deadline.is_immediate()) return Status::timed_out;
    long r;
    if (deadline.is_never()) {
        r = futex(word, FUTEX_WAIT, expected, nullptr, 0);
    } else {
        // FUTEX_WAIT_BITSET takes an absolute time, on CLOCK_MONOTONIC unless
        // FUTEX_CLOCK_REALTIME is given: a wall-clock change cannot move the deadline.
        const timespec when = deadline.monotonic_timespec();
        r = futex(word, FUTEX_WAIT_BITSET, expected, &when, FUTEX_BITSET_MATCH_ANY);
    }
    if (r == 0) return Status::ok;
    switch (errno) {
        case EAGAIN:
            return Status::ok;  // the value had already changed
        case EINTR:
            return Status::ok;  // a signal ran; the caller re-checks its condition
        case ETIMEDOUT:
            return Status::timed_out;
        default:
            throw_errno("futex(FUTEX_WAIT)", "shared word");
    }
}

int futex_wake(std::atomic<std::uint32_t>& word, int count) {
    const long r = futex(word, FUTEX_WAKE, static_cast<std::uint32_t>(count), nullptr, 0);
    if (r < 0) throw_errno("futex(FUTEX_WAKE)", "shared word");
    return static_cast<int>(r);
}

}  // namespace ipckit::detail
