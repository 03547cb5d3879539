// The sleeper handshake's asymmetric barrier (see wait.hpp).
#include "wait.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>

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

void SleeperBarrier::pass() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // our announcement before the re-check
    // A ring peer that dropped its fence (it registered, and had not yet seen that we may sleep) passes
    // a full barrier now: either its sleepers load comes after our announcement, or its
    // publication is visible to our re-check.
    if (!ring_ || (may_sleep_ && issued_) || !g_light_barriers.load(std::memory_order_relaxed)) return;
    (void)membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED);
    issued_ = true;
}

}  // namespace ipckit::detail
