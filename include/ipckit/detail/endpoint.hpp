// ipckit/detail/endpoint.hpp — who holds one end of a shared-memory structure, and taking an end
// over from a process that died. Layout version 3 of every ring kind (the 1:1 ring, the lanes of
// `senders=N`, the topic's publisher and subscribers) records each end in one EndpointLine.
//
// Internal: used by src/rings/ and the tests that corrupt a region on purpose. See
// docs/ring-layout.md ("Endpoints") for the protocol.
//
// Liveness is the `holder` word, a robust futex: it carries the TID of the holding process's
// keeper thread (src/rings/keeper.cpp), and the kernel sets FUTEX_OWNER_DIED in it when that
// process dies, in whatever PID namespace. Alive means "a TID and not owner-died": nothing
// compares PIDs, so a holder in another PID namespace is never taken for dead.
//
// The owner word beside it packs the holder's PID (for display), a state and an epoch:
//
//     bits  0–31  pid of the holder in its own PID namespace (display only)
//     bits 32–39  state: vacant, claiming, attached, closed
//     bits 40–63  epoch: +1 at every claim, so the other side sees "a new holder"
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "ipckit/fd.hpp"
#include "ipckit/process.hpp"

namespace ipckit::detail::ring {

// 128, not 64: the adjacent-line prefetcher of Intel cores (and AMD's) fetches 64-byte lines in
// aligned pairs, so two hot words 64 bytes apart still ping-pong between cores.
inline constexpr std::size_t kLineSize = 128;

enum class EndpointState : std::uint8_t {
    vacant = 0,    // nobody has held it since the region was formatted
    claiming = 1,  // a process won the claim and is writing its start time (microseconds)
    attached = 2,  // held by the process in the pid bits (alive unless ProcessRef says otherwise)
    closed = 3,    // its holder left cleanly: everything it published stays valid; reclaimable
};

struct OwnerWord {
    std::uint32_t pid = 0;
    EndpointState state = EndpointState::vacant;
    std::uint32_t epoch = 0;  // 24 bits

    [[nodiscard]] static OwnerWord unpack(std::uint64_t word) noexcept {
        return {static_cast<std::uint32_t>(word), static_cast<EndpointState>((word >> 32) & 0xff),
                static_cast<std::uint32_t>(word >> 40)};
    }
    [[nodiscard]] std::uint64_t pack() const noexcept {
        return std::uint64_t{pid} | (std::uint64_t{static_cast<std::uint8_t>(state)} << 32) |
               (std::uint64_t{epoch & 0xffffff} << 40);
    }
};

// The holder word's bits: the robust-futex ABI (Documentation/locking/robust-futex-ABI.rst).
inline constexpr std::uint32_t kHolderTidMask = 0x3fffffff;
inline constexpr std::uint32_t kHolderOwnerDied = 0x40000000;  // set by the kernel at the death
inline constexpr std::uint32_t kHolderWaiters = 0x80000000;    // somebody sleeps on the word

// Alive: a keeper's TID, and the kernel has not marked it dead. One load, no system call.
[[nodiscard]] constexpr bool holder_alive(std::uint32_t holder) noexcept {
    return (holder & kHolderTidMask) != 0 && (holder & kHolderOwnerDied) == 0;
}

// One end's record. Written at claim, close and takeover only, so it stays shared in every cache
// and reading it on each operation (is the peer closed?) costs a hit, not a miss.
struct alignas(kLineSize) EndpointLine {
    std::atomic<std::uint64_t> owner;
    std::atomic<std::uint32_t> holder;  // the robust futex above
    // Rings only: nonzero when the holder's waits may sleep on a futex (`block`, `adaptive`): its
    // peer then keeps a fence after each publication; zero for `spin`, whose peer drops it (see
    // src/rings/wait.hpp). Written by the holder at attach.
    std::atomic<std::uint32_t> may_sleep;
    // The holder's robust-list link: a pointer in the holder's address space, read by the kernel
    // when the holder dies, by nobody else.
    std::uint64_t robust_next;
    std::atomic<std::uint64_t> start_ticks;    // display: the holder's start time
    std::atomic<std::uint64_t> pid_namespace;  // display: inode of the holder's PID namespace
    // Counter (docs/ring-layout.md, "Counters"): claims that took the end over from a holder that
    // died, since the region was formatted. Written by the claimer, which holds the end then.
    std::atomic<std::uint64_t> takeovers;
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "owner words must be lock-free across processes");
static_assert(offsetof(EndpointLine, holder) == 8 && offsetof(EndpointLine, robust_next) == 16 &&
                  offsetof(EndpointLine, start_ticks) == 24 && offsetof(EndpointLine, pid_namespace) == 32 &&
                  offsetof(EndpointLine, takeovers) == 40,
              "the endpoint line of layout version 3");

// What a successful claim found.
struct Claim {
    std::uint32_t epoch = 0;         // this holder's epoch (pass it to release_endpoint)
    bool took_over = false;          // the previous holder had died without closing
    std::uint32_t previous_pid = 0;  // the dead holder (display), when took_over
};

// Claims `line` for this process through its keeper thread. Vacant or closed: a fresh claim.
// Held by a process that died (the kernel marked its holder word): taken over, and `reset` runs
// before the owner word says `attached`, to clear what the dead holder left half-done. Held by a
// live process: Error device_or_resource_busy, "<what> is held by pid N (alive)" (or "by a
// process in another PID namespace (alive)"). More than 2048 ends in one process: Error
// too_many_files_open. An unknown state is a corrupt region: Error protocol_error.
template <typename Reset>
[[nodiscard]] Claim claim_endpoint(EndpointLine& line, const std::string& what, Reset&& reset);
[[nodiscard]] Claim claim_endpoint(EndpointLine& line, const std::string& what);

// Marks the end closed and frees its holder word if this process holds it (`epoch`); a copy in a
// forked child, or a holder whose epoch moved on, leaves the line alone. Release order: what the
// holder published happens-before a peer that acquires `closed`.
void release_endpoint(EndpointLine& line, std::uint32_t epoch) noexcept;

// Whether the holder recorded in `line` is this process's own (pid namespace inode equal).
[[nodiscard]] bool same_pid_namespace(const EndpointLine& line) noexcept;

// The other side of an end, as seen by its peer: `closed()` and `gone()` are one load each
// (the holder word is exact: the kernel marks a death). A new holder re-arms the watch, so a
// consumer whose producer was replaced by a takeover sees the new producer, not the dead one.
class EndpointWatch {
public:
    EndpointWatch() = default;
    explicit EndpointWatch(const EndpointLine* line) noexcept : line_(line) {}
    EndpointWatch(EndpointWatch&& other) noexcept;
    EndpointWatch& operator=(EndpointWatch&& other) noexcept;
    ~EndpointWatch();
    // A watch for an end that joins after its peer: a peer that had already left (closed, or
    // died) when the watch was made is one still to come. Until a new holder claims the line,
    // owner() says vacant and closed() false, as for a peer never attached; so a receiver that
    // attaches after its sender died drains what it left and waits for the next sender.
    struct JoinAfter {};
    EndpointWatch(const EndpointLine* line, JoinAfter) noexcept;

    // The end was closed cleanly (one acquire load).
    [[nodiscard]] bool closed() const noexcept { return owner().state == EndpointState::closed; }
    // Nobody holds the end now: closed, never claimed, or its holder died. `now` is unused (the
    // answer is exact), kept so that callers need not know.
    [[nodiscard]] bool gone(std::chrono::steady_clock::time_point now = {}) const noexcept;
    // A holder came and has gone since (closed, or its process died); false while the end was
    // never claimed. One load of the owner word, so a holder that claims meanwhile is not gone.
    [[nodiscard]] bool left() const noexcept;
    // The holder's state, and whether one was ever attached. Inline: a producer asks it before
    // every record ("is the consumer closed?"), and out of line the packed word went through the
    // stack and stalled its store forwarding (docs/ring.md, "Where a small message's time goes").
    [[nodiscard]] OwnerWord owner() const noexcept {
        if (line_ == nullptr) return {};
        // acquire: pairs with release_endpoint, so the holder's last publication is visible.
        const OwnerWord word = OwnerWord::unpack(line_->owner.load(std::memory_order_acquire));
        if (stale_ && word.epoch == stale_epoch_) return {};  // the holder that left before we came
        return word;
    }
    // The holder word a waiter sleeps on beside its event word (null without a line).
    [[nodiscard]] std::atomic<std::uint32_t>* holder_word() const noexcept {
        return line_ == nullptr ? nullptr : &const_cast<EndpointLine*>(line_)->holder;
    }
    // A descriptor that polls readable when the watched holder exits, or -1 (nobody holds it). For
    // a holder in this PID namespace, its pidfd; in another one (where a PID names another
    // process), an eventfd the keeper thread writes when the holder word says it left.
    [[nodiscard]] int fd();

private:
    const EndpointLine* line_ = nullptr;
    bool stale_ = false;              // the holder at the watch's making had left already
    std::uint32_t stale_epoch_ = 0;   // ... with this epoch
    std::uint64_t watched_word_ = 0;  // the owner word the ProcessWatch was made for
    ProcessWatch watch_;
    Fd holder_event_;                     // the keeper's eventfd, for a holder in another PID namespace
    std::uint32_t holder_event_tid_ = 0;  // ... held by this TID
    void drop_holder_event() noexcept;
};

// claim_endpoint's two halves, around the caller's reset: the holder word (and the owner word
// `claiming`), then the display fields and `attached`.
[[nodiscard]] Claim begin_claim(EndpointLine& line, const std::string& what);
void finish_claim(EndpointLine& line, const Claim& claim) noexcept;

template <typename Reset>
Claim claim_endpoint(EndpointLine& line, const std::string& what, Reset&& reset) {
    const Claim claim = begin_claim(line, what);
    if (claim.took_over) reset();
    finish_claim(line, claim);
    return claim;
}

}  // namespace ipckit::detail::ring
