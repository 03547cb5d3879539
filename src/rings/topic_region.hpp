// Internal: what the topic's three files share (topic.cpp: checking and formatting a region;
// topic_publisher.cpp; topic_subscriber.cpp). The bytes are in topic_layout.hpp; docs/topics.md
// says why each step is where it is.
#pragma once

#include <sched.h>

#include <atomic>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <span>
#include <string>

#include "ipckit/topic.hpp"
#include "sync/futex.hpp"
#include "topic_layout.hpp"

namespace ipckit::detail::topic {

using namespace detail::region;

// A joiner whose start is overtaken by the publisher (it wrote faster than the joiner could
// settle) tries again this often before it starts at the oldest intact record.
inline constexpr int kJoinAttempts = 64;

// Error(bad_message) naming the record at `position`.
[[noreturn]] void corrupt_record(std::uint64_t position, std::uint64_t capacity, const std::string& what);

// A record and the 8-byte invalidation after it take at most half the area, so one always fits
// however the free space is split around the end.
[[nodiscard]] inline std::size_t max_message(std::uint64_t capacity, bool latency = false) noexcept {
    return static_cast<std::size_t>(capacity / 2 - record_header(latency) - kCommitWordSize);
}

inline std::atomic<std::uint64_t>& word_at(std::byte* data, std::uint64_t offset) noexcept {
    return *std::launder(reinterpret_cast<std::atomic<std::uint64_t>*>(data + offset));
}
inline const std::atomic<std::uint64_t>& word_at(const std::byte* data, std::uint64_t offset) noexcept {
    return *std::launder(reinterpret_cast<const std::atomic<std::uint64_t>*>(data + offset));
}

// A region's header, read once into locals and checked (validate).
struct Geometry {
    TopicHeader* header;
    std::byte* data;
    std::uint64_t capacity;
    std::uint32_t slots;
    std::uint32_t history;
    bool drop;
    bool latency;  // stats=latency: records carry their commit time, subscribers a histogram
    std::uint64_t committed;
    std::uint64_t next_sequence;
    std::uint64_t oldest;
};

// Reads every header field once, into locals, and checks it: the header is shared with
// processes that may be buggy or hostile.
[[nodiscard]] Geometry validate(std::span<std::byte> region);

// Topic::format, with `before_visible` (when set) called on the formatted region just before
// the magic makes it attachable (TopicSubscriber::create joins there).
std::size_t format_topic(std::span<std::byte> region, TopicOptions options,
                         const std::function<void(const Geometry&)>& before_visible);

// Wakes every sleeper on `event` if any announced itself. The caller issued a seq_cst fence
// between its publication (commit word or cursor) and this load: the store-buffer handshake
// with a sleeper's announcement, fence and re-check (see wait.hpp), so no wake-up is lost
// and nobody sleeping costs no system call. (A topic keeps the fence on both sides: its
// publisher has many peers, each of which may sleep at once.)
inline void wake_sleepers(std::atomic<std::uint32_t>& sleepers, std::atomic<std::uint32_t>& event) {
    if (sleepers.load(std::memory_order_relaxed) != 0) [[unlikely]] {
        event.fetch_add(1, std::memory_order_release);
        (void)futex_wake(event, INT_MAX);
    }
}

// A position read from the region after attach (oldest, committed) becomes a cursor: one that is
// not 8-aligned would put commit words at misaligned addresses.
[[nodiscard]] std::uint64_t checked_position(std::uint64_t position, const char* what);

// Writes the publisher line's pair under its sequence lock (single writer: the publisher).
void store_committed(PublisherLine& line, std::uint64_t committed, std::uint64_t next_sequence) noexcept;
// Reads the pair; false if it kept changing (or a publisher died half-way through writing it).
[[nodiscard]] bool load_committed(const PublisherLine& line, std::uint64_t& committed,
                                  std::uint64_t& next_sequence) noexcept;

}  // namespace ipckit::detail::topic
