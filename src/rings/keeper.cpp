// The keeper thread and its robust futex list (keeper.hpp). Why a thread of its own: the kernel
// walks a *thread's* robust list when that thread exits, and an end belongs to the process, not
// to the (perhaps short-lived) thread that attached it. The keeper only sleeps, so it exits only
// with its process (a death, exit or exec), and then the kernel marks every holder word it still
// holds FUTEX_OWNER_DIED and wakes a sleeper on each.
#include "keeper.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
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
    for (;;)
        ::pause();  // every signal is blocked: it sleeps until the process ends
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
