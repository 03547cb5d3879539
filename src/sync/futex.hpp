// futex.hpp — the futex(2) calls that shared-memory waiting is built on.
//
// Internal: used by the synchronisation primitives and the ring. A futex word lives in
// shared memory; these calls use the process-shared form (no FUTEX_PRIVATE_FLAG) so that
// waiters in different processes mapping the same page find each other.
#pragma once

#include <atomic>
#include <cstdint>

#include "ipckit/deadline.hpp"

namespace ipckit::detail {

static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "futex words must be lock-free");
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t), "futex word layout");

// Sleeps while `*word == expected`, until woken or the deadline passes. Returns ok when woken
// (or when the value had already changed: the caller re-checks its condition either way),
// timed_out when the deadline passed. Spurious wake-ups are possible; callers loop.
[[nodiscard]] Status futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline);

// Wakes up to `count` waiters on `word`; returns how many were woken.
int futex_wake(std::atomic<std::uint32_t>& word, int count);

}  // namespace ipckit::detail
