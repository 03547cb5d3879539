// ipckit/channel_stats.hpp — what every ipckit channel on this machine holds right now, read
// from outside: the data behind `ipckit top` (docs/observability.md).
//
// `read_channel_stats` finds channels as `list_objects` does (objects.hpp) and reads each one
// without changing or blocking it: a ring, lanes or topic region in /dev/shm is mapped read-only
// and its cursors, holders and sleeper counts are loaded once (a region truncated meanwhile reads
// as lost, never SIGBUS); for a System V or POSIX queue, what the kernel reports. Rates are not
// here: they are differences between two snapshots (`ipckit top` takes them). A region whose
// header or cursors are inconsistent is returned with `problem` saying "corrupt: " and what, and
// no figures; so is one of another layout version ("layout version 2: this ipckit reads 3").
// The counters each end keeps on its own line (layout version 3, part B) are loaded relaxed: each
// is exact, but two of them are not one snapshot (a message may be counted sent, not yet received).
//
// Not seen: regions in a sealed memfd (shm:@NAME, topic:@NAME: reaching one means connecting to
// its creator) and rings in System V segments (attaching would change the segment's nattch).
//
// Example:
//     for (const auto& c : ipckit::read_channel_stats())
//         if (c.slowest_lag_bytes && *c.slowest_lag_bytes > 1 << 20) std::cout << c.address << '\n';
//
// Errors: none for a channel it cannot read (it is skipped, or reported in `problem`).
// Thread-safety: may be called from any thread; keeps no state.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ipckit {

struct ChannelHolder {
    std::string role;    // "producer", "consumer", "receiver", "lane 3", "publisher", "subscriber 2",
                         // "server", "client 0"
    pid_t pid = 0;       // in the holder's own PID namespace: for display
    bool alive = false;  // its holder word says so: the kernel marks it when the process dies
    // The end's own counters (rings, lanes, topics; zero for a lanes receiver, whose lanes count):
    // messages and payload bytes it sent or received, and (a topic subscriber) records it missed
    // under overflow=drop. A ring end's count since the region was formatted, a subscriber's since
    // it joined.
    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;
    std::uint64_t missed = 0;
};

// What the ends of a ring, lanes region or topic counted (docs/observability.md, "Counters"). Ring
// and lanes figures are since the region was formatted; a topic's received figures add up its
// joined subscribers' (each since it joined).
struct ChannelCounters {
    std::uint64_t messages_sent = 0;      // committed by the producer(s) or the publisher
    std::uint64_t bytes_sent = 0;         // their payload bytes
    std::uint64_t messages_received = 0;  // consumed by the consumer, receiver, or every subscriber
    std::uint64_t bytes_received = 0;
    std::uint64_t full_waits = 0;  // sends that found the ring (or the slowest subscriber) full
    std::uint64_t sleeps = 0;      // futex sleeps, every end (a lanes receiver's: once per sleep)
    std::uint64_t wakes_sent = 0;  // futex wakes issued for a sleeping peer
    std::uint64_t takeovers = 0;   // ends claimed from a holder that had died
};

struct ChannelStats {
    // As the tool takes it: shm:/NAME, shm:/NAME?senders=N, topic:/NAME, service:/NAME, sysvmq:0x…,
    // posixmq:/NAME.
    std::string address;
    std::string kind;  // "ring", "lanes", "topic", "service", "sysvmq", "posixmq"
    // Non-empty: the region is corrupt (or lost while read) or of another layout version; the
    // figures below are then empty.
    std::string problem;
    std::optional<std::uint64_t> capacity;              // bytes of data area (per lane for lanes)
    std::optional<std::uint64_t> bytes;                 // bytes ever committed (rings, topics): rate by delta
    std::optional<std::uint64_t> messages;              // topics: messages ever published; queues: queued now
    std::optional<std::uint64_t> backlog;               // bytes committed and not yet consumed by the slowest
    std::optional<std::uint64_t> slowest_lag_bytes;     // the slowest reader's lag, bytes
    std::optional<std::uint64_t> slowest_lag_messages;  // topics: the slowest subscriber's, messages
    std::optional<std::uint64_t> missed;      // topics: records lost to overflow=drop, all subscribers
    std::uint32_t subscribers = 0;            // topics: joined subscribers
    std::uint32_t sleepers = 0;               // processes inside a futex wait on the region now
    std::vector<ChannelHolder> holders;       // the region's ends that are held
    std::optional<ChannelCounters> counters;  // rings, lanes, topics
    // stats=latency (rings, lanes, topics): 64 log2 buckets of commit-to-consume times, every
    // reader's added up: bucket 0 counts 0 ns, bucket b [2^(b-1), 2^b) ns (the last, anything
    // longer). Empty without the option.
    std::vector<std::uint64_t> latency_histogram;
};

[[nodiscard]] std::vector<ChannelStats> read_channel_stats();

// The time under which a fraction `q` (0 < q <= 1) of the histogram's waits fall, as the upper
// edge of the bucket that holds it (2^b ns; 0 for bucket 0): within a factor of two. Nothing when
// the histogram is empty or counts nothing.
[[nodiscard]] std::optional<std::uint64_t> latency_quantile(const std::vector<std::uint64_t>& histogram,
                                                            double q);

}  // namespace ipckit
