// ipckit/detail/endpoint.hpp — who holds one end of a shared-memory structure, and taking an end
// over from a process that died. Layout version 2 of every ring kind (the 1:1 ring, the lanes of
// `senders=N`, the topic's publisher and subscribers) records each end in one EndpointLine.
//
// Internal: used by src/rings/ and the tests that corrupt a region on purpose. See
// docs/ring-layout.md ("Endpoints") for the protocol.
//
// The owner word packs the holder's PID, a state and an epoch into one 64-bit atomic, so a claim
// is one compare-and-swap and two processes racing to take over a dead holder cannot both win:
//
//     bits  0–31  pid of the holder (0 when vacant)
//     bits 32–39  state: vacant, claiming, attached, closed
//     bits 40–63  epoch: +1 at every claim, so the other side sees "a new holder" even when the
//                 new holder reuses the dead one's PID
//
// `start_ticks` beside it is the holder's start time (ProcessRef): written while the state is
// `claiming`, before `attached` is stored with release, so whoever acquires `attached` reads the
// start time that belongs to that holder.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

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

// One end's record. Written at claim, close and takeover only, so it stays shared in every cache
// and reading it on each operation (is the peer closed?) costs a hit, not a miss.
struct alignas(kLineSize) EndpointLine {
    std::atomic<std::uint64_t> owner;
    std::atomic<std::uint64_t> start_ticks;
    // Rings only: nonzero when the holder's waits may sleep on a futex (`block`, `adaptive`): its
    // peer then keeps a fence after each publication; zero for `spin`, whose peer drops it (see
    // src/rings/wait.hpp). Written by the holder at attach.
    std::atomic<std::uint32_t> may_sleep;
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "owner words must be lock-free across processes");

// What a successful claim found.
struct Claim {
    std::uint32_t epoch = 0;         // this holder's epoch (pass it to release_endpoint)
    bool took_over = false;          // the previous holder had died without closing
    std::uint32_t previous_pid = 0;  // the dead holder, when took_over
};

// Claims `line` for this process. Vacant or closed: a fresh claim. Held (attached or claiming)
// by a process that is gone (pid + start time, a zombie is gone): taken over. Held by a live
// process: Error device_or_resource_busy, "<what> is held by pid N (alive)". An unknown state
// is a corrupt region: Error protocol_error naming `what`.
[[nodiscard]] Claim claim_endpoint(EndpointLine& line, const std::string& what);

// Marks the end closed if this process (`epoch`) still holds it; a holder that was taken over
// (its epoch moved on) leaves the line alone. Release order: everything the holder published
// happens-before a peer that acquires `closed`.
void release_endpoint(EndpointLine& line, std::uint32_t epoch) noexcept;

// The other side of an end, as seen by its peer: cheap to ask on every operation (`closed()` is
// one load), and a rate-limited liveness check for waits (`gone()`, at most every kCheckInterval).
// A new holder (a new epoch) re-arms the watch, so a consumer whose producer was replaced by a
// takeover sees the new producer, not the dead one.
class EndpointWatch {
public:
    EndpointWatch() = default;
    explicit EndpointWatch(const EndpointLine* line) noexcept : line_(line) {}

    // The end was closed cleanly (one acquire load).
    [[nodiscard]] bool closed() const noexcept;
    // Nobody holds the end now: closed, never claimed, or its holder died. Looks the holder's
    // process up at most every kCheckInterval; between looks it answers from the last one.
    [[nodiscard]] bool gone(std::chrono::steady_clock::time_point now);
    // The holder's state as of the last look, and whether one was ever attached.
    [[nodiscard]] OwnerWord owner() const noexcept;
    // A descriptor that polls readable when the watched holder exits (a pidfd), or -1.
    [[nodiscard]] int fd() const noexcept { return watch_.fd(); }

    static constexpr std::chrono::milliseconds kCheckInterval{20};

private:
    const EndpointLine* line_ = nullptr;
    std::uint64_t watched_word_ = 0;  // the owner word the ProcessWatch was made for
    ProcessWatch watch_;
    bool holder_dead_ = false;
    std::chrono::steady_clock::time_point next_check_{};
};

}  // namespace ipckit::detail::ring
