// ring_layout.hpp — the bytes of a shared-memory ring, lanes region or topic, as
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
//   offset 384   CursorLine     producer cursor: bytes committed (stored after each commit), counters
//   offset 512   CursorLine     consumer cursor: bytes consumed (stored after each record), counters
//   offset 640   WaitLine       sleeper counts and futex words (written only on the sleeping path)
//   offset 768   DoorbellLine   a wait set's doorbell, when one is registered
//   offset 896   reserved       (zero)
//   offset 1024  LatencyHistogram  stats=latency: the consumer's commit-to-consume times
//   offset 1536  reserved       (zero) up to 2048
//   offset 2048  data           `capacity` bytes of records, a power of two
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
#include "record.hpp"

namespace ipckit::detail::ring {

// What every region kind shares (the control line, the kinds, the record commit word and its
// stamps) has one definition, in record.hpp; the ring's code names them from here.
using region::commit_word;
using region::ControlLine;
using region::data_stamp;
using region::invalid_word;
using region::kCommitWordSize;
using region::kFlagLatency;
using region::Kind;
using region::kMagic;
using region::kMaxCapacity;
using region::kMinCapacity;
using region::kRecordAlignment;
using region::kVersion;
using region::padding_stamp;
using region::record_size;
using region::word_length;
using region::word_stamp;

// A cursor line is written by its end alone: the position, then that end's counters
// (docs/ring-layout.md, "Counters"; a consumer leaves full_waits zero).
struct alignas(kLineSize) CursorLine {
    std::atomic<std::uint64_t> position;
    region::EndCounters counters;
};
static_assert(offsetof(CursorLine, counters) == 8, "the counters follow the position");

// Read on every send/recv but written only by a side about to sleep, so it stays shared in
// both caches and costs a hit, not a miss, when nobody sleeps.
struct alignas(kLineSize) WaitLine {
    std::atomic<std::uint32_t> consumer_sleepers;  // consumers inside futex_wait for data
    std::atomic<std::uint32_t> data_event;         // futex word: bumped when data arrives for a sleeper
    std::atomic<std::uint32_t> producer_sleepers;  // producers inside futex_wait for space
    std::atomic<std::uint32_t> space_event;        // futex word: bumped when space frees for a sleeper
    // Where a sleeping producer wants the consumer cursor before it is woken: a quarter of the
    // ring free (or the room its record needs, if more), so that a producer facing a full ring
    // sleeps once per quarter lap, not once per record. Written by a producer about to sleep.
    std::atomic<std::uint64_t> space_wanted;
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
    std::byte reserved0[kLineSize];
    // With stats=latency (control.flags): written by the consumer alone; zero otherwise.
    region::LatencyHistogram latency;
    std::byte reserved1[4 * kLineSize];
};

inline constexpr std::size_t kHeaderSize = sizeof(RingHeader);
static_assert(kHeaderSize == 16 * kLineSize, "the ring header is sixteen lines (2048 bytes)");
static_assert(offsetof(RingHeader, latency) == 1024, "the histogram block of layout part B");
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

}  // namespace ipckit::detail::ring
