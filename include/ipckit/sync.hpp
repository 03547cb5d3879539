// ipckit/sync.hpp — synchronisation that lives inside shared memory.
//
// The lecture: "Shared memory doesn't support synchronization mechanism. It's the
// responsibility of the programmer to synchronize access." These are the tools for it. Each
// is a small object placed in a shared region (with `ipckit::construct_at` by the creator,
// `ipckit::object_at` by everyone else) and used by every process that maps the region.
//
//   ShmSemaphore  a counting semaphore on a futex: `post` adds a unit, `wait` takes one,
//                 sleeping while there is none. `post` makes no system call when nobody
//                 sleeps (the semaphore counts its sleepers). The classic answer to the
//                 producer–consumer problem: one semaphore counts free slots, one full slots.
//   ShmEvent      a flag others can sleep on until it is set (manual reset: it stays set
//                 until `clear`). For "the data is ready" and "shut down".
//   RobustMutex   a process-shared pthread mutex that survives its owner's death: if a
//                 process dies holding it, the next `lock` succeeds and says so
//                 (`previous_owner_died`), so the new owner can repair the protected data
//                 and call `make_consistent()`. Unlocking without doing so leaves the mutex
//                 unusable (every later lock throws ENOTRECOVERABLE), as POSIX specifies.
//
// Memory ordering: everything a process wrote before `post` / `set` / `unlock` is visible
// to the process that then returns from `wait` / `lock` (release → acquire). That is what
// makes the data beside the primitive safe to read: "how can the writer ensure that the
// reader reads it?" — the writer posts after writing; the reader reads after waiting.
//
// A process that dies while waiting on a ShmSemaphore or ShmEvent leaves its sleeper count
// behind; the only cost is that later posts make a (harmless) futex_wake system call.
// A process that dies while holding a RobustMutex is what the robust mutex is for; a process
// that dies holding a semaphore unit just never returns it (a semaphore has no owner).
//
// Example:
//     struct Mailbox {
//         ipckit::ShmSemaphore ready;       // 0 units: nothing to read yet
//         std::uint64_t value;
//         using shm_fields = ipckit::ShmFields<ipckit::ShmSemaphore, std::uint64_t>;
//     };
//     auto region = ipckit::Mapping::anonymous_shared(4096);
//     auto& box = ipckit::construct_at<Mailbox>(region.bytes(), 0);
//     if (fork() == 0) { box.value = 42; box.ready.post(); _exit(0); }
//     box.ready.wait();   // now box.value == 42
//
// Errors: a failing futex or pthread call throws `ipckit::Error`; a timeout is a value
// (`Status::timed_out`, or an empty optional), never an exception.
// Thread-safety: every operation may be called from any thread of any process mapping the object.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <optional>

#include "ipckit/deadline.hpp"
#include "ipckit/shm_safe.hpp"

namespace ipckit {

class ShmSemaphore {
public:
    explicit ShmSemaphore(std::uint32_t initial = 0) noexcept : count_(initial), sleepers_(0) {}
    ShmSemaphore(const ShmSemaphore&) = delete;
    ShmSemaphore& operator=(const ShmSemaphore&) = delete;

    // Adds `units` (wakes up to that many sleepers). Throws std::errc::value_too_large if the
    // count would pass 2^32 - 1.
    void post(std::uint32_t units = 1);
    // Takes one unit, sleeping while there is none.
    void wait();
    // Takes one unit if there is one, without waiting.
    [[nodiscard]] bool try_wait() noexcept;
    // ok: took a unit; timed_out: the deadline passed; would_block: Deadline::immediate() and none.
    [[nodiscard]] Status wait(Deadline deadline);

    [[nodiscard]] std::uint32_t value() const noexcept { return count_.load(std::memory_order_relaxed); }
    // Processes (or threads) currently sleeping, or about to; for tests and diagnostics.
    [[nodiscard]] std::uint32_t sleepers() const noexcept {
        return sleepers_.load(std::memory_order_relaxed);
    }

    using shm_fields = ShmFields<std::atomic<std::uint32_t>, std::atomic<std::uint32_t>>;

private:
    std::atomic<std::uint32_t> count_;     // the futex word: units available
    std::atomic<std::uint32_t> sleepers_;  // lets post skip futex_wake when nobody sleeps
};

class ShmEvent {
public:
    ShmEvent() noexcept : state_(0), sleepers_(0) {}
    ShmEvent(const ShmEvent&) = delete;
    ShmEvent& operator=(const ShmEvent&) = delete;

    // Sets the flag and wakes every sleeper.
    void set();
    void clear() noexcept;
    [[nodiscard]] bool is_set() const noexcept { return state_.load(std::memory_order_acquire) != 0; }
    // Returns ok once the flag is set (at once if it already is), timed_out / would_block otherwise.
    [[nodiscard]] Status wait(Deadline deadline = Deadline::never());

    using shm_fields = ShmFields<std::atomic<std::uint32_t>, std::atomic<std::uint32_t>>;

private:
    std::atomic<std::uint32_t> state_;  // the futex word: 0 clear, 1 set
    std::atomic<std::uint32_t> sleepers_;
};

class RobustMutex {
public:
    enum class LockOutcome {
        acquired,             // the usual case
        previous_owner_died,  // acquired, but the owner died holding it: repair, then make_consistent()
    };

    // Initialises a process-shared robust mutex in place (construct it with construct_at).
    RobustMutex();
    RobustMutex(const RobustMutex&) = delete;
    RobustMutex& operator=(const RobustMutex&) = delete;

    [[nodiscard]] LockOutcome lock();
    // Empty when another holder has it (try_lock) or the deadline passed.
    [[nodiscard]] std::optional<LockOutcome> try_lock();
    [[nodiscard]] std::optional<LockOutcome> lock(Deadline deadline);
    void unlock();
    // Declares the protected state repaired after `previous_owner_died`.
    void make_consistent();

    using shm_fields = ShmFields<pthread_mutex_t>;

private:
    [[nodiscard]] std::optional<LockOutcome> outcome(int result, const char* call);

    pthread_mutex_t mutex_;
};

// Holds a RobustMutex for a scope.
//
//     ipckit::RobustLock lock(shared.mutex);
//     if (lock.previous_owner_died()) { repair(shared.data); lock.make_consistent(); }
class RobustLock {
public:
    explicit RobustLock(RobustMutex& mutex)
        : mutex_(mutex), owner_died_(mutex.lock() == RobustMutex::LockOutcome::previous_owner_died) {}
    RobustLock(const RobustLock&) = delete;
    RobustLock& operator=(const RobustLock&) = delete;
    ~RobustLock() {
        try {
            mutex_.unlock();
        } catch (...) {  // only if someone else unlocked it meanwhile: nothing left to release
        }
    }

    [[nodiscard]] bool previous_owner_died() const noexcept { return owner_died_; }
    void make_consistent() {
        mutex_.make_consistent();
        owner_died_ = false;
    }

private:
    RobustMutex& mutex_;
    bool owner_died_;
};

static_assert(ShmSafe<ShmSemaphore>);
static_assert(ShmSafe<ShmEvent>);
static_assert(ShmSafe<RobustMutex>);

}  // namespace ipckit
