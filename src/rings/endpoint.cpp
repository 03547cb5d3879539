// Claiming, releasing and watching the ends of a shared-memory structure (layout version 3):
// include/ipckit/detail/endpoint.hpp, docs/ring-layout.md ("Endpoints").
#include "ipckit/detail/endpoint.hpp"

#include <unistd.h>

#include <utility>

#include "ipckit/error.hpp"
#include "keeper.hpp"

namespace ipckit::detail::ring {

Claim begin_claim(EndpointLine& line, const std::string& what) {
    // The owner word's state is checked first only to name a corrupt region; the holder word
    // alone decides who holds the end.
    const OwnerWord seen = OwnerWord::unpack(line.owner.load(std::memory_order_acquire));
    if (static_cast<unsigned>(seen.state) > static_cast<unsigned>(EndpointState::closed)) {
        throw_error(std::errc::protocol_error, what + ": owner state " +
                                                   std::to_string(static_cast<unsigned>(seen.state)) +
                                                   " is not a known state (the region is corrupt)");
    }
    const Hold hold = keeper_hold(line);
    if (hold.outcome == HoldOutcome::busy) {
        const std::string by = same_pid_namespace(line) ? "pid " + std::to_string(seen.pid)
                                                        : std::string("a process in another PID namespace");
        throw_error(std::errc::device_or_resource_busy, what + " is held by " + by + " (alive)");
    }
    // Ours now: the owner word is read again, as the holder we replaced left it.
    const OwnerWord before = OwnerWord::unpack(line.owner.load(std::memory_order_acquire));
    Claim claim;
    claim.epoch = hold.epoch;
    claim.took_over = hold.outcome == HoldOutcome::took_over;
    claim.previous_pid = claim.took_over ? before.pid : 0;
    const OwnerWord claiming{static_cast<std::uint32_t>(::getpid()), EndpointState::claiming, claim.epoch};
    line.owner.store(claiming.pack(), std::memory_order_relaxed);
    return claim;
}

void finish_claim(EndpointLine& line, const Claim& claim) noexcept {
    line.start_ticks.store(ProcessRef::self().start_ticks, std::memory_order_relaxed);
    line.pid_namespace.store(pid_namespace_inode(), std::memory_order_relaxed);
    if (claim.took_over)  // ours now: no other end writes the line
        line.takeovers.store(line.takeovers.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    const OwnerWord attached{static_cast<std::uint32_t>(::getpid()), EndpointState::attached, claim.epoch};
    // release: a watcher that acquires `attached` sees the reset of what a dead holder left, and
    // this holder's display fields.
    line.owner.store(attached.pack(), std::memory_order_release);
}

Claim claim_endpoint(EndpointLine& line, const std::string& what) {
    return claim_endpoint(line, what, [] {});
}

void release_endpoint(EndpointLine& line, std::uint32_t epoch) noexcept {
    OwnerWord seen = OwnerWord::unpack(line.owner.load(std::memory_order_relaxed));
    const bool owner_is_ours = seen.epoch == epoch && seen.state == EndpointState::attached;
    seen.state = EndpointState::closed;
    // Ours only if our keeper holds it: a forked child's copy of an end changes nothing. The
    // keeper unlinks the line even when the owner word no longer says ours (zeroed by a truncated
    // region, or written by a hostile peer): a line left on the list would outlive its mapping.
    (void)keeper_release(line, epoch,
                         owner_is_ours ? std::optional<std::uint64_t>(seen.pack()) : std::nullopt);
}

bool same_pid_namespace(const EndpointLine& line) noexcept {
    const std::uint64_t theirs = line.pid_namespace.load(std::memory_order_relaxed);
    return theirs == 0 || theirs == pid_namespace_inode();
}

namespace {

// Nobody holds the end that `owner` (one load of its owner word) describes.
bool nobody_holds(const EndpointLine& line, OwnerWord owner) noexcept {
    switch (owner.state) {
        case EndpointState::vacant:
        case EndpointState::closed:
            return true;
        case EndpointState::claiming:
        case EndpointState::attached:
            // acquire: a death seen here comes after everything the dead holder published. The
            // holder word is set before the owner word says claiming, so a live claimer is alive.
            return !holder_alive(line.holder.load(std::memory_order_acquire));
        default:
            return true;  // corrupt: nobody can be relied on to hold it
    }
}

}  // namespace

// One load of the owner word decides: read twice, it could say `vacant` (so gone), then a new
// holder's `attached`, and the new holder would be taken for the one that left.
EndpointWatch::EndpointWatch(const EndpointLine* line, JoinAfter) noexcept : line_(line) {
    if (line_ == nullptr) return;
    const OwnerWord left = owner();
    if (left.state == EndpointState::vacant || !nobody_holds(*line_, left)) return;
    stale_ = true;
    stale_epoch_ = left.epoch;
}

bool EndpointWatch::gone(std::chrono::steady_clock::time_point) const noexcept {
    if (line_ == nullptr) return true;
    return nobody_holds(*line_, owner());
}

bool EndpointWatch::left() const noexcept {
    if (line_ == nullptr) return false;
    const OwnerWord owner_word = owner();
    return owner_word.state != EndpointState::vacant && nobody_holds(*line_, owner_word);
}

EndpointWatch::EndpointWatch(EndpointWatch&& other) noexcept
    : line_(std::exchange(other.line_, nullptr)),
      stale_(other.stale_),
      stale_epoch_(other.stale_epoch_),
      watched_word_(std::exchange(other.watched_word_, 0)),
      watch_(std::move(other.watch_)),
      holder_event_(std::move(other.holder_event_)),
      holder_event_tid_(std::exchange(other.holder_event_tid_, 0)) {}

EndpointWatch& EndpointWatch::operator=(EndpointWatch&& other) noexcept {
    if (this != &other) {
        drop_holder_event();
        line_ = std::exchange(other.line_, nullptr);
        stale_ = other.stale_;
        stale_epoch_ = other.stale_epoch_;
        watched_word_ = std::exchange(other.watched_word_, 0);
        watch_ = std::move(other.watch_);
        holder_event_ = std::move(other.holder_event_);
        holder_event_tid_ = std::exchange(other.holder_event_tid_, 0);
    }
    return *this;
}

EndpointWatch::~EndpointWatch() {
    drop_holder_event();
}

// The keeper stops writing it before it is closed.
void EndpointWatch::drop_holder_event() noexcept {
    if (!holder_event_) return;
    keeper_unwatch(holder_event_.get());
    holder_event_ = Fd();
    holder_event_tid_ = 0;
}

int EndpointWatch::fd() {
    if (line_ == nullptr || gone()) return -1;
    if (!same_pid_namespace(*line_)) {
        // No pidfd can name it: the keeper turns its holder word's change into an eventfd.
        auto& holder = const_cast<EndpointLine*>(line_)->holder;
        const std::uint32_t tid = holder.load(std::memory_order_acquire) & kHolderTidMask;
        if (!holder_event_ || holder_event_tid_ != tid) {
            drop_holder_event();
            holder_event_ = keeper_watch(holder, tid);
            holder_event_tid_ = tid;
        }
        return holder_event_ ? holder_event_.get() : -1;
    }
    const std::uint64_t word = line_->owner.load(std::memory_order_acquire);
    if (word != watched_word_) {
        watched_word_ = word;
        watch_ = ProcessWatch(ProcessRef{static_cast<pid_t>(OwnerWord::unpack(word).pid),
                                         line_->start_ticks.load(std::memory_order_relaxed)});
    }
    return watch_.fd();
}

}  // namespace ipckit::detail::ring
