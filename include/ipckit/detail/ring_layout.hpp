// ipckit/detail/ring_layout.hpp — the bytes of a shared-memory ring, as both processes see them.
//
// Internal: used by src/rings/ring.cpp, and by the tests that corrupt a ring on purpose. The layout is
// a contract between processes that may run different builds, so it is versioned (kVersion) and
// every field is fixed-size. See docs/ring.md for the diagram.
//
//   offset 0    ControlLine   magic, version, sizes; each side's PID and state
//   offset 128  CursorLine    producer cursor: bytes ever published (written by the producer only)
//   offset 256  CursorLine    consumer cursor: bytes ever consumed (written by the consumer only)
//   offset 384  WaitLine      sleeper counts and futex words (written only on the sleeping path)
//   offset 512  data          `capacity` bytes of records, a power of two
//
// Cursors are 64-bit byte counts that only grow (they would take decades to wrap at memory
// speed), so `producer - consumer` is the used space and `cursor & (capacity - 1)` the offset.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipckit/detail/endpoint.hpp"

namespace ipckit::detail::ring {

// kLineSize (128 bytes, one prefetched pair of cache lines) comes from endpoint.hpp.

inline constexpr std::uint64_t kMagic = 0x31474e49524b5049;  // "IPKRING1" read as little-endian
inline constexpr std::uint32_t kVersion = 1;

// Records start on 8-byte boundaries: the record header is two 32-bit words and a loaned
// payload is aligned for any scalar type.
inline constexpr std::uint32_t kRecordAlignment = 8;

inline constexpr std::uint64_t kMinCapacity = 64;
// Record and padding sizes are 32-bit; a padding record spans at most capacity - 8 bytes.
inline constexpr std::uint64_t kMaxCapacity = std::uint64_t{1} << 32;

// What a side's state word says.
inline constexpr std::uint32_t kVacant = 0;    // nobody attached yet
inline constexpr std::uint32_t kAttached = 1;  // attached; its PID is in the pid word
inline constexpr std::uint32_t kClosed = 2;    // closed cleanly: nothing more will come

struct alignas(kLineSize) ControlLine {
    // Written last by Ring::format (release): an attacher that sees it sees the rest.
    std::atomic<std::uint64_t> magic;
    std::uint32_t version;
    std::uint32_t header_size;  // offset of the data area from the region's start
    std::uint64_t capacity;     // bytes of data area, a power of two
    std::uint32_t record_alignment;
    std::uint32_t line_size;
    std::atomic<std::int32_t> producer_pid;
    std::atomic<std::int32_t> consumer_pid;
    std::atomic<std::uint32_t> producer_state;
    std::atomic<std::uint32_t> consumer_state;
};

struct alignas(kLineSize) CursorLine {
    std::atomic<std::uint64_t> position;
};

// Read on every send/recv but written only by a side about to sleep, so it stays shared in
// both caches and costs a hit, not a miss, when nobody sleeps.
struct alignas(kLineSize) WaitLine {
    std::atomic<std::uint32_t> consumer_sleepers;  // consumers inside futex_wait for data
    std::atomic<std::uint32_t> data_event;         // futex word: bumped when data arrives for a sleeper
    std::atomic<std::uint32_t> producer_sleepers;  // producers inside futex_wait for space
    std::atomic<std::uint32_t> space_event;        // futex word: bumped when space frees for a sleeper
};

struct RingHeader {
    ControlLine control;
    CursorLine producer;
    CursorLine consumer;
    WaitLine wait;
};

inline constexpr std::size_t kHeaderSize = sizeof(RingHeader);
static_assert(kHeaderSize == 4 * kLineSize, "the header is four lines");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "cursors must be lock-free across processes");

// Every record starts with this. A data record is followed by `size` payload bytes and padded to
// kRecordAlignment; a padding record fills the rest of the data area (size = bytes to the end)
// when the next record would not fit contiguously before the end.
struct RecordHeader {
    std::uint32_t size;
    std::uint32_t tag;
};
static_assert(sizeof(RecordHeader) == kRecordAlignment);

inline constexpr std::uint32_t kDataTag = 0x41544144;     // "DATA"
inline constexpr std::uint32_t kPaddingTag = 0x20444150;  // "PAD "

// Bytes a data record of `payload` bytes occupies, header and alignment included.
[[nodiscard]] constexpr std::uint64_t record_size(std::uint64_t payload) noexcept {
    return (sizeof(RecordHeader) + payload + kRecordAlignment - 1) & ~std::uint64_t{kRecordAlignment - 1};
}

}  // namespace ipckit::detail::ring
