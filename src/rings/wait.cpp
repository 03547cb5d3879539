// The sleeper handshake's asymmetric barrier (see wait.hpp).
#include "wait.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <mutex>
#include <thread>

#include "ipckit/error.hpp"
#include "shared_region.hpp"

namespace ipckit::detail {

std::atomic<bool> g_light_barriers{false};

namespace {

long membarrier(int command) noexcept {
    return ::syscall(SYS_membarrier, command, 0, 0);
}

}  // namespace

void enable_light_barriers() noexcept {
    static std::once_flag once;
    std::call_once(once, [] {
        const long supported = membarrier(MEMBARRIER_CMD_QUERY);
        if (supported < 0 || (supported & MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0) return;
        if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0) return;
        // From here on a sleeper's membarrier covers this process's publishers, so they may drop
        // their fence.
        g_light_barriers.store(true, std::memory_order_relaxed);
    });
}

namespace {

// A region under `event` that was truncated (BusGuard) has zeros where its words were, and its
// sleepers' loops would go back to sleep on them: the sleep ends with an Error instead, which the
// channel reports as the truncation.
void throw_if_lost(std::uint32_t lost_key, const void* event) {
    if (lost_key != 0 && region_lost_at(event))
        throw_error(std::errc::no_such_device_or_address, "ring wait: the shared memory under it was lost");
}

}  // namespace

void wake_other_sleepers(std::atomic<std::uint32_t>& holder, std::uint32_t value) {
    if ((value & ring::kHolderOwnerDied) != 0 && (value & ring::kHolderWaiters) != 0 &&
        holder.compare_exchange_strong(value, value & ~ring::kHolderWaiters, std::memory_order_relaxed))
        (void)futex_wake(holder, INT_MAX);
}

void sleep_on(HolderWords const* events, const std::uint32_t* keys, std::size_t event_count,
              HolderWords const* holders, const std::uint32_t* holder_keys, std::size_t count,
              Deadline deadline) {
    // Read first: a loss after this changes the word, and futex_waitv returns at once.
    std::atomic<std::uint32_t>& lost = region_lost_event();
    const std::uint32_t lost_key = lost.load(std::memory_order_acquire);
    throw_if_lost(lost_key, events[0]);
    HolderWords words[kMaxWaitAny];
    std::uint32_t expected[kMaxWaitAny];
    std::size_t n = std::min(event_count, kMaxWaitAny);
    std::copy_n(events, n, words);
    std::copy_n(keys, n, expected);
    // The process's region-lost word: a truncation wakes a sleeper whose own words it cut away.
    bool all_watched = event_count + count + 1 <= kMaxWaitAny;
    if (all_watched) {
        words[n] = &lost;
        expected[n] = lost_key;
        ++n;
    }
    for (std::size_t i = 0; i < count && all_watched; ++i) {
        std::atomic<std::uint32_t>& holder = *holders[i];
        std::uint32_t value = holder.load(std::memory_order_acquire);
        // Changed since the caller looked (a holder died, closed or claimed in between): look again.
        if (holder_keys != nullptr && ((value ^ holder_keys[i]) & ~ring::kHolderWaiters) != 0) return;
        if ((value & ring::kHolderOwnerDied) != 0) {
            wake_other_sleepers(holder, value);
            continue;
        }
        // Announce a sleeper, so that the holder's close, its death (the kernel) and a claim wake us.
        if ((value & ring::kHolderWaiters) == 0 &&
            !holder.compare_exchange_strong(value, value | ring::kHolderWaiters, std::memory_order_relaxed))
            return;  // it changed under us: the caller looks again
        words[n] = &holder;
        expected[n] = value | ring::kHolderWaiters;
        ++n;
    }
    if (all_watched) {
        switch (futex_wait_any(words, expected, n, deadline)) {
            case WaitAny::ok:
            case WaitAny::timed_out:
                throw_if_lost(lost.load(std::memory_order_acquire), events[0]);
                return;
            case WaitAny::not_supported:
                break;
        }
    }
    const auto slice = std::min(deadline.when(), std::chrono::steady_clock::now() + kSleepSlice);
    if (event_count == 1) {
        (void)futex_wait(*events[0], keys[0], Deadline::at(slice));
    } else {
        // Several event words and no futex_waitv: a short nap, as before version 3.
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
            std::chrono::milliseconds(1), slice - std::chrono::steady_clock::now()));
    }
    throw_if_lost(lost.load(std::memory_order_acquire), events[0]);
}

void sleep_on(std::atomic<std::uint32_t>& event, std::uint32_t key, HolderWords const* holders,
              const std::uint32_t* holder_keys, std::size_t count, Deadline deadline) {
    HolderWords events[1] = {&event};
    sleep_on(events, &key, 1, holders, holder_keys, count, deadline);
}

void SleeperBarrier::pass() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // our announcement before the re-check
    // A ring peer that dropped its fence (it registered, and had not yet seen that we may sleep) passes
    // a full barrier now: either its sleepers load comes after our announcement, or its
    // publication is visible to our re-check.
    if (!ring_ || (may_sleep_ && issued_) || !g_light_barriers.load(std::memory_order_relaxed)) return;
    // A refusal leaves the peer's half without a barrier: this end then sleeps in slices.
    if (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0) sliced_ = true;
    issued_ = true;
}

}  // namespace ipckit::detail
