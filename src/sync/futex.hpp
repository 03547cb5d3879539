// futex.hpp — the futex(2) calls that shared-memory waiting is built on.
//
// Internal: used by the synchronisation primitives and the ring. A futex word lives in
// shared memory; these calls use the process-shared form (no FUTEX_PRIVATE_FLAG) so that
// waiters in different processes mapping the same page find each other.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipckit/deadline.hpp"

namespace ipckit::detail {

static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "futex words must be lock-free");
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t), "futex word layout");

// Sleeps while `*word == expected`, until woken or the deadline passes. Returns ok when woken
// (or when the value had already changed: the caller re-checks its condition either way),
// timed_out when the deadline passed. Spurious wake-ups are possible; callers loop.
[[nodiscard]] Status futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline);

// Sleeps until any of `words[i]` differs from `expected[i]` (or is woken), or the deadline passes:
// futex_waitv(2), Linux 5.16+, at most 128 words. Returns ok (woken, or a word had changed),
// timed_out, or not_supported when the kernel has no futex_waitv (ENOSYS) or refuses it (a
// seccomp filter): the caller then sleeps in slices. Remembers a refusal for the process.
enum class WaitAny { ok, timed_out, not_supported };
inline constexpr std::size_t kMaxWaitAny = 128;
[[nodiscard]] WaitAny futex_wait_any(std::atomic<std::uint32_t>* const* words, const std::uint32_t* expected,
                                     std::size_t count, Deadline deadline);

// Wakes up to `count` waiters on `word`; returns how many were woken.
int futex_wake(std::atomic<std::uint32_t>& word, int count);

}  // namespace ipckit::detail
