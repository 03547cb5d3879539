// ipckit/detail/ring_layout.hpp — the bytes of a shared-memory ring, lanes region or topic, as
// every process that maps it sees them: layout version 2 (docs/ring-layout.md).
//
// Internal: used by src/rings/, and by the tests and fuzz targets that corrupt a region on
// purpose. The layout is a contract between processes that may run different builds, so it is
// versioned (kVersion) and every field is fixed-size.
//
// Kind 1, the 1:1 ring:
//   offset 0     ControlLine    magic, version, kind, sizes
//   offset 128   EndpointLine   the producer: owner word (pid, state, epoch) and start time
//   offset 256   EndpointLine   the consumer
//   offset 384   CursorLine     producer cursor: bytes committed (stored after each commit)
//   offset 512   CursorLine     consumer cursor: bytes consumed (stored after each record)
//   offset 640   WaitLine       sleeper counts and futex words (written only on the sleeping path)
//   offset 768   DoorbellLine   a wait set's doorbell, when one is registered
//   offset 896   reserved
//   offset 1024  data           `capacity` bytes of records, a power of two
//
// Cursors are 64-bit byte counts that only grow (they would take decades to wrap at memory
// speed), so `producer - consumer` is the used space and `cursor & (capacity - 1)` the offset.
// Every record starts with a 64-bit commit word {length, stamp} that the consumer polls: see
// docs/ring-layout.md, "Records".
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipckit/detail/endpoint.hpp"

namespace ipckit::detail::ring {

// kLineSize (128 bytes, one prefetched pair of cache lines) comes from endpoint.hpp.

inline constexpr std::uint64_t kMagic = 0x31474e49524b5049;  // "IPKRING1" read as little-endian
inline constexpr std::uint32_t kVersion = 2;

enum class Kind : std::uint32_t {
    ring = 1,   // one producer, one consumer
    lanes = 2,  // N kind-1 rings in one region, one receiver (senders=N)
    topic = 3,  // one publisher, many subscribers
};

// Records start on 8-byte boundaries: the commit word is 64-bit and a loaned payload is aligned
// for any scalar type.
inline constexpr std::uint32_t kRecordAlignment = 8;

inline constexpr std::uint64_t kMinCapacity = 64;
// Record lengths are 32-bit, and a padding record spans at most capacity - 8 bytes.
inline constexpr std::uint64_t kMaxCapacity = std::uint64_t{1} << 32;

// The first line of every region, whatever its kind. The kind-specific words are zero for a ring.
struct alignas(kLineSize) ControlLine {
    // Written last by format (release): an attacher that sees it sees the rest.
    std::atomic<std::uint64_t> magic;
    std::uint32_t version;
    Kind kind;
    std::uint32_t header_size;  // offset of the data area (kind 1, 3) or of lane 0 (kind 2)
    std::uint32_t line_size;
    std::uint32_t record_alignment;
    std::uint32_t reserved0;
    std::uint64_t capacity;  // bytes of data area (per lane, for kind 2), a power of two
    // Kind-specific: lanes (count, stride) and topics (subscriber slots, history, overflow).
    std::uint64_t kind_words[4];
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

// A wait set's doorbell: a consumer that waits in a PollSet registers where a producer should
// ring (docs/ring-layout.md, "Doorbell"). Zero when nobody registered one.
struct alignas(kLineSize) DoorbellLine {
    std::atomic<std::uint32_t> armed;  // nonzero: ring the doorbell after a commit
    std::uint32_t name_length;         // bytes of `name` in use
    char name[104];                    // the doorbell's abstract socket name (no leading NUL)
};

struct RingHeader {
    ControlLine control;
    EndpointLine producer_end;
    EndpointLine consumer_end;
    CursorLine producer;
    CursorLine consumer;
    WaitLine wait;
    DoorbellLine doorbell;
    std::byte reserved[kLineSize];
};

inline constexpr std::size_t kHeaderSize = sizeof(RingHeader);
static_assert(kHeaderSize == 8 * kLineSize, "the ring header is eight lines");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "cursors must be lock-free across processes");

// Kind 2, lanes (senders=N): this 1024-byte header, then N complete kind-1 rings ("lanes"), lane
// i at kLanesHeaderSize + i * stride. control.kind_words: [0] lane count, [1] stride (the kind-1
// header plus the per-lane capacity in control.capacity).
struct LanesHeader {
    ControlLine control;
    EndpointLine receiver_end;  // the one receiver (it also holds every lane's consumer end)
    std::byte reserved[6 * kLineSize];
};
inline constexpr std::size_t kLanesHeaderSize = sizeof(LanesHeader);
static_assert(kLanesHeaderSize == 1024, "the lanes header is eight lines");

// ---- Records: the commit word --------------------------------------------------------------

// Every record starts with a 64-bit commit word, stored last (release) and polled by readers:
// bits 0-31 the payload length (padding: bytes to the end of the area), bits 32-63 a stamp
// that ties it to its position, so a word left from an earlier lap or stray payload bytes are
// never taken for a committed record.
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

// Bytes a data record of `payload` bytes occupies in a kind-1 ring (or a lane), commit word and
// alignment included. Topic records add an 8-byte sequence number after the commit word.
[[nodiscard]] constexpr std::uint64_t record_size(std::uint64_t payload,
                                                  std::uint64_t header = kCommitWordSize) noexcept {
    return (header + payload + kRecordAlignment - 1) & ~std::uint64_t{kRecordAlignment - 1};
}

}  // namespace ipckit::detail::ring
