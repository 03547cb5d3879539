// record.hpp — what every kind of shared-memory region (layout version 3) has in
// common: the 128-byte control line at offset 0 and the 8-byte commit word that starts every
// record (docs/ring-layout.md, "The control line" and "Records").
//
// Internal: used by src/rings/ (region.cpp stamps and checks the control line for every kind;
// ring_layout.hpp and topic_layout.hpp name these definitions for their kinds), and by tests and
// fuzz targets that corrupt a region on purpose.
#pragma once

#include <time.h>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ipckit/detail/endpoint.hpp"

namespace ipckit::detail::region {

using ring::kLineSize;  // 128: one prefetched pair of cache lines (endpoint.hpp)

inline constexpr std::uint64_t kMagic = 0x31474e49524b5049;  // "IPKRING1" read as little-endian
inline constexpr std::uint32_t kVersion = 3;

enum class Kind : std::uint32_t {
    ring = 1,     // one producer, one consumer
    lanes = 2,    // N kind-1 rings in one region, one receiver (senders=N)
    topic = 3,    // one publisher, many subscribers
    service = 4,  // one server, many clients: two kind-1 rings per client (service_region.hpp)
};

// Records start on 8-byte boundaries: the commit word is 64-bit and a loaned payload is aligned
// for any scalar type.
inline constexpr std::uint32_t kRecordAlignment = 8;
inline constexpr std::uint64_t kMinCapacity = 64;
// Record lengths are 32-bit, and a padding record spans at most capacity - 8 bytes.
inline constexpr std::uint64_t kMaxCapacity = std::uint64_t{1} << 32;

// The first line of every region, whatever its kind.
struct alignas(kLineSize) ControlLine {
    // Written last by format (release): an attacher that sees it sees the rest.
    std::atomic<std::uint64_t> magic;
    std::uint32_t version;
    Kind kind;
    std::uint32_t header_size;  // offset of the data area (kind 1, 3) or of lane 0 (kind 2)
    std::uint32_t line_size;
    std::uint32_t record_alignment;
    std::uint32_t flags;     // kFlagLatency, or zero
    std::uint64_t capacity;  // bytes of data area (per lane, for kind 2), a power of two
    // Kind-specific: lanes (count, stride) and topics (subscriber slots, history, overflow).
    std::uint64_t kind_words[4];
};
static_assert(sizeof(ControlLine) == kLineSize);

// ---- Counters (docs/ring-layout.md, "Counters") ----

// What an end counts about itself, on a line only it writes (its cursor line): u64 each, stored
// relaxed by that end alone and loaded relaxed by readers (`ipckit top`), so counting costs a
// load and a store to a line the end writes anyway, and no shared atomic read-modify-write.
struct EndCounters {
    std::atomic<std::uint64_t> messages;    // records committed (a producer) or consumed (a consumer)
    std::atomic<std::uint64_t> bytes;       // their payload bytes
    std::atomic<std::uint64_t> full_waits;  // a producer's sends that found no room (waited or not)
    std::atomic<std::uint64_t> sleeps;      // futex sleeps
    std::atomic<std::uint64_t> wakes_sent;  // futex wakes issued for the other side's sleepers
};

// Adds `by` to a counter only this process's end writes: no read-modify-write on shared memory.
inline void count(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}
// A message and its payload bytes.
inline void count_message(std::atomic<std::uint64_t>& messages, std::atomic<std::uint64_t>& bytes,
                          std::uint64_t payload) noexcept {
    count(messages);
    count(bytes, payload);
}
inline void count_message(EndCounters& counters, std::uint64_t payload) noexcept {
    count_message(counters.messages, counters.bytes, payload);
}

// ---- stats=latency (docs/ring-layout.md, "The latency histogram") ----

// ControlLine::flags bit 0: records carry their commit time after the commit word, and each
// reader adds commit-to-consume times to a histogram of its own. No other bit is defined.
inline constexpr std::uint32_t kFlagLatency = 1;
inline constexpr std::uint32_t kKnownFlags = kFlagLatency;
inline constexpr std::size_t kTimestampSize = 8;

// 64 buckets, written by the one reader that owns the block: bucket 0 counts waits of 0 ns,
// bucket b (1..63) waits of [2^(b-1), 2^b) ns, the last also everything longer.
inline constexpr std::size_t kLatencyBuckets = 64;
struct alignas(kLineSize) LatencyHistogram {
    std::atomic<std::uint64_t> buckets[kLatencyBuckets];
};
static_assert(sizeof(LatencyHistogram) == 4 * kLineSize, "the histogram block is four lines");

// CLOCK_MONOTONIC in nanoseconds: the same clock in every process of the machine.
[[nodiscard]] inline std::uint64_t monotonic_ns() noexcept {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(now.tv_nsec);
}

[[nodiscard]] constexpr std::size_t latency_bucket(std::uint64_t ns) noexcept {
    const auto width = static_cast<std::size_t>(std::bit_width(ns));
    return width < kLatencyBuckets ? width : kLatencyBuckets - 1;
}

// Adds the time since `committed_ns` (a record's timestamp: read from shared memory, so a value
// from the future counts as 0 ns) to `histogram`, which only the caller writes.
inline void record_latency(LatencyHistogram& histogram, std::uint64_t committed_ns) noexcept {
    const std::uint64_t now = monotonic_ns();
    std::atomic<std::uint64_t>& bucket =
        histogram.buckets[latency_bucket(now > committed_ns ? now - committed_ns : 0)];
    bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// ---- Payload copies ----

// Moves `W` bytes from each end of a range of `n` (W <= n <= 2W): both loads before both stores,
// so the overlap in the middle is harmless. Constant widths compile to a few vector moves.
template <std::size_t W>
inline void copy_ends(std::byte* to, const std::byte* from, std::size_t n) noexcept {
    unsigned char head[W], tail[W];
    std::memcpy(head, from, W);
    std::memcpy(tail, from + n - W, W);
    std::memcpy(to, head, W);
    std::memcpy(to + n - W, tail, W);
}

// Copies a message into a record or out of one. Up to 64 bytes inline, as two overlapping moves,
// without memcpy's call and its size dispatch: for a 64-byte message that was a fifth of the
// ring's own time per message (docs/ring.md, "Where a small message's time goes").
inline void copy_payload(std::byte* to, const std::byte* from, std::size_t n) noexcept {
    if (n > 64) {
        std::memcpy(to, from, n);
    } else if (n >= 32) {
        copy_ends<32>(to, from, n);
    } else if (n >= 16) {
        copy_ends<16>(to, from, n);
    } else if (n >= 8) {
        copy_ends<8>(to, from, n);
    } else if (n >= 4) {
        copy_ends<4>(to, from, n);
    } else if (n != 0) {
        to[0] = from[0];
        to[n / 2] = from[n / 2];
        to[n - 1] = from[n - 1];
    }
}

// A reader waiting for the commit word at `offset` of a data area of `mask + 1` bytes reads, beside
// it, the 64-byte line after the word's: a record of more than 56 bytes of payload (48 for a
// topic's) continues there. The writer fills that line before it stores the commit word, so a
// copy fetched while waiting is usually current when the word arrives, and the record costs one
// line's transfer after the commit instead of two in a row (a 64-byte ring round trip went from
// 2.0x to 1.7x raw-spin: docs/ring.md, "Where a small message's time goes"). The value is
// thrown away, so the load is written in assembly: the thread sanitizer would take it for a race
// with the payload bytes being written.
inline void touch_line_after(const std::byte* data, std::uint64_t offset, std::uint64_t mask) noexcept {
    const std::byte* line = data + (((offset | 63) + 1) & mask);
#if defined(__x86_64__)
    std::uint64_t discarded;
    asm volatile("movq (%1), %0" : "=r"(discarded) : "r"(line));
#else
    __builtin_prefetch(line);
#endif
}

// ---- Records: the commit word ----

// Every record starts with a 64-bit commit word, stored last (release) and polled by readers:
// bits 0-31 the payload length (padding: bytes to the end of the area), bits 32-63 a stamp that
// ties it to its position, so a word left from an earlier lap or stray payload bytes are never
// taken for a committed record.
inline constexpr std::size_t kCommitWordSize = 8;

[[nodiscard]] constexpr std::uint32_t data_stamp(std::uint64_t position) noexcept {
    return static_cast<std::uint32_t>((position >> 3) << 1);
}
[[nodiscard]] constexpr std::uint32_t padding_stamp(std::uint64_t position) noexcept {
    return static_cast<std::uint32_t>(((position >> 3) << 1) | 1);
}
[[nodiscard]] constexpr std::uint64_t commit_word(std::uint32_t length, std::uint32_t stamp) noexcept {
    return std::uint64_t{length} | (std::uint64_t{stamp} << 32);
}
// What the producer stores at the position after a record before committing the record: a
// length no record has and a stamp no record at that position has.
[[nodiscard]] constexpr std::uint64_t invalid_word(std::uint64_t position) noexcept {
    return commit_word(0xffffffffu, ~data_stamp(position));
}
[[nodiscard]] constexpr std::uint32_t word_length(std::uint64_t word) noexcept {
    return static_cast<std::uint32_t>(word);
}
[[nodiscard]] constexpr std::uint32_t word_stamp(std::uint64_t word) noexcept {
    return static_cast<std::uint32_t>(word >> 32);
}

// Bytes a record of `payload` bytes occupies, its header (the commit word, plus the sequence
// number for a topic) and alignment included.
[[nodiscard]] constexpr std::uint64_t record_size(std::uint64_t payload,
                                                  std::uint64_t header = kCommitWordSize) noexcept {
    return (header + payload + kRecordAlignment - 1) & ~std::uint64_t{kRecordAlignment - 1};
}

}  // namespace ipckit::detail::region
