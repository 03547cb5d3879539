// The topic's publisher (ipckit/topic.hpp; topic_region.hpp, docs/topics.md).
#include "ipckit/topic.hpp"

#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>

#include "ipckit/error.hpp"
#include "region.hpp"
#include "topic_region.hpp"
#include "wait.hpp"

namespace ipckit {

using namespace detail::topic;
using detail::region::str;
using detail::region::wake_all;
using detail::ring::claim_endpoint;
using detail::ring::EndpointState;
using detail::ring::EndpointWatch;
using detail::ring::OwnerWord;
using detail::ring::release_endpoint;
using Clock = Deadline::Clock;
// Waiting is the ring's (wait.hpp): spin a few microseconds, yield a few times, then sleep on a
// futex in slices short enough to notice a peer that died without waking us.
using detail::wait_until;

// ---- TopicPublisher ----

TopicPublisher TopicPublisher::attach(std::span<std::byte> region, WaitMode mode) {
    const Geometry g = validate(region);
    // A publisher that died asleep left its sleeper count: start clean.
    const auto claim = claim_endpoint(g.header->publisher_end, "topic publisher", [&] {
        g.header->wait.publisher_sleepers.store(0, std::memory_order_relaxed);
    });
    TopicPublisher p;
    p.header_ = decltype(p.header_)(g.header,
                                    detail::TopicPublisherCloser{claim.epoch, g.slots});  // closes on a throw
    p.slots_ = slots(g.header);
    p.data_ = g.data;
    p.capacity_ = g.capacity;
    p.mask_ = g.capacity - 1;
    p.max_message_ = max_message(g.capacity, g.latency);
    p.record_header_ = record_header(g.latency);
    p.slot_count_ = g.slots;
    p.history_ = g.history;
    p.drop_ = g.drop;
    p.mode_ = mode;
    p.sleeper_.set_sleep_counter(&g.header->publisher.counters.sleeps);
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
            next = p.head_ + record_size(length, p.record_header_);
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

// Rings the doorbell of every armed subscriber slot (a subscriber in a PollSet or the caller's
// own loop learns of a commit, a close or a new publisher).
static void ring_armed_doorbells(Slot* slots, std::uint32_t count, Fd& sender) noexcept {
    for (std::uint32_t i = 0; i < count; ++i) {
        SlotLine& line = slots[i].cursor;
        // acquire: pairs with arm()'s release, so the name is the one written before arming.
        if (line.doorbell_armed.load(std::memory_order_acquire) == 0) continue;
        detail::region::ring_doorbell(line.doorbell_name, line.doorbell_length, kDoorbellNameSize, sender);
    }
}

void detail::TopicPublisherCloser::operator()(TopicHeader* header) const noexcept {
    release_endpoint(header->publisher_end, epoch);
    wake_all(header->wait.data_event);  // sleeping subscribers see `closed` now, not in 20 ms
    Fd sender;                          // made only if a doorbell is armed
    ring_armed_doorbells(topic::slots(header), slots, sender);
}

void TopicPublisher::close() noexcept {
    header_.reset();
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
            position += record_size(length, record_header_);
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
    const std::uint64_t record = record_size(size, record_header_);
    const std::uint64_t offset = head_ & mask_;
    const std::uint64_t padding = offset + record > capacity_ ? capacity_ - offset : 0;
    const std::uint64_t need = padding + record + kCommitWordSize;  // + the next header's invalidation
    const std::uint64_t floor = head_ + need > capacity_ ? head_ + need - capacity_ : 0;
    // recheck: a subscriber found below `floor` after `oldest` moved (it joined meanwhile) must
    // move past it before we overwrite, although `oldest` already says the bytes may go.
    for (bool recheck = false; floor > oldest_ || recheck;) {
        recheck = false;
        // A subscriber that joined since the last scan may start below the cached floor (a
        // history join): scan before overwriting anything, not only after.
        if (!drop_) {
            const std::uint64_t joined = header_->oldest.joiners.load(std::memory_order_acquire);
            if (joined != seen_joiners_) {
                seen_joiners_ = joined;
                cached_floor_ = 0;
            }
        }
        if (!drop_ && floor > cached_floor_ && !room_for(floor, Clock::now())) {
            detail::region::count(header_->publisher.counters.full_waits);
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
        if (floor > oldest_) advance_oldest(floor);
        if (drop_) break;
        // A subscriber that joined since our last scan may have started below `floor` before it
        // saw the new oldest: scan again (acquire: its cursor store happens-before its bump).
        const std::uint64_t joiners = header_->oldest.joiners.load(std::memory_order_acquire);
        if (joiners == seen_joiners_) break;
        seen_joiners_ = joiners;
        if (room_for(floor, Clock::now())) break;
        cached_floor_ = 0;
        recheck = true;  // wait for it to move past `floor`
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
    const std::uint64_t next = position + record_size(size, record_header_);
    word_at(data_, offset + 8).store(sequence_, std::memory_order_relaxed);
    if (record_header_ != kRecordHeader)  // stats=latency: the commit time after the sequence number
        word_at(data_, offset + kRecordHeader)
            .store(detail::region::monotonic_ns(), std::memory_order_relaxed);
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
    detail::region::count_message(header_->publisher.counters, size);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the commit before the sleepers load
    if (header_->wait.subscriber_sleepers.load(std::memory_order_relaxed) != 0) [[unlikely]] {
        header_->wait.data_event.fetch_add(1, std::memory_order_release);
        (void)detail::futex_wake(header_->wait.data_event, INT_MAX);
        detail::region::count(header_->publisher.counters.wakes_sent);
        ring_doorbells();  // an armed doorbell counts as a sleeper, so it is only looked for here
    }
}

void TopicPublisher::ring_doorbells() noexcept {
    ring_armed_doorbells(slots_, slot_count_, bell_sender_);
}

IoResult TopicPublisher::send(std::span<const std::byte> message, Deadline deadline) {
    const Status s = reserve(message.size(), deadline);
    if (s != Status::ok) return {s, 0};
    detail::region::copy_payload(data_ + (pending_position_ & mask_) + record_header_, message.data(),
                                 message.size());
    publish(message.size());
    return {Status::ok, message.size()};
}

Loan TopicPublisher::loan(std::size_t size, Deadline deadline) {
    const Status s = reserve(size, deadline);
    if (s != Status::ok) return {s, {}};
    return {Status::ok, std::span(data_ + (pending_position_ & mask_) + record_header_, size)};
}

void TopicPublisher::commit(std::size_t size) {
    // A moved-from or closed publisher holds no loan (its pending_ went with its end).
    if (!pending_ || header_ == nullptr)
        throw_error(std::errc::invalid_argument, "topic commit without a loan");
    if (size > pending_size_) {
        throw_error(std::errc::invalid_argument,
                    "topic commit of " + str(size) + " bytes exceeds the loan of " + str(pending_size_));
    }
    publish(size);
}

}  // namespace ipckit
