// The shared-memory topic (one publisher, many subscribers): layout in
// ipckit/detail/topic_layout.hpp, design and memory orders in docs/topics.md.
#include "ipckit/topic.hpp"

#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <new>
#include <string>
#include <utility>

#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/topic_layout.hpp"
#include "ipckit/error.hpp"
#include "region.hpp"
#include "wait.hpp"

namespace ipckit {

using namespace detail::topic;
using namespace detail::region;
using detail::ring::claim_endpoint;
using detail::ring::EndpointState;
using detail::ring::EndpointWatch;
using detail::ring::OwnerWord;
using detail::ring::release_endpoint;
using Clock = Deadline::Clock;

namespace {

// Waiting is the ring's (src/rings/wait.hpp): spin a few microseconds, yield a few times, then
// sleep on a futex in slices short enough to notice a peer that died without waking us.
using detail::wait_until;
// A joiner whose start is overtaken by the publisher (it wrote faster than the joiner could
// settle) tries again this often before it starts at the oldest intact record.
constexpr int kJoinAttempts = 64;
using detail::region::str;
using detail::region::wake_all;

[[noreturn]] void corrupt_record(std::uint64_t position, std::uint64_t capacity, const std::string& what) {
    throw_error(std::errc::bad_message, "topic record at offset " + str(position & (capacity - 1)) +
                                            " (position " + str(position) + "): " + what);
}

std::size_t max_message(std::uint64_t capacity) {
    // A record and the 8-byte invalidation after it take at most half the area, so one always
    // fits however the free space is split around the end.
    return static_cast<std::size_t>(capacity / 2 - kRecordHeader - kCommitWordSize);
}

inline std::atomic<std::uint64_t>& word_at(std::byte* data, std::uint64_t offset) noexcept {
    return *std::launder(reinterpret_cast<std::atomic<std::uint64_t>*>(data + offset));
}
inline const std::atomic<std::uint64_t>& word_at(const std::byte* data, std::uint64_t offset) noexcept {
    return *std::launder(reinterpret_cast<const std::atomic<std::uint64_t>*>(data + offset));
}

struct Geometry {
    TopicHeader* header;
    std::byte* data;
    std::uint64_t capacity;
    std::uint32_t slots;
    std::uint32_t history;
    bool drop;
    std::uint64_t committed;
    std::uint64_t next_sequence;
    std::uint64_t oldest;
};

// Reads every header field once, into locals, and checks it: the header is shared with
// processes that may be buggy or hostile.
Geometry validate(std::span<std::byte> region) {
    detail::region::check_span(region, Kind::topic, header_size(1) + kMinCapacity);
    // The header grows with the slots, so its size is checked here, against the kind words.
    const auto control = detail::region::read_control(region, Kind::topic, 0);
    const auto corrupt = [](const std::string& what) { detail::region::corrupt_header(Kind::topic, what); };
    const std::uint64_t slots = control.kind_words[kSlotsWord];
    const std::uint64_t history = control.kind_words[kHistoryWord];
    const std::uint64_t overflow = control.kind_words[kOverflowWord];
    if (slots < 1 || slots > kMaxSubscribers)
        corrupt("subscriber slots " + str(slots) + " outside 1 … " + str(kMaxSubscribers));
    if (history > kMaxHistory) corrupt("history " + str(history) + " over " + str(kMaxHistory));
    if (overflow > 1) corrupt("overflow " + str(overflow) + " is neither block (0) nor drop (1)");
    const std::uint32_t size = control.header_size;
    const std::size_t expected_size = header_size(static_cast<std::uint32_t>(slots));
    if (size != expected_size)
        corrupt("header size " + str(size) + ", expected " + str(expected_size) + " for " + str(slots) +
                " slots");
    const std::uint64_t capacity = control.capacity;
    detail::region::check_fits(Kind::topic, size, capacity, region.size());
    auto* header = std::launder(reinterpret_cast<TopicHeader*>(region.data()));
    const std::uint64_t committed = header->publisher.committed.load(std::memory_order_acquire);
    const std::uint64_t next_sequence = header->publisher.next_sequence.load(std::memory_order_acquire);
    const std::uint64_t oldest = header->oldest.position.load(std::memory_order_acquire);
    if (oldest > committed || committed - oldest > capacity || committed % kRecordAlignment != 0 ||
        oldest % kRecordAlignment != 0) {
        throw_error(std::errc::protocol_error, "topic cursors corrupt: oldest at " + str(oldest) +
                                                   ", committed at " + str(committed) + ", capacity " +
                                                   str(capacity));
    }
    return {header,
            region.data() + size,
            capacity,
            static_cast<std::uint32_t>(slots),
            static_cast<std::uint32_t>(history),
            overflow == 1,
            committed,
            next_sequence,
            oldest};
}

// Wakes every sleeper on `event` if any announced itself. The caller issued a seq_cst fence
// between its publication (commit word or cursor) and this load: the store-buffer handshake
// with a sleeper's announcement, fence and re-check (see wait.hpp), so no wake-up is lost
// and nobody sleeping costs no system call. (A topic keeps the fence on both sides: its
// publisher has many peers, each of which may sleep at once.)
inline void wake_sleepers(std::atomic<std::uint32_t>& sleepers, std::atomic<std::uint32_t>& event) {
    if (sleepers.load(std::memory_order_relaxed) != 0) [[unlikely]] {
        event.fetch_add(1, std::memory_order_release);
        (void)detail::futex_wake(event, INT_MAX);
    }
}

// A position read from the region after attach (oldest, committed) becomes a cursor: one that is
// not 8-aligned would put commit words at misaligned addresses.
std::uint64_t checked_position(std::uint64_t position, const char* what) {
    if (position % kRecordAlignment != 0) {
        throw_error(std::errc::protocol_error, std::string("topic ") + what + " position " + str(position) +
                                                   " is not 8-aligned (the region is corrupt)");
    }
    return position;
}

// Writes the publisher line's pair under its sequence lock (single writer: the publisher).
void store_committed(PublisherLine& line, std::uint64_t committed, std::uint64_t next_sequence) noexcept {
    const std::uint64_t v = line.version.load(std::memory_order_relaxed);
    line.version.store(v | 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);  // odd before the new values
    line.next_sequence.store(next_sequence, std::memory_order_relaxed);
    line.committed.store(committed, std::memory_order_relaxed);
    line.version.store((v | 1) + 1, std::memory_order_release);  // the values before even
}

// Reads the pair; false if it kept changing (or a publisher died half-way through writing it).
bool load_committed(const PublisherLine& line, std::uint64_t& committed,
                    std::uint64_t& next_sequence) noexcept {
    for (int attempt = 0; attempt < 1000; ++attempt) {
        const std::uint64_t v1 = line.version.load(std::memory_order_acquire);
        committed = line.committed.load(std::memory_order_relaxed);
        next_sequence = line.next_sequence.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);  // the values before the re-read
        if (v1 % 2 == 0 && line.version.load(std::memory_order_relaxed) == v1) return true;
        ::sched_yield();
    }
    committed = line.committed.load(std::memory_order_acquire);
    return false;
}

}  // namespace

// ---- Topic ----

std::size_t Topic::region_size(std::size_t capacity, std::uint32_t subscribers) noexcept {
    return header_size(subscribers) + capacity;
}

std::size_t Topic::max_message_size(std::size_t capacity) noexcept {
    return max_message(capacity);
}

std::size_t Topic::format(std::span<std::byte> region, TopicOptions options) {
    detail::region::check_span(region, Kind::topic, header_size(1) + kMinCapacity);
    if (options.subscribers < 1 || options.subscribers > kMaxSubscribers) {
        throw_error(std::errc::invalid_argument, "topic subscribers=" + str(options.subscribers) +
                                                     " is outside 1 … " + str(kMaxSubscribers));
    }
    if (options.history > kMaxHistory) {
        throw_error(std::errc::invalid_argument,
                    "topic history=" + str(options.history) + " is over the limit of " + str(kMaxHistory));
    }
    const std::size_t size = header_size(options.subscribers);
    if (region.size() < size + kMinCapacity) {
        throw_error(std::errc::invalid_argument, "topic region of " + str(region.size()) +
                                                     " bytes is too small: " + str(options.subscribers) +
                                                     " slots need " + str(size + kMinCapacity));
    }
    const std::uint64_t capacity = detail::region::choose_capacity(
        Kind::topic, options.capacity, region.size() - size, size + options.capacity, region.size());
    std::memset(region.data(), 0, size);
    auto* header = ::new (region.data()) TopicHeader{};
    for (std::uint32_t i = 0; i < options.subscribers; ++i)
        ::new (&slots(header)[i]) Slot{};
    // The first record's position must not hold a word that passes for a commit word.
    word_at(region.data() + size, 0).store(invalid_word(0), std::memory_order_relaxed);
    detail::region::stamp(
        header->control, Kind::topic, size, capacity,
        {options.subscribers, options.history,
         static_cast<std::uint64_t>(options.overflow == Overflow::drop ? OverflowWord::drop
                                                                       : OverflowWord::block)});
    return static_cast<std::size_t>(capacity);
}

// ---- TopicPublisher ----

TopicPublisher TopicPublisher::attach(std::span<std::byte> region, WaitMode mode) {
    const Geometry g = validate(region);
    // A publisher that died asleep left its sleeper count: start clean.
    const auto claim = claim_endpoint(g.header->publisher_end, "topic publisher", [&] {
        g.header->wait.publisher_sleepers.store(0, std::memory_order_relaxed);
    });
    TopicPublisher p;
    p.header_ = g.header;
    p.slots_ = slots(g.header);
    p.data_ = g.data;
    p.capacity_ = g.capacity;
    p.mask_ = g.capacity - 1;
    p.max_message_ = max_message(g.capacity);
    p.slot_count_ = g.slots;
    p.history_ = g.history;
    p.drop_ = g.drop;
    p.mode_ = mode;
    p.epoch_ = claim.epoch;
    p.took_over_ = claim.took_over;
    p.head_ = g.committed;
    p.sequence_ = g.next_sequence;
    p.oldest_ = g.oldest;
    // A publisher that died between a commit word and its cursor store left committed records
    // beyond the cursor: walk them, so they are neither overwritten nor renumbered.
    for (std::uint64_t steps = 0; steps < p.capacity_ / kRecordAlignment; ++steps) {
        const std::uint64_t offset = p.head_ & p.mask_;
        const std::uint64_t word = word_at(p.data_, offset).load(std::memory_order_acquire);
        const std::uint32_t length = word_length(word);
        std::uint64_t next = 0;
        if (word_stamp(word) == padding_stamp(p.head_) && length == p.capacity_ - offset) {
            next = p.head_ + length;
        } else if (word_stamp(word) == data_stamp(p.head_) && length <= p.max_message_ &&
                   word_at(p.data_, offset + 8).load(std::memory_order_relaxed) == p.sequence_) {
            next = p.head_ + record_size(length, kRecordHeader);
            ++p.sequence_;
        } else {
            break;
        }
        if (next + kCommitWordSize - p.oldest_ > p.capacity_) break;
        p.head_ = next;
    }
    // A publisher that died inside store_committed left the version odd: even it again.
    g.header->publisher.version.store(
        g.header->publisher.version.load(std::memory_order_relaxed) & ~std::uint64_t{1},
        std::memory_order_relaxed);
    store_committed(g.header->publisher, p.head_, p.sequence_);
    p.seen_joiners_ = g.header->oldest.joiners.load(std::memory_order_acquire);
    p.cached_floor_ = 0;  // unknown: scan before the first overwrite
    p.watches_ = std::make_unique<EndpointWatch[]>(g.slots);
    for (std::uint32_t i = 0; i < g.slots; ++i)
        p.watches_[i] = EndpointWatch(&p.slots_[i].end);
    // Subscribers asleep on a doorbell learn of the new publisher now, so that they watch its pidfd.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (g.header->wait.subscriber_sleepers.load(std::memory_order_relaxed) != 0) p.ring_doorbells();
    return p;
}

TopicPublisher::TopicPublisher(TopicPublisher&& other) noexcept {
    *this = std::move(other);
}

TopicPublisher& TopicPublisher::operator=(TopicPublisher&& other) noexcept {
    if (this != &other) {
        close();
        header_ = std::exchange(other.header_, nullptr);
        slots_ = other.slots_;
        data_ = other.data_;
        capacity_ = other.capacity_;
        mask_ = other.mask_;
        max_message_ = other.max_message_;
        slot_count_ = other.slot_count_;
        history_ = other.history_;
        drop_ = other.drop_;
        mode_ = other.mode_;
        epoch_ = other.epoch_;
        took_over_ = other.took_over_;
        head_ = other.head_;
        sequence_ = other.sequence_;
        oldest_ = other.oldest_;
        cached_floor_ = other.cached_floor_;
        seen_joiners_ = other.seen_joiners_;
        pending_position_ = other.pending_position_;
        pending_size_ = other.pending_size_;
        pending_ = std::exchange(other.pending_, false);
        watches_ = std::move(other.watches_);
        bell_sender_ = std::move(other.bell_sender_);
    }
    return *this;
}

TopicPublisher::~TopicPublisher() {
    close();
}

void TopicPublisher::close() noexcept {
    release_ownership();
}

void TopicPublisher::release_ownership() noexcept {
    if (header_ == nullptr) return;
    release_endpoint(header_->publisher_end, epoch_);
    wake_all(header_->wait.data_event);  // sleeping subscribers see `closed` now, not in 20 ms
    ring_doorbells();
    header_ = nullptr;
    pending_ = false;
}

std::uint32_t TopicPublisher::subscribers() const noexcept {
    std::uint32_t n = 0;
    for (std::uint32_t i = 0; header_ != nullptr && i < slot_count_; ++i) {
        const OwnerWord owner = OwnerWord::unpack(slots_[i].end.owner.load(std::memory_order_acquire));
        // Attached and done joining: its cursor is set, so it gets what is published from now on.
        if (owner.state == EndpointState::attached &&
            slots_[i].cursor.joined_epoch.load(std::memory_order_acquire) == owner.epoch)
            ++n;
    }
    return n;
}

// Scans the slots: true when every live subscriber has consumed everything below `floor`.
bool TopicPublisher::room_for(std::uint64_t floor, Clock::time_point now) {
    std::uint64_t slowest = head_;
    for (std::uint32_t i = 0; i < slot_count_; ++i) {
        const OwnerWord owner = OwnerWord::unpack(slots_[i].end.owner.load(std::memory_order_acquire));
        if (owner.state != EndpointState::attached && owner.state != EndpointState::claiming) continue;
        // acquire: the subscriber's reads of what it consumed happen-before our overwrite of it.
        std::uint64_t cursor = slots_[i].cursor.position.load(std::memory_order_acquire);
        if (cursor > head_) cursor = head_;  // nonsense from a hostile slot: it holds nothing back
        if (cursor < floor) {
            // Holding us back: but only a live subscriber may (one liveness check, rate-limited).
            if (owner.state == EndpointState::attached && watches_[i].gone(now)) continue;
            return false;
        }
        slowest = std::min(slowest, cursor);
    }
    cached_floor_ = slowest;
    return true;
}

// Moves `oldest` past every record below `floor` before their bytes are overwritten.
void TopicPublisher::advance_oldest(std::uint64_t floor) {
    std::uint64_t position = oldest_;
    while (position < floor) {
        const std::uint64_t offset = position & mask_;
        const std::uint64_t word = word_at(data_, offset).load(std::memory_order_acquire);
        const std::uint32_t length = word_length(word);
        if (word_stamp(word) == padding_stamp(position) && length == capacity_ - offset) {
            position += length;
        } else if (word_stamp(word) == data_stamp(position) && length <= max_message_) {
            position += record_size(length, kRecordHeader);
        } else {
            corrupt_record(position, capacity_, "the commit word of a published record was overwritten");
        }
        if (position > head_)
            corrupt_record(position, capacity_, "a record runs past the committed position");
    }
    oldest_ = position;
    header_->oldest.position.store(position, std::memory_order_relaxed);
    // A copying subscriber re-reads `oldest` after its copy (acquire fence): this fence orders the
    // store before the bytes we are about to overwrite (seqlock order). seq_cst, not just release:
    // it is also the store-buffer handshake with a joiner that stores its cursor, bumps `joiners`,
    // fences and re-reads `oldest` — either it sees our new oldest, or we see its bump below.
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

Status TopicPublisher::reserve(std::size_t size, Deadline deadline) {
    if (header_ == nullptr) throw_error(std::errc::bad_file_descriptor, "topic publisher is closed");
    if (size > max_message_) {
        throw_error(std::errc::message_size, "topic message of " + str(size) +
                                                 " bytes is over the limit of " + str(max_message_) +
                                                 " for a topic of " + str(capacity_) + " bytes");
    }
    const std::uint64_t record = record_size(size, kRecordHeader);
    const std::uint64_t offset = head_ & mask_;
    const std::uint64_t padding = offset + record > capacity_ ? capacity_ - offset : 0;
    const std::uint64_t need = padding + record + kCommitWordSize;  // + the next header's invalidation
    const std::uint64_t floor = head_ + need > capacity_ ? head_ + need - capacity_ : 0;
    while (floor > oldest_) {
        if (!drop_ && floor > cached_floor_ && !room_for(floor, Clock::now())) {
            if (deadline.is_immediate()) return Status::would_block;
            // Asleep, it watches the holders of the subscribers that hold it back: a death wakes it.
            auto holding_back = [&](detail::HolderWords* words, std::size_t max) {
                std::size_t n = 0;
                for (std::uint32_t i = 0; i < slot_count_ && n < max; ++i) {
                    const auto state =
                        OwnerWord::unpack(slots_[i].end.owner.load(std::memory_order_acquire)).state;
                    if (state != EndpointState::attached && state != EndpointState::claiming) continue;
                    if (slots_[i].cursor.position.load(std::memory_order_acquire) >= floor) continue;
                    words[n++] = &slots_[i].end.holder;
                }
                return n;
            };
            const Status s = wait_until(
                mode_, deadline, sleeper_, header_->wait.publisher_sleepers, header_->wait.space_event,
                [](Clock::time_point) { return false; }, holding_back,
                [&] { return room_for(floor, Clock::now()); }, [] {});
            if (s != Status::ok) return s;
        }
        advance_oldest(floor);
        if (drop_) break;
        // A subscriber that joined since our last scan may have started below `floor` before it
        // saw the new oldest: scan again (acquire: its cursor store happens-before its bump).
        const std::uint64_t joiners = header_->oldest.joiners.load(std::memory_order_acquire);
        if (joiners == seen_joiners_) break;
        seen_joiners_ = joiners;
        if (room_for(floor, Clock::now())) break;
        cached_floor_ = 0;  // loop: wait for it to move
    }
    if (padding != 0) {
        // The record goes at offset 0: invalidate its header, then commit the padding (release),
        // so a subscriber that follows the padding finds "nothing yet" there, never older bytes.
        word_at(data_, 0).store(invalid_word(head_ + padding), std::memory_order_relaxed);
        word_at(data_, offset)
            .store(commit_word(static_cast<std::uint32_t>(padding), padding_stamp(head_)),
                   std::memory_order_release);
        head_ += padding;
    }
    pending_position_ = head_;
    pending_size_ = size;
    pending_ = true;
    return Status::ok;
}

void TopicPublisher::publish(std::size_t size) {
    const std::uint64_t position = pending_position_;
    const std::uint64_t offset = position & mask_;
    const std::uint64_t next = position + record_size(size, kRecordHeader);
    word_at(data_, offset + 8).store(sequence_, std::memory_order_relaxed);
    if (history_ != 0)
        header_->history.position[sequence_ % history_].store(position, std::memory_order_relaxed);
    // The next header is invalidated before this one is committed: a subscriber that acquires
    // this commit word and moves on reads "nothing yet" there, not a word from an earlier lap.
    word_at(data_, next & mask_).store(invalid_word(next), std::memory_order_relaxed);
    // release: the payload, sequence number, history entry and invalidation happen-before a
    // subscriber that acquires the commit word.
    word_at(data_, offset)
        .store(commit_word(static_cast<std::uint32_t>(size), data_stamp(position)),
               std::memory_order_release);
    head_ = next;
    ++sequence_;
    pending_ = false;
    store_committed(header_->publisher, head_, sequence_);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the commit before the sleepers load
    if (header_->wait.subscriber_sleepers.load(std::memory_order_relaxed) != 0) [[unlikely]] {
        header_->wait.data_event.fetch_add(1, std::memory_order_release);
        (void)detail::futex_wake(header_->wait.data_event, INT_MAX);
        ring_doorbells();  // an armed doorbell counts as a sleeper, so it is only looked for here
    }
}

void TopicPublisher::ring_doorbells() noexcept {
    for (std::uint32_t i = 0; i < slot_count_; ++i) {
        SlotLine& line = slots_[i].cursor;
        // acquire: pairs with arm()'s release, so the name is the one written before arming.
        if (line.doorbell_armed.load(std::memory_order_acquire) == 0) continue;
        detail::region::ring_doorbell(line.doorbell_name, line.doorbell_length, kDoorbellNameSize,
                                      bell_sender_);
    }
}

IoResult TopicPublisher::send(std::span<const std::byte> message, Deadline deadline) {
    const Status s = reserve(message.size(), deadline);
    if (s != Status::ok) return {s, 0};
    if (!message.empty()) {
        std::memcpy(data_ + (pending_position_ & mask_) + kRecordHeader, message.data(), message.size());
    }
    publish(message.size());
    return {Status::ok, message.size()};
}

Loan TopicPublisher::loan(std::size_t size, Deadline deadline) {
    const Status s = reserve(size, deadline);
    if (s != Status::ok) return {s, {}};
    return {Status::ok, std::span(data_ + (pending_position_ & mask_) + kRecordHeader, size)};
}

void TopicPublisher::commit(std::size_t size) {
    if (!pending_) throw_error(std::errc::invalid_argument, "topic commit without a loan");
    if (size > pending_size_) {
        throw_error(std::errc::invalid_argument,
                    "topic commit of " + str(size) + " bytes exceeds the loan of " + str(pending_size_));
    }
    publish(size);
}

// ---- TopicSubscriber ----

TopicSubscriber TopicSubscriber::attach(std::span<std::byte> region, WaitMode mode) {
    const Geometry g = validate(region);
    Slot* all = slots(g.header);
    std::uint32_t index = 0;
    detail::ring::Claim claim;
    for (;; ++index) {
        if (index == g.slots) {
            throw_error(std::errc::device_or_resource_busy,
                        "topic: all " + str(g.slots) + " subscriber slots are held by live subscribers");
        }
        try {
            // A subscriber that died asleep or armed is still counted among the sleepers (which
            // all subscribers share): take its count back, as its slot's flags say.
            SlotLine& line = all[index].cursor;
            claim = claim_endpoint(all[index].end, "topic subscriber slot " + str(index), [&] {
                if (line.sleeping.exchange(0, std::memory_order_relaxed) != 0)
                    g.header->wait.subscriber_sleepers.fetch_sub(1, std::memory_order_relaxed);
                if (line.doorbell_armed.exchange(0, std::memory_order_relaxed) != 0)
                    g.header->wait.subscriber_sleepers.fetch_sub(1, std::memory_order_relaxed);
            });
            break;
        } catch (const Error& e) {
            if (e.code() != std::errc::device_or_resource_busy) throw;
        }
    }
    TopicSubscriber s;
    s.header_ = g.header;
    s.slot_ = &all[index];
    s.data_ = g.data;
    s.capacity_ = g.capacity;
    s.mask_ = g.capacity - 1;
    s.max_message_ = max_message(g.capacity);
    s.drop_ = g.drop;
    s.mode_ = mode;
    s.slot_index_ = index;
    s.epoch_ = claim.epoch;
    s.took_over_ = claim.took_over;
    s.publisher_ = EndpointWatch(&g.header->publisher_end, EndpointWatch::JoinAfter{});
    s.sleeper_.set_sleeping_flag(&s.slot_->cursor.sleeping);
    TopicHeader& h = *g.header;
    for (int attempt = 0;; ++attempt) {
        // acquire (inside): the history entries and records below `committed` are the published
        // ones. The pair says which sequence number the record at `committed` will carry, so a
        // subscriber lapped before its first receive still counts what it missed.
        std::uint64_t committed = 0;
        std::uint64_t next = 0;
        s.known_ = load_committed(h.publisher, committed, next);
        s.expected_ = next;
        const std::uint64_t oldest = h.oldest.position.load(std::memory_order_acquire);
        std::uint64_t start = checked_position(committed, "committed");
        for (std::uint64_t k = next - std::min<std::uint64_t>(g.history, next);
             k < next && attempt < kJoinAttempts; ++k) {
            // A candidate counts only if its commit word and sequence number say it is record k.
            const std::uint64_t p = h.history.position[k % g.history].load(std::memory_order_relaxed);
            if (p < oldest || p >= committed || p % kRecordAlignment != 0) continue;
            const std::uint64_t word = word_at(g.data, p & s.mask_).load(std::memory_order_acquire);
            if (word_stamp(word) != data_stamp(p) || word_length(word) > s.max_message_) continue;
            if (word_at(g.data, (p & s.mask_) + 8).load(std::memory_order_relaxed) != k) continue;
            start = p;
            s.expected_ = k;
            s.known_ = true;
            break;
        }
        s.slot_->cursor.position.store(start, std::memory_order_relaxed);
        s.slot_->cursor.sequence.store(s.expected_, std::memory_order_relaxed);
        s.slot_->cursor.missed.store(0, std::memory_order_relaxed);
        // The store-buffer handshake with the publisher's advance_oldest: our cursor, then the
        // bump (a seq_cst read-modify-write), then `oldest`. Either the publisher sees the bump
        // and rescans (finding our cursor), or we see the oldest it moved to and start again.
        h.oldest.joiners.fetch_add(1, std::memory_order_seq_cst);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        const std::uint64_t now_oldest =
            checked_position(h.oldest.position.load(std::memory_order_relaxed), "oldest");
        if (now_oldest <= start) {
            s.cursor_ = start;
            break;
        }
        if (attempt >= kJoinAttempts) {
            // The publisher laps faster than we settle: start at the oldest intact record.
            s.cursor_ = now_oldest;
            s.known_ = false;
            s.slot_->cursor.position.store(now_oldest, std::memory_order_release);
            break;
        }
    }
    // release: a publisher that counts this subscriber (subscribers()) sees its cursor set, so
    // whatever it publishes after counting reaches this subscriber.
    s.slot_->cursor.joined_epoch.store(claim.epoch, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    wake_sleepers(h.wait.publisher_sleepers, h.wait.space_event);  // a publisher may wait on a stale cursor
    return s;
}

TopicSubscriber::TopicSubscriber(TopicSubscriber&& other) noexcept {
    *this = std::move(other);
}

TopicSubscriber& TopicSubscriber::operator=(TopicSubscriber&& other) noexcept {
    if (this != &other) {
        close();
        header_ = std::exchange(other.header_, nullptr);
        slot_ = other.slot_;
        data_ = other.data_;
        capacity_ = other.capacity_;
        mask_ = other.mask_;
        max_message_ = other.max_message_;
        drop_ = other.drop_;
        mode_ = other.mode_;
        slot_index_ = other.slot_index_;
        epoch_ = other.epoch_;
        took_over_ = other.took_over_;
        cursor_ = other.cursor_;
        expected_ = other.expected_;
        known_ = other.known_;
        missed_ = other.missed_;
        missed_total_ = other.missed_total_;
        record_sequence_ = other.record_sequence_;
        record_length_ = other.record_length_;
        holding_ = std::exchange(other.holding_, false);
        armed_ = std::exchange(other.armed_, false);
        doorbell_ = std::move(other.doorbell_);
        publisher_ = std::move(other.publisher_);
        sleeper_ = other.sleeper_;
    }
    return *this;
}

TopicSubscriber::~TopicSubscriber() {
    close();
}

void TopicSubscriber::close() noexcept {
    release_ownership();
}

void TopicSubscriber::release_ownership() noexcept {
    if (header_ == nullptr) return;
    disarm();
    slot_->cursor.doorbell_length = 0;
    release_endpoint(slot_->end, epoch_);
    wake_all(header_->wait.space_event);  // a publisher waiting for us may go on
    header_ = nullptr;
    holding_ = false;
}

bool TopicSubscriber::lapped() const noexcept {
    return header_->oldest.position.load(std::memory_order_acquire) > cursor_;
}

// Looks at the commit word at the cursor, skipping padding: ok (a data record, described in
// record_*), or would_block (nothing committed there yet).
Status TopicSubscriber::probe() {
    for (;;) {
        const std::uint64_t offset = cursor_ & mask_;
        const std::uint64_t word = word_at(data_, offset).load(std::memory_order_acquire);
        const std::uint32_t length = word_length(word);
        const std::uint32_t stamp = word_stamp(word);
        if (stamp == padding_stamp(cursor_) && length == capacity_ - offset) {
            cursor_ += length;
            slot_->cursor.position.store(cursor_, std::memory_order_release);
            continue;
        }
        if (stamp == data_stamp(cursor_) && length <= max_message_) {
            record_length_ = length;
            record_sequence_ = word_at(data_, offset + 8).load(std::memory_order_relaxed);
            return Status::ok;
        }
        if (drop_ && lapped()) {
            // Lapped: resume at the oldest intact record; the gap in sequence numbers is counted
            // when the next record is delivered.
            cursor_ = checked_position(header_->oldest.position.load(std::memory_order_acquire), "oldest");
            continue;
        }
        if (stamp == padding_stamp(cursor_) || stamp == data_stamp(cursor_)) {
            corrupt_record(cursor_, capacity_,
                           "length " + str(length) + " is not valid here (largest message " +
                               str(max_message_) + ", bytes to the end " + str(capacity_ - offset) + ")");
        }
        return Status::would_block;
    }
}

Status TopicSubscriber::next_record(Deadline deadline) {
    if (header_ == nullptr) throw_error(std::errc::bad_file_descriptor, "topic subscriber is closed");
    Status s = probe();
    if (s != Status::would_block) return s;
    auto publisher_gone = [this](Clock::time_point now) {
        // Never claimed: a subscriber that came first waits for the publisher.
        if (publisher_.owner().state == EndpointState::vacant) return false;
        return publisher_.gone(now);
    };
    if (publisher_gone(Clock::now())) return probe() == Status::ok ? Status::ok : Status::closed;
    if (deadline.is_immediate()) return Status::would_block;
    s = wait_until(mode_, deadline, sleeper_, header_->wait.subscriber_sleepers, header_->wait.data_event,
                   publisher_, publisher_gone, [&] { return probe() == Status::ok; });
    if (s == Status::closed && probe() == Status::ok) return Status::ok;  // drain what it committed
    return s;
}

void TopicSubscriber::consume() {
    const std::uint64_t sequence = record_sequence_;
    missed_ = known_ && sequence > expected_ ? sequence - expected_ : 0;
    missed_total_ += missed_;
    expected_ = sequence + 1;
    known_ = true;
    cursor_ += record_size(record_length_, kRecordHeader);
    holding_ = false;
    slot_->cursor.sequence.store(expected_, std::memory_order_relaxed);
    if (missed_ != 0) slot_->cursor.missed.store(missed_total_, std::memory_order_relaxed);
    // release: our reads of the record happen-before the publisher's overwrite of its bytes.
    slot_->cursor.position.store(cursor_, std::memory_order_release);
    if (!drop_) {
        std::atomic_thread_fence(std::memory_order_seq_cst);  // the cursor before the sleepers load
        wake_sleepers(header_->wait.publisher_sleepers, header_->wait.space_event);
    }
}

IoResult TopicSubscriber::recv(std::span<std::byte> buffer, Deadline deadline) {
    for (;;) {
        const Status s = next_record(deadline);
        if (s != Status::ok) return {s, 0};
        if (record_length_ > buffer.size()) {
            throw_error(std::errc::message_size, "topic message of " + str(record_length_) +
                                                     " bytes does not fit the buffer of " +
                                                     str(buffer.size()));
        }
        std::memcpy(buffer.data(), data_ + (cursor_ & mask_) + kRecordHeader, record_length_);
        if (drop_) {
            // Seqlock check: the publisher moves `oldest` past a record (then fences) before it
            // overwrites it; after our copy (this acquire fence), an `oldest` beyond the record
            // means the copy may be torn. Throw it away and resume at the oldest intact record.
            std::atomic_thread_fence(std::memory_order_acquire);
            if (header_->oldest.position.load(std::memory_order_relaxed) > cursor_) {
                cursor_ =
                    checked_position(header_->oldest.position.load(std::memory_order_acquire), "oldest");
                continue;
            }
        } else if (known_ && record_sequence_ < expected_) {
            corrupt_record(
                cursor_, capacity_,
                "sequence " + str(record_sequence_) + " goes back (expected " + str(expected_) + ")");
        }
        const std::size_t length = record_length_;
        consume();
        return {Status::ok, length};
    }
}

IoResult TopicSubscriber::recv(std::vector<std::byte>& message, Deadline deadline) {
    for (;;) {
        const Status s = next_record(deadline);
        if (s != Status::ok) return {s, 0};
        message.resize(record_length_);
        if (record_length_ != 0) {
            std::memcpy(message.data(), data_ + (cursor_ & mask_) + kRecordHeader, record_length_);
        }
        if (drop_) {
            std::atomic_thread_fence(std::memory_order_acquire);  // as in recv(span) above
            if (header_->oldest.position.load(std::memory_order_relaxed) > cursor_) {
                cursor_ =
                    checked_position(header_->oldest.position.load(std::memory_order_acquire), "oldest");
                continue;
            }
        }
        const std::size_t length = record_length_;
        consume();
        return {Status::ok, length};
    }
}

RecordView TopicSubscriber::read(Deadline deadline) {
    if (drop_) {
        throw_error(std::errc::operation_not_supported,
                    "topic read in place needs overflow=block: under drop the publisher may overwrite the "
                    "record while it is read (use recv, which copies and checks)");
    }
    const Status s = next_record(deadline);
    if (s != Status::ok) return {s, {}};
    holding_ = true;
    return {Status::ok, std::span(data_ + (cursor_ & mask_) + kRecordHeader, record_length_)};
}

void TopicSubscriber::release() {
    if (!holding_) throw_error(std::errc::invalid_argument, "topic release without a read");
    consume();
}

bool TopicSubscriber::ready() {
    return header_ != nullptr && probe() == Status::ok;
}

int TopicSubscriber::doorbell_fd() {
    if (header_ == nullptr) throw_error(std::errc::bad_file_descriptor, "topic subscriber is closed");
    if (doorbell_) return doorbell_.get();
    std::string name;
    Fd fd = detail::region::bind_doorbell("slot" + str(slot_index_) + "-", name);
    std::memcpy(slot_->cursor.doorbell_name, name.data(), name.size());
    slot_->cursor.doorbell_length = static_cast<std::uint32_t>(name.size());
    doorbell_ = std::move(fd);
    return doorbell_.get();
}

bool TopicSubscriber::arm() {
    (void)doorbell_fd();
    if (!armed_) {
        // release: the name written in doorbell_fd() happens-before a publisher that sees armed.
        slot_->cursor.doorbell_armed.store(1, std::memory_order_release);
        header_->wait.subscriber_sleepers.fetch_add(1, std::memory_order_relaxed);
        armed_ = true;
    }
    // The store-buffer handshake, as for a futex sleeper: our announcement, then the re-check;
    // the publisher's commit, then its sleepers load. One of the two sees the other.
    sleeper_.pass();
    if (probe() == Status::ok) return false;
    const OwnerWord publisher = publisher_.owner();
    if (publisher.state != EndpointState::vacant && publisher_.gone(Clock::now())) return false;  // closed
    return true;
}

void TopicSubscriber::disarm() noexcept {
    if (!armed_ || header_ == nullptr) return;
    header_->wait.subscriber_sleepers.fetch_sub(1, std::memory_order_relaxed);
    slot_->cursor.doorbell_armed.store(0, std::memory_order_relaxed);
    armed_ = false;
    detail::region::drain_doorbell(doorbell_);
}

int TopicSubscriber::publisher_fd() {
    if (header_ == nullptr) return -1;
    return publisher_.fd();  // a pidfd for a holder in this PID namespace
}

}  // namespace ipckit
