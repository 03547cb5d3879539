// topic_layout.hpp — the bytes of a topic region (layout version 2, kind 3: one
// publisher, up to S subscribers, each with its own cursor), as every process that maps it sees
// them. docs/ring-layout.md ("Kind 3: topic") and docs/topics.md say why each line is where it is.
//
// Internal: used by src/rings/topic.cpp and by the tests and fuzz targets that corrupt a region
// on purpose. Every field is fixed-size; every value read from it is checked before use.
//
//   offset 0      ControlLine        kind 3; kind_words: subscriber slots S, history H, overflow
//   offset 128    EndpointLine       the publisher (owner word, start time)
//   offset 256    PublisherLine      committed position, next sequence number
//   offset 384    OldestLine         oldest intact record's position; joiner count
//   offset 512    TopicWaitLine      sleepers and futex words of both sides
//   offset 640    history index      64 positions, the last H records' by sequence % H
//   offset 1152   DoorbellLine       reserved (zero): topics keep a doorbell per slot instead
//   offset 1280   S slots, 256 bytes each: EndpointLine, then SlotLine
//   (stats=latency) S LatencyHistograms, 512 bytes each: subscriber i's, written by it alone
//   header_size   data               `capacity` bytes of records, a power of two
//
// A record: commit word (8 bytes: length, stamp), sequence number (8 bytes), with stats=latency
// the commit time (8 bytes), payload, padding to 8. A padding record (stamp padding_stamp) is its
// commit word alone.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipckit/detail/endpoint.hpp"
#include "record.hpp"

namespace ipckit::detail::topic {

using region::kLineSize;

inline constexpr std::size_t kRecordHeader = 16;  // commit word + sequence number
inline constexpr std::uint32_t kMaxHistory = 64;
// At least 64 by the issue; slots cost 256 bytes each and the publisher scans them only when its
// cached slowest cursor says the area is full, so more cost nothing on the fast path.
inline constexpr std::uint32_t kMaxSubscribers = 1024;

enum class OverflowWord : std::uint64_t { block = 0, drop = 1 };

// ControlLine::kind_words for kind 3.
inline constexpr std::size_t kSlotsWord = 0;
inline constexpr std::size_t kHistoryWord = 1;
inline constexpr std::size_t kOverflowWord = 2;

// Written by the publisher after each commit; read by joiners and by a publisher that takes over.
// A joiner needs the two values as one pair (the position and the sequence number of the record
// that goes there), so they are written under a sequence lock: `version` odd while they change.
struct alignas(kLineSize) PublisherLine {
    std::atomic<std::uint64_t> version;
    std::atomic<std::uint64_t> committed;      // bytes committed (a record boundary)
    std::atomic<std::uint64_t> next_sequence;  // the sequence number of the next record
    region::EndCounters counters;              // the publisher's (docs/ring-layout.md, "Counters")
};
static_assert(sizeof(PublisherLine) == kLineSize);

// The oldest record whose bytes are still intact. The publisher moves it forward (store, then a
// fence) before it overwrites anything; a copying reader re-reads it after its copy, so a record
// that was overwritten while it was copied is recognised and thrown away (drop), and a joiner
// that starts in the history never starts on bytes about to go (block).
struct alignas(kLineSize) OldestLine {
    std::atomic<std::uint64_t> position;
    // Bumped by every joiner after it stored its cursor: a publisher that sees it move rescans the
    // slots before it overwrites (the store-buffer handshake with the joiner's oldest re-check).
    std::atomic<std::uint64_t> joiners;
};

struct alignas(kLineSize) TopicWaitLine {
    std::atomic<std::uint32_t> subscriber_sleepers;  // subscribers inside futex_wait for data
    std::atomic<std::uint32_t> data_event;           // futex word: bumped after a commit with sleepers
    std::atomic<std::uint32_t> publisher_sleepers;   // the publisher inside futex_wait for space
    std::atomic<std::uint32_t> space_event;          // futex word: bumped when a subscriber moves or leaves
};

struct HistoryIndex {
    std::atomic<std::uint64_t> position[kMaxHistory];
};
static_assert(sizeof(HistoryIndex) == 4 * kLineSize);

// Reserved (zero): a topic has one doorbell per subscriber slot (SlotLine), not one per region.
struct alignas(kLineSize) DoorbellLine {
    std::atomic<std::uint32_t> armed;
    std::uint32_t name_length;
    char name[104];
};

inline constexpr std::size_t kDoorbellNameSize = 64;

// One subscriber's cursor line: written by that subscriber after every record it consumes.
// The doorbell: a subscriber that waits in a PollSet (or an event loop of its own) binds a Unix
// datagram socket to an abstract name, writes the name here and sets `doorbell_armed`; a
// publisher that finds sleepers counted after a commit sends one datagram to every armed slot.
struct alignas(kLineSize) SlotLine {
    std::atomic<std::uint64_t> position;  // bytes consumed
    std::atomic<std::uint64_t> sequence;  // sequence number of the next record it expects
    std::atomic<std::uint64_t> missed;    // records lost to overflow=drop since it joined
    std::atomic<std::uint32_t> doorbell_armed;
    std::uint32_t doorbell_length;  // bytes of doorbell_name (no leading NUL), <= 64
    char doorbell_name[kDoorbellNameSize];
    // The epoch of the holder whose cursor above is set (stored with release at the end of its
    // attach): until it equals the owner word's epoch, the slot's subscriber has not joined yet,
    // and TopicPublisher::subscribers() does not count it.
    std::atomic<std::uint32_t> joined_epoch;
    // 1 while the subscriber is counted in subscriber_sleepers by a futex sleep (set after the
    // count, cleared before it): a takeover of a slot whose holder died asleep takes the count back.
    std::atomic<std::uint32_t> sleeping;
    // The subscriber's counters since it joined (docs/ring-layout.md, "Counters"; `missed` above
    // is the third); its takeovers are on its endpoint line.
    std::atomic<std::uint64_t> messages;
    std::atomic<std::uint64_t> bytes;
    std::atomic<std::uint64_t> sleeps;
};
static_assert(sizeof(SlotLine) == kLineSize);

struct Slot {
    ring::EndpointLine end;
    SlotLine cursor;
};
static_assert(sizeof(Slot) == 2 * kLineSize);

struct TopicHeader {
    region::ControlLine control;
    ring::EndpointLine publisher_end;
    PublisherLine publisher;
    OldestLine oldest;
    TopicWaitLine wait;
    HistoryIndex history;
    DoorbellLine doorbell;
    // Slot slots[S] follow.
};
inline constexpr std::size_t kFixedHeaderSize = sizeof(TopicHeader);
static_assert(kFixedHeaderSize == 10 * kLineSize);

// `latency`: stats=latency, whose subscribers' histograms follow the slots.
[[nodiscard]] constexpr std::size_t header_size(std::uint32_t subscribers, bool latency = false) noexcept {
    return kFixedHeaderSize +
           std::size_t{subscribers} * (sizeof(Slot) + (latency ? sizeof(region::LatencyHistogram) : 0));
}

// A record's header: commit word and sequence number, and the commit time with stats=latency.
[[nodiscard]] constexpr std::uint32_t record_header(bool latency) noexcept {
    return static_cast<std::uint32_t>(kRecordHeader + (latency ? region::kTimestampSize : 0));
}

[[nodiscard]] inline Slot* slots(TopicHeader* header) noexcept {
    return reinterpret_cast<Slot*>(reinterpret_cast<std::byte*>(header) + kFixedHeaderSize);
}

// stats=latency: the histogram of the subscriber in slot `index` of a topic of `subscribers` slots.
[[nodiscard]] inline region::LatencyHistogram* histogram(TopicHeader* header, std::uint32_t subscribers,
                                                         std::uint32_t index) noexcept {
    return reinterpret_cast<region::LatencyHistogram*>(reinterpret_cast<std::byte*>(header) +
                                                       header_size(subscribers)) +
           index;
}

}  // namespace ipckit::detail::topic
