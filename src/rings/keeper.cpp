// The keeper thread and its robust futex list (keeper.hpp). Why a thread of its own: the kernel
// walks a *thread's* robust list when that thread exits, and an end belongs to the process, not
// to the (perhaps short-lived) thread that attached it. The keeper only sleeps (and, for a wait
// set, turns a watched holder word's change into an eventfd write), so it exits only
// with its process (a death, exit or exec), and then the kernel marks every holder word it still
// holds FUTEX_OWNER_DIED and wakes a sleeper on each.
#include "keeper.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <mutex>
#include <vector>

#include "core/quiet_thread.hpp"
#include "ipckit/error.hpp"
#include "sync/futex.hpp"
#include "wait.hpp"

namespace ipckit::detail::ring {
namespace {

// The kernel's ROBUST_LIST_LIMIT: it walks no more entries than this at a death.
constexpr std::size_t kMaxHeld = 2048;
// The kernel finds a holder word from its list link: holder is 8 bytes before robust_next.
constexpr long kFutexOffset = static_cast<long>(offsetof(EndpointLine, holder)) -
                              static_cast<long>(offsetof(EndpointLine, robust_next));
constexpr std::size_t kKeeperStack = 64 * 1024;

struct Keeper {
    std::mutex mutex;
    robust_list_head head{};
    pid_t tid = 0;  // the keeper's TID in its own PID namespace; 0 until started
    // The held lines, oldest first: the list in shared memory is never read back (a peer can
    // write the links there), only written from this copy.
    // Each with the epoch its claim took, so a release names the hold it ends.
    struct Held {
        EndpointLine* line;
        std::uint32_t epoch;
    };
    std::vector<Held> held;
    std::atomic<std::uint32_t> started{0};  // futex: the keeper registered its list
    // Holder words watched for a wait set (keeper_watch): each with the TID it was held by and
    // the eventfd to write when that changes. `control` wakes the keeper when the list changes.
    struct Watched {
        std::atomic<std::uint32_t>* holder;
        std::uint32_t tid;
        int fd;
    };
    std::vector<Watched> watched;
    std::atomic<std::uint32_t> control{0};
};

Keeper& keeper() {
    static Keeper* k = [] {
        auto* made = new Keeper;  // never destroyed: the keeper outlives static destructors
        made->head.list.next = &made->head.list;
        made->head.futex_offset = kFutexOffset;
        // A child of fork has no keeper thread and holds no end: it starts afresh. The mutex is
        // held across fork so the child's copy is consistent, then released in both.
        ::pthread_atfork([] { keeper().mutex.lock(); }, [] { keeper().mutex.unlock(); },
                         [] {
                             Keeper& c = keeper();
                             c.head.list.next = &c.head.list;
                             c.head.list_op_pending = nullptr;
                             c.tid = 0;
                             c.held.clear();
                             c.watched.clear();
                             c.started.store(0, std::memory_order_relaxed);
                             c.mutex.unlock();
                         });
        return made;
    }();
    return *k;
}

robust_list* link_of(EndpointLine& line) noexcept {
    return reinterpret_cast<robust_list*>(&line.robust_next);
}

// Under the mutex: writes the eventfd of every watch whose holder left, drops it, and fills
// `words`/`expected` with the others (announced as waited on, so the kernel wakes us at a death).
// Returns how many, or 0 when a word changed under us (look again).
std::size_t watch_words(Keeper& k, std::atomic<std::uint32_t>** words, std::uint32_t* expected) {
    std::size_t n = 0;
    words[n] = &k.control;
    expected[n++] = k.control.load(std::memory_order_acquire);
    for (auto it = k.watched.begin(); it != k.watched.end();) {
        std::uint32_t value = it->holder->load(std::memory_order_acquire);
        if ((value & kHolderTidMask) != it->tid || (value & kHolderOwnerDied) != 0) {
            detail::wake_other_sleepers(*it->holder, value);
            const std::uint64_t one = 1;
            (void)!::write(it->fd, &one, sizeof one);
            it = k.watched.erase(it);
            continue;
        }
        if ((value & kHolderWaiters) == 0 &&
            !it->holder->compare_exchange_strong(value, value | kHolderWaiters, std::memory_order_relaxed))
            return 0;
        if (n < detail::kMaxWaitAny) {
            words[n] = it->holder;
            expected[n++] = value | kHolderWaiters;
        }
        ++it;
    }
    return n;
}

void* keeper_main(void* arg) {
    auto* k = static_cast<Keeper*>(arg);
    // Replaces the C library's list for this thread; the keeper never takes a robust mutex.
    if (::syscall(SYS_set_robust_list, &k->head, sizeof k->head) != 0) {
        k->started.store(2, std::memory_order_release);
    } else {
        k->tid = static_cast<pid_t>(::syscall(SYS_gettid));
        k->started.store(1, std::memory_order_release);
    }
    (void)futex_wake(k->started, INT_MAX);
    // Every signal is blocked: it sleeps until the process ends, waking only for the holder words
    // a wait set asked it to watch.
    std::atomic<std::uint32_t>* words[detail::kMaxWaitAny];
    std::uint32_t expected[detail::kMaxWaitAny];
    for (;;) {
        try {
            std::size_t n = 0;
            {
                const std::lock_guard lock(k->mutex);
                n = watch_words(*k, words, expected);
            }
            if (n == 0) continue;
            if (n == 1) {
                (void)futex_wait(k->control, expected[0], Deadline::never());
            } else if (futex_wait_any(words, expected, n, Deadline::never()) == WaitAny::not_supported) {
                (void)futex_wait(k->control, expected[0], Deadline::after(detail::kSleepSlice));
            }
        } catch (...) {
            // A futex call that failed (nothing here should): the keeper must not end, it looks again.
        }
    }
}

// Under the mutex.
void start_keeper(Keeper& k) {
    if (k.tid != 0) return;
    if (const int r = start_quiet_thread(keeper_main, &k, kKeeperStack); r != 0) {
        errno = r;
        throw_errno("pthread_create", "ring end keeper thread");
    }
    while (k.started.load(std::memory_order_acquire) == 0)
        (void)futex_wait(k.started, 0, Deadline::never());
    if (k.started.load(std::memory_order_acquire) != 1)
        throw_error(std::errc::function_not_supported,
                    "set_robust_list: the kernel refused the ring end keeper's list");
}

}  // namespace

Hold keeper_hold(EndpointLine& line) {
    Keeper& k = keeper();
    const std::lock_guard lock(k.mutex);
    start_keeper(k);
    if (k.held.size() >= kMaxHeld)
        throw_error(std::errc::too_many_files_open,
                    "ring end: this process holds " + std::to_string(kMaxHeld) +
                        " ends already, the most the kernel's robust list covers");
    // Already held by this process (its holder word zeroed or rewritten by a peer since): busy,
    // as any live holder. Linking it twice would tie the robust list in a knot and leave a copy
    // behind at its release.
    if (std::any_of(k.held.begin(), k.held.end(), [&](const Keeper::Held& h) { return h.line == &line; }))
        return {HoldOutcome::busy, line.holder.load(std::memory_order_relaxed)};
    robust_list* link = link_of(line);
    // list_op_pending first: a death between the CAS and the link still reaches this word.
    k.head.list_op_pending = link;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    std::uint32_t seen = line.holder.load(std::memory_order_acquire);
    for (;;) {
        if (holder_alive(seen)) {
            k.head.list_op_pending = nullptr;
            return {HoldOutcome::busy, seen};
        }
        // acq_rel: one winner among racing claimers, and it sees what the dead holder published.
        if (line.holder.compare_exchange_weak(seen, static_cast<std::uint32_t>(k.tid),
                                              std::memory_order_acq_rel, std::memory_order_acquire))
            break;
    }
    Hold hold{(seen & kHolderOwnerDied) != 0 ? HoldOutcome::took_over : HoldOutcome::fresh, seen};
    k.held.reserve(k.held.size() + 1);  // before the list changes: a throw leaves it whole
    line.robust_next =
        reinterpret_cast<std::uint64_t>(k.held.empty() ? &k.head.list : link_of(*k.held.back().line));
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the kernel walks a linked list, whole
    k.head.list.next = link;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    k.head.list_op_pending = nullptr;
    // The epoch of this hold: one past what the replaced holder left in the owner word.
    const std::uint32_t epoch =
        (OwnerWord::unpack(line.owner.load(std::memory_order_acquire)).epoch + 1) & 0xffffff;
    k.held.push_back({&line, epoch});
    hold.epoch = epoch;
    // Sleepers that watched the old value (a dead holder, or nobody) look again.
    if ((seen & kHolderWaiters) != 0) (void)futex_wake(line.holder, INT_MAX);
    return hold;
}

Fd keeper_watch(std::atomic<std::uint32_t>& holder, std::uint32_t tid) {
    Keeper& k = keeper();
    Fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) return fd;
    const std::lock_guard lock(k.mutex);
    start_keeper(k);
    k.watched.push_back({&holder, tid, fd.get()});
    k.control.fetch_add(1, std::memory_order_release);
    (void)futex_wake(k.control, 1);
    return fd;
}

void keeper_unwatch(int fd) noexcept {
    Keeper& k = keeper();
    const std::lock_guard lock(k.mutex);
    const auto it = std::find_if(k.watched.begin(), k.watched.end(),
                                 [&](const Keeper::Watched& w) { return w.fd == fd; });
    if (it == k.watched.end()) return;  // it fired already, or a forked child's copy
    k.watched.erase(it);
    k.control.fetch_add(1, std::memory_order_release);
    try {
        (void)futex_wake(k.control, 1);
    } catch (...) {
        // The keeper looks at its list again at its next wake; nothing better to do here.
    }
}

bool keeper_release(EndpointLine& line, std::uint32_t epoch,
                    std::optional<std::uint64_t> closed_owner) noexcept {
    Keeper& k = keeper();
    const std::lock_guard lock(k.mutex);
    const auto it = std::find_if(k.held.begin(), k.held.end(),
                                 [&](const Keeper::Held& h) { return h.line == &line && h.epoch == epoch; });
    // Not on our list under this epoch (a stale release, a forked child's copy): not ours to end.
    if (it == k.held.end()) return false;
    const auto index = static_cast<std::size_t>(it - k.held.begin());
    robust_list* link = link_of(line);
    // The list runs newest to oldest: our successor is the line held before us, our predecessor
    // the one held after us (or the head).
    robust_list* successor = index == 0 ? &k.head.list : link_of(*k.held[index - 1].line);
    robust_list* predecessor = index + 1 == k.held.size() ? &k.head.list : link_of(*k.held[index + 1].line);
    // release: everything this holder published happens-before a peer that sees `closed`.
    if (closed_owner) line.owner.store(*closed_owner, std::memory_order_release);
    k.head.list_op_pending = link;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    predecessor->next = successor;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    // release: what we published happens-before a claimer that acquires the free word.
    // Only our own hold is freed: a word that no longer carries our TID (a zeroed or scribbled
    // region) is somebody else's, or nobody's.
    std::uint32_t was = line.holder.load(std::memory_order_relaxed);
    while ((was & kHolderTidMask) == static_cast<std::uint32_t>(k.tid) &&
           !line.holder.compare_exchange_weak(was, 0, std::memory_order_release, std::memory_order_relaxed)) {
    }
    if ((was & kHolderTidMask) != static_cast<std::uint32_t>(k.tid)) was = 0;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    k.head.list_op_pending = nullptr;
    k.held.erase(it);
    if ((was & kHolderWaiters) != 0) {
        try {
            (void)futex_wake(line.holder, INT_MAX);
        } catch (...) {
            // A sleeper also wakes at its deadline; nothing better to do in a close.
        }
    }
    return true;
}

}  // namespace ipckit::detail::ring
