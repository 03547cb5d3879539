#include "ipckit/sync.hpp"

#include <errno.h>
#include <time.h>

#include <climits>
#include <string>

#include "futex.hpp"
#include "ipckit/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ipckit {
namespace {

// Spinning first saves two system calls when the other side is about to post, which on a
// busy peer is often. Kept short: with two cores, a long spin steals the time the poster
// needs to run.
constexpr int spin_attempts = 64;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

}  // namespace

// ---- ShmSemaphore ---------------------------------------------------------------------

void ShmSemaphore::post(std::uint32_t units) {
    if (units == 0) return;
    std::uint32_t current = count_.load(std::memory_order_relaxed);
    do {
        if (current > UINT32_MAX - units) {
            throw_error(std::errc::value_too_large, "ShmSemaphore::post: the count " +
                                                        std::to_string(current) + " + " +
                                                        std::to_string(units) + " would pass 2^32 - 1");
        }
        // seq_cst, not just release: the store to count_ and the load of sleepers_ below form
        // a Dekker pair with the waiter's increment of sleepers_ and its re-check of count_.
        // With weaker orders each side could miss the other's write and a sleeper be stranded.
    } while (!count_.compare_exchange_weak(current, current + units, std::memory_order_seq_cst,
                                           std::memory_order_relaxed));
    if (sleepers_.load(std::memory_order_seq_cst) != 0) {
        detail::futex_wake(count_, units > INT_MAX ? INT_MAX : static_cast<int>(units));
    }
}

bool ShmSemaphore::try_wait() noexcept {
    std::uint32_t current = count_.load(std::memory_order_relaxed);
    while (current != 0) {
        // acquire: pairs with post's release, so what the poster wrote before posting is visible.
        if (count_.compare_exchange_weak(current, current - 1, std::memory_order_acquire,
                                         std::memory_order_relaxed))
            return true;
    }
    return false;
}

void ShmSemaphore::wait() {
    (void)wait(Deadline::never());
}

Status ShmSemaphore::wait(Deadline deadline) {
    if (try_wait()) return Status::ok;
    if (deadline.is_immediate()) return Status::would_block;
    for (int i = 0; i < spin_attempts; ++i) {
        cpu_relax();
        if (count_.load(std::memory_order_relaxed) != 0 && try_wait()) return Status::ok;
    }
    for (;;) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        Status slept = Status::ok;
        // The kernel re-reads count_ under its own lock, so a post between our check and the
        // sleep makes futex_wait return at once instead of sleeping through it.
        if (count_.load(std::memory_order_seq_cst) == 0) slept = detail::futex_wait(count_, 0, deadline);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
        if (try_wait()) return Status::ok;
        if (slept == Status::timed_out || deadline.expired()) return Status::timed_out;
    }
}

// ---- ShmEvent -------------------------------------------------------------------------

void ShmEvent::set() {
    // seq_cst: the same Dekker pairing with the sleeper as ShmSemaphore::post.
    if (state_.exchange(1, std::memory_order_seq_cst) == 1) return;
    if (sleepers_.load(std::memory_order_seq_cst) != 0) detail::futex_wake(state_, INT_MAX);
}

void ShmEvent::clear() noexcept {
    state_.store(0, std::memory_order_relaxed);
}

Status ShmEvent::wait(Deadline deadline) {
    if (is_set()) return Status::ok;
    if (deadline.is_immediate()) return Status::would_block;
    for (;;) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        Status slept = Status::ok;
        if (state_.load(std::memory_order_seq_cst) == 0) slept = detail::futex_wait(state_, 0, deadline);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
        if (is_set()) return Status::ok;
        if (slept == Status::timed_out || deadline.expired()) return Status::timed_out;
    }
}

// ---- RobustMutex ----------------------------------------------------------------------

RobustMutex::RobustMutex() {
    pthread_mutexattr_t attributes;
    int r = ::pthread_mutexattr_init(&attributes);
    if (r != 0) throw_errno("pthread_mutexattr_init", "robust mutex", r);
    // PROCESS_SHARED: the mutex is found through shared memory, not a process-local address.
    // ROBUST: the kernel walks a dying thread's list of held robust mutexes and marks each
    // FUTEX_OWNER_DIED, so the next locker gets EOWNERDEAD instead of waiting forever.
    r = ::pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    if (r == 0) r = ::pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    if (r == 0) r = ::pthread_mutex_init(&mutex_, &attributes);
    ::pthread_mutexattr_destroy(&attributes);
    if (r != 0) throw_errno("pthread_mutex_init", "robust mutex", r);
}

std::optional<RobustMutex::LockOutcome> RobustMutex::outcome(int result, const char* call) {
    switch (result) {
        case 0:
            return LockOutcome::acquired;
        case EOWNERDEAD:
            return LockOutcome::previous_owner_died;
        case EBUSY:
        case ETIMEDOUT:
            return std::nullopt;
        case ENOTRECOVERABLE:
            throw Error(std::error_code(result, std::system_category()),
                        std::string(call) +
                            "(robust mutex): a previous owner died holding it and the "
                            "next owner unlocked it without make_consistent()");
        default:
            throw_errno(call, "robust mutex", result);
    }
}

RobustMutex::LockOutcome RobustMutex::lock() {
    // pthread_mutex_lock never returns EBUSY or ETIMEDOUT, so there is always a value.
    return *outcome(::pthread_mutex_lock(&mutex_), "pthread_mutex_lock");
}

std::optional<RobustMutex::LockOutcome> RobustMutex::try_lock() {
    return outcome(::pthread_mutex_trylock(&mutex_), "pthread_mutex_trylock");
}

std::optional<RobustMutex::LockOutcome> RobustMutex::lock(Deadline deadline) {
    if (deadline.is_never()) return lock();
    if (deadline.is_immediate()) return try_lock();
    const timespec when = deadline.monotonic_timespec();
    return outcome(::pthread_mutex_clocklock(&mutex_, CLOCK_MONOTONIC, &when), "pthread_mutex_clocklock");
}

void RobustMutex::unlock() {
    const int r = ::pthread_mutex_unlock(&mutex_);
    if (r != 0) throw_errno("pthread_mutex_unlock", "robust mutex", r);
}

void RobustMutex::make_consistent() {
    const int r = ::pthread_mutex_consistent(&mutex_);
    if (r != 0) throw_errno("pthread_mutex_consistent", "robust mutex", r);
}

}  // namespace ipckit
