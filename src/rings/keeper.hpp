// The keeper: one thread per process that holds ring ends, whose robust futex list the kernel
// walks when the process dies (docs/ring-layout.md, "Endpoints"). Internal to src/rings.
//
// Thread-safety: every function may be called from any thread; the list is guarded by a
// process-local mutex. After fork the child holds nothing (its keeper state is cleared).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "ipckit/detail/endpoint.hpp"
#include "ipckit/fd.hpp"

namespace ipckit::detail::ring {

enum class HoldOutcome { fresh, took_over, busy };

struct Hold {
    HoldOutcome outcome = HoldOutcome::busy;
    std::uint32_t seen = 0;   // the holder word that decided the outcome
    std::uint32_t epoch = 0;  // this hold's epoch (fresh or took_over): one past the owner word's
};

// Takes `line`'s holder word for this process (CAS from "nobody" or "owner died" to the keeper's
// TID) and links the line into the keeper's robust list, starting the keeper at the first hold.
// A live holder: busy, nothing changed. Throws too_many_files_open past the kernel's 2048 ends,
// and the error of pthread_create when the keeper cannot start.
[[nodiscard]] Hold keeper_hold(EndpointLine& line);

// If this process holds `line` under `epoch` (the hold keeper_hold returned): stores
// `closed_owner` in its owner word (release; none: the word is left alone, as when a truncated
// region zeroed it), unlinks it and frees its holder word if it still carries our TID (waking
// its sleepers). The process-local record decides, never the shared owner word, so a line is
// always unlinked before its mapping goes. False when this process does not hold it under that
// epoch (a forked child's copy, a stale release, a line never held here): nothing changed.
bool keeper_release(EndpointLine& line, std::uint32_t epoch,
                    std::optional<std::uint64_t> closed_owner) noexcept;

// A descriptor that polls readable once `holder` no longer holds the TID `tid`, or holds it
// dead: its holder died, closed, or another claimed the end. For a wait set, whose poll(2)
// cannot wait on a futex, where no pidfd names the holder (another PID namespace): the keeper
// thread sleeps on the word (futex_waitv, beside its own control word) and writes the eventfd.
// keeper_unwatch before the word's memory goes. An invalid Fd where the kernel has no
// futex_waitv (the keeper would have to wake in slices) or no eventfd is left.
[[nodiscard]] Fd keeper_watch(std::atomic<std::uint32_t>& holder, std::uint32_t tid);
void keeper_unwatch(int fd) noexcept;

}  // namespace ipckit::detail::ring
