// ipckit/detail/sleeper.hpp — the sleeper's half of the rings' wake-up handshake.
//
// Internal: held by the ring ends, the lanes receiver and the topic ends, which src/rings/wait.hpp
// explains. Thread-safety: one per end, used by the thread that waits on it.
#pragma once

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

private:
    bool ring_ = false, may_sleep_ = false, issued_ = false;
};

}  // namespace ipckit::detail
