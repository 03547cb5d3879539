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

void sleeper_barrier() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // our announcement before the re-check
    // Every publisher that dropped its fence (it registered) passes a full barrier now: either it
    // loads the sleeper count after our announcement, or its publication is visible to our re-check.
    // An error (a kernel without it) leaves the publishers that registered nothing to rely on, but
    // such a kernel refused their registration too.
    if (g_light_barriers.load(std::memory_order_relaxed)) (void)membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED);
}

}  // namespace ipckit::detail
