// Claiming, releasing and watching the ends of a shared-memory structure (layout version 2):
// include/ipckit/detail/endpoint.hpp, docs/ring-layout.md ("Endpoints").
#include "ipckit/detail/endpoint.hpp"

#include <unistd.h>

#include <thread>

#include "ipckit/error.hpp"

namespace ipckit::detail::ring {
namespace {

using Clock = std::chrono::steady_clock;

// A claimer writes its start time between winning the CAS and storing `attached`: a few
// instructions and one read of /proc/self/stat. A `claiming` state older than this, held by a
// live process, means that process is stuck (stopped by a debugger, say): report it as busy.
constexpr auto kClaimingGrace = std::chrono::milliseconds(100);

bool holder_alive(const EndpointLine& line, const OwnerWord& owner) {
    // acquire on `owner` (by the caller) ordered this load after the holder's start-time store.
    const std::uint64_t ticks =
        owner.state == EndpointState::attached ? line.start_ticks.load(std::memory_order_relaxed) : 0;
    return ProcessRef{static_cast<pid_t>(owner.pid), ticks}.alive();
}

}  // namespace

Claim claim_endpoint(EndpointLine& line, const std::string& what) {
    const ProcessRef self = ProcessRef::self();
    const auto grace_end = Clock::now() + kClaimingGrace;
    std::uint64_t word = line.owner.load(std::memory_order_acquire);
    for (;;) {
        const OwnerWord seen = OwnerWord::unpack(word);
        Claim claim;
        switch (seen.state) {
            case EndpointState::vacant:
            case EndpointState::closed:
                break;
            case EndpointState::claiming:
            case EndpointState::attached:
                if (holder_alive(line, seen)) {
                    if (seen.state == EndpointState::claiming && Clock::now() < grace_end) {
                        std::this_thread::yield();  // it is writing its start time: look again
                        word = line.owner.load(std::memory_order_acquire);
                        continue;
                    }
                    throw_error(std::errc::device_or_resource_busy,
                                what + " is held by pid " + std::to_string(seen.pid) + " (alive)");
                }
                claim.took_over = true;
                claim.previous_pid = seen.pid;
                break;
            default:
                throw_error(std::errc::protocol_error, what + ": owner state " +
                                                           std::to_string(static_cast<unsigned>(seen.state)) +
                                                           " is not a known state (the region is corrupt)");
        }
        claim.epoch = (seen.epoch + 1) & 0xffffff;
        const OwnerWord mine{static_cast<std::uint32_t>(self.pid), EndpointState::claiming, claim.epoch};
        // acq_rel: one winner among racing claimers, and the winner sees what the loser published.
        if (!line.owner.compare_exchange_strong(word, mine.pack(), std::memory_order_acq_rel,
                                                std::memory_order_acquire)) {
            continue;  // `word` now holds what beat us: decide again
        }
        line.start_ticks.store(self.start_ticks, std::memory_order_relaxed);
        OwnerWord attached = mine;
        attached.state = EndpointState::attached;
        // release: a watcher that acquires `attached` reads our start time, not the dead holder's.
        line.owner.store(attached.pack(), std::memory_order_release);
        return claim;
    }
}

void release_endpoint(EndpointLine& line, std::uint32_t epoch) noexcept {
    std::uint64_t word = line.owner.load(std::memory_order_relaxed);
    for (;;) {
        OwnerWord seen = OwnerWord::unpack(word);
        if (seen.epoch != epoch || seen.state != EndpointState::attached ||
            seen.pid != static_cast<std::uint32_t>(::getpid())) {
            return;  // taken over while we were away (we were presumed dead): not ours to close
        }
        seen.state = EndpointState::closed;
        // release: everything this holder published happens-before a peer that sees `closed`.
        if (line.owner.compare_exchange_weak(word, seen.pack(), std::memory_order_release,
                                             std::memory_order_relaxed)) {
            return;
        }
    }
}

bool EndpointWatch::closed() const noexcept {
    // acquire: pairs with release_endpoint, so the holder's last publication is visible.
    return line_ != nullptr &&
           OwnerWord::unpack(line_->owner.load(std::memory_order_acquire)).state == EndpointState::closed;
}

OwnerWord EndpointWatch::owner() const noexcept {
    return line_ == nullptr ? OwnerWord{} : OwnerWord::unpack(line_->owner.load(std::memory_order_acquire));
}

bool EndpointWatch::gone(std::chrono::steady_clock::time_point now) {
    if (line_ == nullptr) return true;
    const std::uint64_t word = line_->owner.load(std::memory_order_acquire);
    const OwnerWord owner = OwnerWord::unpack(word);
    switch (owner.state) {
        case EndpointState::vacant:
        case EndpointState::closed:
            return true;
        case EndpointState::claiming:
            return false;  // someone is arriving right now
        case EndpointState::attached:
            break;
        default:
            return true;  // corrupt: nobody can be relied on to hold it
    }
    if (word != watched_word_) {
        // A new holder (or the first we see): watch that process, not the one before it.
        watched_word_ = word;
        watch_ = ProcessWatch(
            ProcessRef{static_cast<pid_t>(owner.pid), line_->start_ticks.load(std::memory_order_relaxed)});
        holder_dead_ = watch_.gone();
        next_check_ = now + kCheckInterval;
        return holder_dead_;
    }
    if (holder_dead_ || now < next_check_) return holder_dead_;
    next_check_ = now + kCheckInterval;
    holder_dead_ = watch_.gone();
    return holder_dead_;
}

}  // namespace ipckit::detail::ring
