// How the ring, the lanes and the topic wait for the other side, and the barriers of their
// sleeper handshake. Internal to src/rings.
//
// The handshake: a side that publishes (a commit word, a cursor) then loads the other side's
// sleeper count; a side about to sleep counts itself a sleeper then re-checks what it waits
// for. Each needs a store-buffer barrier between its store and its load (the store-buffer
// litmus test), or both loads can miss the other's store and a wake-up is lost.
//
// A ring end that waits with `spin` never sleeps on a futex in a plain wait, so a publisher
// facing it needs no fence on every message: the barrier is asymmetric. The publisher's half is
// a compiler barrier; the rare sleeps of a spinning end (arming a PollSet doorbell, a lanes
// receiver's futex_waitv) pass membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which makes every
// running thread of every process that registered for it pass a full barrier (a descheduled
// thread passed one when it was switched out). An end that may sleep at any wait (`block`,
// `adaptive`) says so in its EndpointLine (`may_sleep`), and its peer keeps the seq_cst fence:
// a membarrier interrupts the peer's CPU (in a VM, an exit on both sides), which measured a
// p99 of ~100 µs on adaptive round trips here against ~1 µs with the fence. Such an end issues
// one membarrier only, on its first sleep: it covers a peer that read the flag before it was
// set, and every later publication of that peer reads it set.
//
// A process registers when it attaches a ring end (enable_light_barriers); one whose kernel
// refuses (before 4.16, or a seccomp filter) keeps the fence, which is correct whatever the
// sleeper does. Only a registered publisher facing a sleeper whose membarrier call fails on the
// same kernel could lose a wake-up: such a sleeper sleeps in slices of kSleepSlice from then on
// (SleeperBarrier::sliced), so the loss lasts one slice at most. Topics
// keep the fence on both sides (their publisher has many peers).
//
// Under the thread sanitizer, which does not model fences, the ring builds the same order from
// seq_cst operations (IPCKIT_RING_FENCELESS), and a sleeper announces itself with one.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define IPCKIT_RING_FENCELESS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IPCKIT_RING_FENCELESS 1
#endif
#endif

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

#include "ipckit/deadline.hpp"
#include "ipckit/detail/endpoint.hpp"
#include "ipckit/detail/sleeper.hpp"
#include "ipckit/status.hpp"
#include "ipckit/wait_mode.hpp"
#include "sync/futex.hpp"

namespace ipckit::detail {

// adaptive: spin this long (a running peer answers well within it), yield a few times, sleep.
inline constexpr auto kAdaptiveSpin = std::chrono::microseconds(5);
inline constexpr int kAdaptiveYields = 8;
// Reading the clock costs ~20 ns; a pause ~10–40 ns. Looking every 16 spins keeps both small.
inline constexpr unsigned kSpinsPerClockRead = 16;
// spin: after this long without progress, yield once. With more spinning processes than
// cores, the peer we wait for may be the one we keep off the CPU. A running peer never sees it.
inline constexpr auto kSpinYieldEvery = std::chrono::microseconds(200);
// Without futex_waitv (Linux < 5.16) a sleeper cannot sleep on its peer's holder word beside its
// event word: it wakes this often to look whether the peer died.
inline constexpr auto kSleepSlice = std::chrono::milliseconds(20);

// The holder words a waiter watches beside its event word: a death, a close or a claim changes
// one and wakes it. Filled by a callable `(std::atomic<std::uint32_t>** words, std::size_t max)
// -> std::size_t count`, asked before each sleep (a topic publisher watches whichever
// subscribers hold it back).
using HolderWords = std::atomic<std::uint32_t>*;

// Sleeps until `event` moves from `key`, a holder word in `holders` changes (its holder closes,
// dies, or a new one claims it), or `deadline`. `holder_keys` (or nullptr) are the holder words'
// values the caller loaded before it last looked whether its peers live: a word that has changed
// since (a death between that look and this sleep) returns at once, so the caller sees it. A holder
// already dead at that look is skipped (its death was seen; its other sleepers are woken, since
// the kernel wakes only one). With more holders than
// futex_waitv takes, or without futex_waitv, sleeps on `event` for one kSleepSlice at most.
// It also wakes when a guarded region of this process is lost (region_lost_event(),
// shared_region.hpp), and throws Error when the region under `event` is the one: its words are
// zeros now, and a loop around the sleep would sleep on them to its deadline.
void sleep_on(std::atomic<std::uint32_t>& event, std::uint32_t key, HolderWords const* holders,
              const std::uint32_t* holder_keys, std::size_t count, Deadline deadline);
// A holder word `value` marked dead with sleepers announced: the kernel woke one of them at the
// death; wake the others, once (the announcement is cleared).
void wake_other_sleepers(std::atomic<std::uint32_t>& holder, std::uint32_t value);
// The same for several event words at once (a lanes receiver: every lane's data_event).
void sleep_on(HolderWords const* events, const std::uint32_t* keys, std::size_t event_count,
              HolderWords const* holders, const std::uint32_t* holder_keys, std::size_t count,
              Deadline deadline);

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();  // frees the sibling hyper-thread and avoids a memory-order flush on exit
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

// True once this process registered for membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED).
extern std::atomic<bool> g_light_barriers;

// Registers this process (once; later calls are one load). Never throws: a refusal leaves the
// fences in place.
void enable_light_barriers() noexcept;

// A ring publisher's half, between its publication and its sleepers load: every message. `peer`
// is the end that may sleep on what was published.
inline void notifier_barrier(const ring::EndpointLine& peer) noexcept {
    if (g_light_barriers.load(std::memory_order_relaxed) &&
        peer.may_sleep.load(std::memory_order_relaxed) == 0)
        std::atomic_signal_fence(std::memory_order_seq_cst);
    else
        std::atomic_thread_fence(std::memory_order_seq_cst);
}

// The sleeper's half: detail::SleeperBarrier (ipckit/detail/sleeper.hpp), one per waiting end.

// A callable for wait_until's `holders`: the holder word of `peer`.
inline auto one_holder(const ring::EndpointWatch& peer) noexcept {
    return [&peer](HolderWords* words, std::size_t) -> std::size_t {
        words[0] = peer.holder_word();
        return words[0] != nullptr ? 1 : 0;
    };
}

// The spinning part of a wait: nothing for `block`; `spin` spins until something happens (yielding
// now and then); `adaptive` spins kAdaptiveSpin, then yields kAdaptiveYields times. ok when
// `ready()`, timed_out at the deadline, closed when `gone(now)`; nullopt when the spin ran its
// course without any (then sleep).
template <typename Gone, typename Ready>
std::optional<Status> spin_until(WaitMode mode, Deadline deadline, Gone&& gone, Ready&& ready) {
    using Clock = std::chrono::steady_clock;
    if (mode == WaitMode::block) return std::nullopt;
    const auto start = Clock::now();
    auto next_yield = start + kSpinYieldEvery;
    for (unsigned spins = 1;; ++spins) {
        if (ready()) return Status::ok;
        cpu_relax();
        if (spins % kSpinsPerClockRead == 0) {
            const auto now = Clock::now();
            if (now >= deadline.when()) return Status::timed_out;
            if (gone(now)) return Status::closed;
            if (mode == WaitMode::adaptive && now - start >= kAdaptiveSpin) break;
            if (now >= next_yield) {
                ::sched_yield();
                next_yield = now + kSpinYieldEvery;
            }
        }
    }
    for (int i = 0; i < kAdaptiveYields; ++i) {
        ::sched_yield();
        if (ready()) return Status::ok;
    }
    return std::nullopt;
}

// Waits until `ready()` (which re-reads what the other side publishes) is true. Returns ok when
// it is, closed when `gone(now)` says the peer left (the caller drains what it published first),
// or timed_out. Before it sleeps on `event` it calls `before_sleep()` (a producer says how much
// space it wants), counts itself in `sleepers`, runs the sleeper's half of the handshake and
// re-checks; it sleeps on `event` and the holder words `holders` gives (see HolderWords).
template <typename Ready, typename Gone, typename Holders, typename BeforeSleep>
Status wait_until(WaitMode mode, Deadline deadline, SleeperBarrier& barrier,
                  std::atomic<std::uint32_t>& sleepers, std::atomic<std::uint32_t>& event, Gone&& gone,
                  Holders&& holders, Ready&& ready, BeforeSleep&& before_sleep) {
    using Clock = std::chrono::steady_clock;
    if (const auto spun = spin_until(mode, deadline, gone, ready)) return *spun;
    struct Leave {
        std::atomic<std::uint32_t>& sleepers;
        SleeperBarrier& barrier;
        ~Leave() {
            barrier.uncounting();
            sleepers.fetch_sub(1, std::memory_order_relaxed);
        }
    };
    HolderWords words[kMaxWaitAny];
    std::uint32_t holder_keys[kMaxWaitAny];
    for (;;) {
        {
            // The key is read before announcing: a wake after this point changes the word, and
            // futex_wait then returns at once instead of sleeping through it.
            const std::uint32_t key = event.load(std::memory_order_acquire);
            before_sleep();
#ifdef IPCKIT_RING_FENCELESS
            sleepers.fetch_add(1, std::memory_order_seq_cst);
#else
            sleepers.fetch_add(1, std::memory_order_relaxed);
#endif
            barrier.counted();
            const Leave leave{sleepers, barrier};
            barrier.pass();
            // The holder words before the look at the peers: a death after it wakes the sleep.
            const std::size_t count = holders(words, kMaxWaitAny);
            for (std::size_t i = 0; i < count; ++i)
                holder_keys[i] = words[i]->load(std::memory_order_acquire);
            if (ready()) return Status::ok;
            if (gone(Clock::now())) return Status::closed;
            barrier.sleeping();
            sleep_on(event, key, words, holder_keys, count,
                     barrier.sliced() ? Deadline::at(std::min(deadline.when(), Clock::now() + kSleepSlice))
                                      : deadline);
        }
        if (ready()) return Status::ok;
        const auto now = Clock::now();
        if (gone(now)) return Status::closed;
        if (now >= deadline.when()) return Status::timed_out;
    }
}

// The usual case: one peer, whose holder word is watched.
template <typename Ready, typename Gone>
Status wait_until(WaitMode mode, Deadline deadline, SleeperBarrier& barrier,
                  std::atomic<std::uint32_t>& sleepers, std::atomic<std::uint32_t>& event,
                  const ring::EndpointWatch& peer, Gone&& gone, Ready&& ready) {
    return wait_until(mode, deadline, barrier, sleepers, event, gone, one_holder(peer), ready, [] {});
}

}  // namespace ipckit::detail
