// The topic's subscribers (ipckit/topic.hpp; topic_region.hpp, docs/topics.md).
#include "ipckit/topic.hpp"

#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
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

// ---- TopicSubscriber ----

namespace {

struct SlotClaim {
    std::uint32_t index = 0;
    detail::ring::Claim claim;
};

// Claims the first free slot (vacant, closed, or held by a process that died).
SlotClaim claim_a_slot(const Geometry& g) {
    Slot* all = slots(g.header);
    for (std::uint32_t index = 0; index < g.slots; ++index) {
        try {
            // A subscriber that died asleep or armed is still counted among the sleepers (which
            // all subscribers share): take its count back, as its slot's flags say.
            SlotLine& line = all[index].cursor;
            return {index, claim_endpoint(all[index].end, "topic subscriber slot " + str(index), [&] {
                        if (line.sleeping.exchange(0, std::memory_order_relaxed) != 0)
                            g.header->wait.subscriber_sleepers.fetch_sub(1, std::memory_order_relaxed);
                        if (line.doorbell_armed.exchange(0, std::memory_order_relaxed) != 0)
                            g.header->wait.subscriber_sleepers.fetch_sub(1, std::memory_order_relaxed);
                    })};
        } catch (const Error& e) {
            if (e.code() != std::errc::device_or_resource_busy) throw;
        }
    }
    throw_error(std::errc::device_or_resource_busy,
                "topic: all " + str(g.slots) + " subscriber slots are held by live subscribers");
}

}  // namespace

TopicSubscriber TopicSubscriber::attach(std::span<std::byte> region, WaitMode mode) {
    const Geometry g = validate(region);
    const SlotClaim slot = claim_a_slot(g);
    return join(g, slot.index, slot.claim, mode);
}

TopicSubscriber TopicSubscriber::create(std::span<std::byte> region, TopicOptions options, WaitMode mode) {
    std::optional<TopicSubscriber> creator;
    // Slot 0 is claimed and joined before the format makes the region attachable: a publisher
    // that attaches as soon as it can counts this subscriber, and publishes nothing it misses.
    format_topic(region, options, [&](const Geometry& g) {
        creator.emplace(join(g, 0, claim_endpoint(slots(g.header)[0].end, "topic subscriber slot 0"), mode));
    });
    return std::move(*creator);
}

// Takes slot `index`, which `claim` holds, and joins at the publisher's committed position, or
// up to `history` messages earlier.
TopicSubscriber TopicSubscriber::join(const Geometry& g, std::uint32_t index,
                                      const detail::ring::Claim& claim, WaitMode mode) {
    Slot* all = slots(g.header);
    TopicSubscriber s;
    s.header_ = decltype(s.header_)(
        g.header, detail::TopicSubscriberCloser{claim.epoch, &all[index]});  // closes on a throw
    s.slot_ = &all[index];
    s.data_ = g.data;
    s.capacity_ = g.capacity;
    s.mask_ = g.capacity - 1;
    s.max_message_ = max_message(g.capacity, g.latency);
    s.record_header_ = record_header(g.latency);
    if (g.latency) s.latency_ = histogram(g.header, g.slots, index);
    s.drop_ = g.drop;
    s.mode_ = mode;
    s.slot_index_ = index;
    s.took_over_ = claim.took_over;
    s.publisher_ = EndpointWatch(&g.header->publisher_end, EndpointWatch::JoinAfter{});
    s.sleeper_.set_sleeping_flag(&s.slot_->cursor.sleeping);
    s.sleeper_.set_sleep_counter(&s.slot_->cursor.sleeps);
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
        s.slot_->cursor.messages.store(0, std::memory_order_relaxed);
        s.slot_->cursor.bytes.store(0, std::memory_order_relaxed);
        s.slot_->cursor.sleeps.store(0, std::memory_order_relaxed);
        if (s.latency_ != nullptr)  // like the counters, since this subscriber joined
            for (auto& bucket : s.latency_->buckets)
                bucket.store(0, std::memory_order_relaxed);
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

void detail::TopicSubscriberCloser::operator()(TopicHeader* header) const noexcept {
    // A subscriber that closes armed stops counting as a sleeper (only the holder arms).
    const OwnerWord holder = OwnerWord::unpack(slot->end.owner.load(std::memory_order_relaxed));
    if (holder.epoch == epoch && slot->cursor.doorbell_armed.exchange(0, std::memory_order_relaxed) != 0)
        header->wait.subscriber_sleepers.fetch_sub(1, std::memory_order_relaxed);
    slot->cursor.doorbell_length = 0;
    release_endpoint(slot->end, epoch);
    wake_all(header->wait.space_event);  // a publisher waiting for us may go on
}

void TopicSubscriber::close() noexcept {
    header_.reset();
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
        // A record never crosses the end of the area: one that says it does is corrupt (below),
        // or its copy would read past the mapping.
        if (stamp == data_stamp(cursor_) && length <= max_message_ &&
            record_size(length, record_header_) <= capacity_ - offset) {
            record_length_ = length;
            record_sequence_ = word_at(data_, offset + 8).load(std::memory_order_relaxed);
            // Under drop the copy's check (oldest re-read) covers this too: read with the record.
            if (latency_ != nullptr)
                record_time_ = word_at(data_, offset + kRecordHeader).load(std::memory_order_relaxed);
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
                   publisher_, publisher_gone, [&] {
                       detail::region::touch_line_after(data_, cursor_ & mask_, mask_);
                       return probe() == Status::ok;
                   });
    if (s == Status::closed && probe() == Status::ok) return Status::ok;  // drain what it committed
    return s;
}

void TopicSubscriber::consume() {
    const std::uint64_t sequence = record_sequence_;
    missed_ = known_ && sequence > expected_ ? sequence - expected_ : 0;
    missed_total_ += missed_;
    expected_ = sequence + 1;
    known_ = true;
    cursor_ += record_size(record_length_, record_header_);
    holding_ = false;
    slot_->cursor.sequence.store(expected_, std::memory_order_relaxed);
    if (missed_ != 0) slot_->cursor.missed.store(missed_total_, std::memory_order_relaxed);
    detail::region::count_message(slot_->cursor.messages, slot_->cursor.bytes, record_length_);
    if (latency_ != nullptr) detail::region::record_latency(*latency_, record_time_);
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
        detail::region::copy_payload(buffer.data(), data_ + (cursor_ & mask_) + record_header_,
                                     record_length_);
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
        detail::region::copy_payload(message.data(), data_ + (cursor_ & mask_) + record_header_,
                                     record_length_);
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
    return {Status::ok, std::span(data_ + (cursor_ & mask_) + record_header_, record_length_)};
}

void TopicSubscriber::release() {
    // A moved-from or closed subscriber holds no record (holding_ went with its end).
    if (!holding_ || header_ == nullptr)
        throw_error(std::errc::invalid_argument, "topic release without a read");
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
