// ipckit/detail/sleeper.hpp — the sleeper's half of the rings' wake-up handshake.
//
// Internal: held by the ring ends, the lanes receiver and the topic ends, which src/rings/wait.hpp
// explains. Thread-safety: one per end, used by the thread that waits on it.
#pragma once

#include <atomic>
#include <cstdint>

#include "ipckit/wait_mode.hpp"

namespace ipckit::detail {

// The sleeper's half, between counting itself a sleeper and its re-check: before each sleep.
// One per waiting end (it remembers the one membarrier of an end that may sleep).
class SleeperBarrier {
public:
    // A topic end: its peers always fence, so a fence is enough here.
    SleeperBarrier() = default;
    // A ring end waiting in `mode`, whose peers drop their fence when it spins.
    explicit SleeperBarrier(WaitMode mode) noexcept : ring_(true), may_sleep_(mode != WaitMode::spin) {}
    void pass() noexcept;
    // The membarrier of pass() was refused: a wake-up could be lost, so sleeps end in slices.
    [[nodiscard]] bool sliced() const noexcept { return sliced_; }

    // A topic subscriber's slot flag, 1 while it is counted among the shared sleepers, so that a
    // takeover of its slot after a death takes the count back (set after counting, cleared
    // before uncounting: a death in between leaves one count too many, never one too few).
    void set_sleeping_flag(std::atomic<std::uint32_t>* flag) noexcept { flag_ = flag; }
    void counted() noexcept {
        if (flag_ != nullptr) flag_->store(1, std::memory_order_relaxed);
    }
    void uncounting() noexcept {
        if (flag_ != nullptr) flag_->store(0, std::memory_order_relaxed);
    }

    // The end's `sleeps` counter (docs/ring-layout.md, "Counters"), bumped before each futex sleep.
    void set_sleep_counter(std::atomic<std::uint64_t>* counter) noexcept { sleeps_ = counter; }
    void sleeping() noexcept {
        if (sleeps_ != nullptr)
            sleeps_->store(sleeps_->load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }

private:
    std::atomic<std::uint32_t>* flag_ = nullptr;
    std::atomic<std::uint64_t>* sleeps_ = nullptr;
    bool ring_ = false, may_sleep_ = false, issued_ = false, sliced_ = false;
};

}  // namespace ipckit::detail
