#include "futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

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

namespace {

// futex_waitv(2): its uapi struct, spelled here so older kernel headers still build.
struct FutexWaiter {
    std::uint64_t val;
    std::uint64_t uaddr;
    std::uint32_t flags;
    std::uint32_t reserved;
};
constexpr long kSysFutexWaitv = 449;
constexpr std::uint32_t kFutex2SizeU32 = 0x02;  // shared (no FUTEX_PRIVATE_FLAG): other processes wake us

std::atomic<bool> futex_waitv_missing{false};

}  // namespace

WaitAny futex_wait_any(std::atomic<std::uint32_t>* const* words, const std::uint32_t* expected,
                       std::size_t count, Deadline deadline) {
    if (futex_waitv_missing.load(std::memory_order_relaxed) || count > kMaxWaitAny)
        return WaitAny::not_supported;
    if (deadline.is_immediate()) return WaitAny::timed_out;
    FutexWaiter waiters[kMaxWaitAny];
    for (std::size_t i = 0; i < count; ++i)
        waiters[i] = {expected[i], reinterpret_cast<std::uint64_t>(words[i]), kFutex2SizeU32, 0};
    timespec when{};
    if (!deadline.is_never()) when = deadline.monotonic_timespec();
    if (::syscall(kSysFutexWaitv, waiters, static_cast<unsigned>(count), 0u,
                  deadline.is_never() ? nullptr : &when, CLOCK_MONOTONIC) >= 0)
        return WaitAny::ok;
    switch (errno) {
        case EAGAIN:
        case EINTR:
        case EFAULT:  // a word's memory went (unmapped, or a file cut under it): look again
            return WaitAny::ok;
        case ETIMEDOUT:
            return WaitAny::timed_out;
        default:
            // ENOSYS (before 5.16), or a seccomp filter: sleep in slices from now on rather than
            // spin on an error.
            futex_waitv_missing.store(true, std::memory_order_relaxed);
            return WaitAny::not_supported;
    }
}

int futex_wake(std::atomic<std::uint32_t>& word, int count) {
    const long r = futex(word, FUTEX_WAKE, static_cast<std::uint32_t>(count), nullptr, 0);
    if (r < 0) throw_errno("futex(FUTEX_WAKE)", "shared word");
    return static_cast<int>(r);
}

}  // namespace ipckit::detail
