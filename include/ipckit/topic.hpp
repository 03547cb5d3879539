// ipckit/topic.hpp — publish/subscribe in shared memory: one publisher, up to S subscribers,
// each with its own cursor, every subscriber receiving every message (whole and in order).
//
// The topic lives in a region both sides map (POSIX shared memory, a MAP_SHARED mapping
// inherited across fork); it does not care how the region was obtained. One side formats the
// region (`Topic::format`), then one publisher and up to `subscribers` subscribers attach, in any
// order. Layout and memory orders: docs/topics.md.
//
// Example:
//     ipckit::Topic::format(region, {.subscribers = 4, .history = 8});   // the creator, once
//     auto pub = ipckit::TopicPublisher::attach(region);                 // process A
//     auto sub = ipckit::TopicSubscriber::attach(region);                // processes B, C, ...
//     pub.send(ipckit::as_bytes("hello"));
//     std::vector<std::byte> message;
//     if (sub.recv(message, ipckit::Deadline::after(1s)).ok() && sub.missed() > 0) { ... }
//
// Overflow: `block` (the default) makes the publisher wait for the slowest *live* subscriber (a
// subscriber that died is skipped after one liveness check: it never stalls the publisher
// longer than that). `drop` never makes the publisher wait: a subscriber that was lapped skips
// to the oldest intact record, and the receive that delivers it reports how many messages were
// lost (`missed()`, also counted in `missed_total()` and in the subscriber's slot).
// Joining: a subscriber sees what is published after it attached, plus up to `history` earlier
// messages. Leaving (close, exit, death) frees the slot. A publisher that closes or dies is
// `closed` to every subscriber once they have drained what it committed; a new publisher may
// attach (taking over a dead one's end) and continues the sequence.
//
// Reads: `recv` copies and is safe under both overflow rules (a copy that a lapping publisher
// may have torn is detected, thrown away and never delivered). `read`/`release` read in place
// and are offered under `block` only (the publisher cannot overwrite a record a live subscriber
// has not released); under `drop` they throw.
//
// Results: `ok`, `would_block`, `timed_out`, `closed` (the publisher closed or died). Errors
// (`ipckit::Error`): a region too small or misaligned, or options out of range
// (invalid_argument); a header that is not a valid topic (protocol_error); a corrupt record
// (bad_message); a message over `max_message_size()` or larger than the caller's buffer
// (message_size; nothing is lost); every slot held by a live subscriber (device_or_resource_busy).
// Thread-safety: one thread at a time per TopicPublisher or TopicSubscriber. The region must
// outlive them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "ipckit/deadline.hpp"
#include "ipckit/detail/endpoint.hpp"  // EndpointWatch, held by value
#include "ipckit/detail/sleeper.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/ring.hpp"  // WaitMode, Loan, RecordView

namespace ipckit {

namespace detail::topic {
struct TopicHeader;
struct Slot;
struct Geometry;
}  // namespace detail::topic
namespace detail::region {
struct LatencyHistogram;
}  // namespace detail::region

enum class Overflow {
    block,  // the publisher waits for the slowest live subscriber
    drop,   // the publisher never waits; lapped subscribers learn how many they missed
};

struct TopicOptions {
    // Bytes of record space, a power of two (64 B … 4 GiB). 0: the largest that fits the region.
    std::size_t capacity = 0;
    std::uint32_t subscribers = 16;  // slots, 1 … 1024
    std::uint32_t history = 0;       // messages a late subscriber receives first, 0 … 64
    Overflow overflow = Overflow::block;
    // stats=latency: records carry their commit time (8 bytes more) and each subscriber keeps a
    // histogram of commit-to-consume times (docs/ring-layout.md, "The latency histogram").
    bool latency = false;
};

class Topic {
public:
    // Bytes of region a topic of `capacity` and `subscribers` slots needs (header included).
    [[nodiscard]] static std::size_t region_size(std::size_t capacity, std::uint32_t subscribers = 16,
                                                 bool latency = false) noexcept;
    // Initialises `region` as an empty topic with nobody attached; returns its capacity. The
    // region must be 128-byte aligned (any mapping is); nobody may be attached meanwhile.
    static std::size_t format(std::span<std::byte> region, TopicOptions options = {});
    // The largest message a topic of `capacity` carries (a record may take half the area).
    [[nodiscard]] static std::size_t max_message_size(std::size_t capacity, bool latency = false) noexcept;
};

namespace detail {

// Close one end of a topic when its handle goes (a move leaves nothing behind to close): the
// deleters of the publisher's and a subscriber's header pointer, so their moves are `= default`
// and closing is written once, as the ring's RingEndCloser.
struct TopicPublisherCloser {
    std::uint32_t epoch = 0;  // this holder's claim (release_endpoint leaves a successor's alone)
    std::uint32_t slots = 0;  // subscriber slots, whose armed doorbells learn of the close
    void operator()(detail::topic::TopicHeader* header) const noexcept;
};
struct TopicSubscriberCloser {
    std::uint32_t epoch = 0;
    detail::topic::Slot* slot = nullptr;  // the slot this subscriber holds
    void operator()(detail::topic::TopicHeader* header) const noexcept;
};

// What a TopicPublisher or TopicSubscriber holds, moved member by member (the end goes with
// header_; a moved-from or closed one has none, and every entry point checks for it).
struct TopicPublisherState {
    std::unique_ptr<detail::topic::TopicHeader, TopicPublisherCloser> header_;
    detail::topic::Slot* slots_ = nullptr;
    std::byte* data_ = nullptr;
    std::uint64_t capacity_ = 0;
    std::uint64_t mask_ = 0;
    std::size_t max_message_ = 0;
    std::uint32_t record_header_ = 16;  // commit word, sequence number (and commit time: stats=latency)
    std::uint32_t slot_count_ = 0;
    std::uint32_t history_ = 0;
    bool drop_ = false;
    WaitMode mode_ = WaitMode::adaptive;
    detail::SleeperBarrier sleeper_;  // a topic's: a fence (its peers fence too)
    bool took_over_ = false;
    // Local, authoritative copies of what the publisher owns in the region.
    std::uint64_t head_ = 0;
    std::uint64_t sequence_ = 0;
    std::uint64_t oldest_ = 0;
    // The slowest live subscriber's cursor as last scanned, and the joiner count it saw.
    std::uint64_t cached_floor_ = 0;
    std::uint64_t seen_joiners_ = 0;
    // The reservation between reserve() and publish().
    std::uint64_t pending_position_ = 0;
    std::size_t pending_size_ = 0;
    bool pending_ = false;
    // One liveness watch per slot, consulted only for a slot that holds the publisher back.
    std::unique_ptr<detail::ring::EndpointWatch[]> watches_;
    Fd bell_sender_;  // an unbound datagram socket, made at the first doorbell rung
};

struct TopicSubscriberState {
    std::unique_ptr<detail::topic::TopicHeader, TopicSubscriberCloser> header_;
    detail::topic::Slot* slot_ = nullptr;
    const std::byte* data_ = nullptr;
    std::uint64_t capacity_ = 0;
    std::uint64_t mask_ = 0;
    std::size_t max_message_ = 0;
    std::uint32_t record_header_ = 16;  // commit word, sequence number (and commit time: stats=latency)
    region::LatencyHistogram* latency_ = nullptr;  // stats=latency: this subscriber's histogram
    bool drop_ = false;
    WaitMode mode_ = WaitMode::adaptive;
    detail::SleeperBarrier sleeper_;  // a topic's: a fence (its peers fence too)
    std::uint32_t slot_index_ = 0;
    bool took_over_ = false;
    std::uint64_t cursor_ = 0;
    std::uint64_t expected_ = 0;  // sequence of the next record; valid once known_ is true
    bool known_ = false;          // no record delivered yet, and no history to say what comes
    std::uint64_t missed_ = 0;
    std::uint64_t missed_total_ = 0;
    // The record next_record found.
    std::uint64_t record_sequence_ = 0;
    std::uint32_t record_length_ = 0;
    std::uint64_t record_time_ = 0;  // stats=latency: the record's commit time
    bool holding_ = false;
    bool armed_ = false;
    Fd doorbell_;
    detail::ring::EndpointWatch publisher_;
};

}  // namespace detail

class TopicPublisher : private detail::TopicPublisherState {
public:
    // Validates the topic in `region` and claims its publisher end (a dead publisher's end is
    // taken over: the new one resumes after the last record it committed).
    [[nodiscard]] static TopicPublisher attach(std::span<std::byte> region,
                                               WaitMode mode = WaitMode::adaptive);

    TopicPublisher(TopicPublisher&&) noexcept = default;
    TopicPublisher& operator=(TopicPublisher&&) noexcept = default;  // closes this one's end first
    TopicPublisher(const TopicPublisher&) = delete;
    TopicPublisher& operator=(const TopicPublisher&) = delete;
    ~TopicPublisher() = default;  // closes

    // Copies one message to every subscriber. Under `block`, waits for room (would_block or
    // timed_out when the deadline passes first); under `drop`, never waits.
    [[nodiscard]] IoResult send(std::span<const std::byte> message, Deadline deadline = Deadline::never());
    [[nodiscard]] IoResult try_send(std::span<const std::byte> message) {
        return send(message, Deadline::immediate());
    }
    // Zero copy: reserves a record of up to `size` bytes, to be filled in place and published
    // with `commit`. A second loan before commit replaces the first.
    [[nodiscard]] Loan loan(std::size_t size, Deadline deadline = Deadline::never());
    // Publishes the first `size` bytes of the loan as one message.
    void commit(std::size_t size);

    // Marks the publisher end closed: subscribers drain what was published, then see `closed`.
    void close() noexcept;

    // Subscribers attached now and done joining, so each gets what is published from here on (a
    // count of slots held; a dead one counts until it is noticed).
    [[nodiscard]] std::uint32_t subscribers() const noexcept;
    // The sequence number the next message will carry (messages published so far).
    [[nodiscard]] std::uint64_t sequence() const noexcept { return sequence_; }
    // This publisher took over the end of one that died.
    [[nodiscard]] bool took_over() const noexcept { return took_over_; }
    [[nodiscard]] std::size_t max_message_size() const noexcept { return max_message_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

private:
    TopicPublisher() = default;
    [[nodiscard]] Status reserve(std::size_t size, Deadline deadline);
    [[nodiscard]] bool room_for(std::uint64_t floor, std::chrono::steady_clock::time_point now);
    void advance_oldest(std::uint64_t floor);
    void publish(std::size_t size);
    void ring_doorbells() noexcept;
};

class TopicSubscriber : private detail::TopicSubscriberState {
public:
    // Validates the topic in `region` and claims a free slot (vacant, closed, or held by a
    // process that died). It starts at the publisher's committed position, or up to `history`
    // messages earlier.
    [[nodiscard]] static TopicSubscriber attach(std::span<std::byte> region,
                                                WaitMode mode = WaitMode::adaptive);
    // Formats `region` as Topic::format does and takes slot 0, all before the region's header
    // says it is a topic: a publisher that attaches as soon as the format lets it counts this
    // subscriber, so its first message is not published to nobody. For a creator that
    // subscribes while others may open the region by name.
    [[nodiscard]] static TopicSubscriber create(std::span<std::byte> region, TopicOptions options = {},
                                                WaitMode mode = WaitMode::adaptive);

    TopicSubscriber(TopicSubscriber&&) noexcept = default;
    TopicSubscriber& operator=(TopicSubscriber&&) noexcept = default;  // closes this one's end first
    TopicSubscriber(const TopicSubscriber&) = delete;
    TopicSubscriber& operator=(const TopicSubscriber&) = delete;
    ~TopicSubscriber() = default;  // closes

    // Copies the next message into `buffer`. A message larger than the buffer throws and stays
    // queued. Safe under both overflow rules.
    [[nodiscard]] IoResult recv(std::span<std::byte> buffer, Deadline deadline = Deadline::never());
    [[nodiscard]] IoResult recv(std::vector<std::byte>& message, Deadline deadline = Deadline::never());
    [[nodiscard]] IoResult try_recv(std::vector<std::byte>& message) {
        return recv(message, Deadline::immediate());
    }

    // Zero copy, `overflow=block` only: the next message in place, valid until `release`.
    [[nodiscard]] RecordView read(Deadline deadline = Deadline::never());
    void release();

    // A message can be taken now (never blocks).
    [[nodiscard]] bool ready();

    // Waiting without polling, in a wait set or the caller's own epoll/libuv/asio loop: the
    // doorbell is a Unix datagram socket (abstract name in this subscriber's slot) that polls
    // readable when the publisher commits (or closes) while the doorbell is armed. `arm` returns
    // false when a message is ready already (then do not sleep); while armed the subscriber counts
    // as a sleeper, so every publish costs the publisher one sendto per armed slot. `disarm`
    // drains the socket. The publisher's death is seen through `publisher_fd()` (a pidfd, -1 if
    // none or not attached yet).
    [[nodiscard]] int doorbell_fd();
    [[nodiscard]] bool arm();
    void disarm() noexcept;
    [[nodiscard]] int publisher_fd();

    // Messages lost to overflow=drop just before the one the last receive delivered.
    [[nodiscard]] std::uint64_t missed() const noexcept { return missed_; }
    // Messages lost since this subscriber attached.
    [[nodiscard]] std::uint64_t missed_total() const noexcept { return missed_total_; }
    // The sequence number of the last message delivered.
    [[nodiscard]] std::uint64_t sequence() const noexcept { return expected_ - 1; }
    [[nodiscard]] std::uint32_t slot() const noexcept { return slot_index_; }
    [[nodiscard]] bool took_over() const noexcept { return took_over_; }
    [[nodiscard]] std::size_t max_message_size() const noexcept { return max_message_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

    // Frees the slot: the publisher no longer waits for this subscriber.
    void close() noexcept;

private:
    TopicSubscriber() = default;
    [[nodiscard]] static TopicSubscriber join(const detail::topic::Geometry& g, std::uint32_t index,
                                              const detail::ring::Claim& claim, WaitMode mode);
    // Finds the next intact data record at or after the cursor; on ok sets record_*.
    [[nodiscard]] Status next_record(Deadline deadline);
    [[nodiscard]] Status probe();
    [[nodiscard]] bool lapped() const noexcept;
    void consume();
};

}  // namespace ipckit
