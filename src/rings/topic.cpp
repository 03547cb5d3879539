// The shared-memory topic (one publisher, many subscribers): a region's checks and its format
// here; the publisher in topic_publisher.cpp, the subscribers in topic_subscriber.cpp; what they
// share in topic_region.hpp, the bytes in topic_layout.hpp, design and memory orders in
// docs/topics.md.
#include "ipckit/topic.hpp"

#include <cstring>
#include <functional>
#include <new>
#include <string>

#include "ipckit/error.hpp"
#include "region.hpp"
#include "topic_region.hpp"

namespace ipckit {

namespace detail::topic {

using detail::region::str;

[[noreturn]] void corrupt_record(std::uint64_t position, std::uint64_t capacity, const std::string& what) {
    throw_error(std::errc::bad_message, "topic record at offset " + str(position & (capacity - 1)) +
                                            " (position " + str(position) + "): " + what);
}

Geometry validate(std::span<std::byte> region) {
    detail::region::check_span(region, Kind::topic, header_size(1) + kMinCapacity);
    // The header grows with the slots, so its size is checked here, against the kind words.
    const auto control = detail::region::read_control(region, Kind::topic, 0);
    const auto corrupt = [](const std::string& what) { detail::region::corrupt_header(Kind::topic, what); };
    const std::uint64_t slots = control.kind_words[kSlotsWord];
    const std::uint64_t history = control.kind_words[kHistoryWord];
    const std::uint64_t overflow = control.kind_words[kOverflowWord];
    if (slots < 1 || slots > kMaxSubscribers)
        corrupt("subscriber slots " + str(slots) + " outside 1 … " + str(kMaxSubscribers));
    if (history > kMaxHistory) corrupt("history " + str(history) + " over " + str(kMaxHistory));
    if (overflow > 1) corrupt("overflow " + str(overflow) + " is neither block (0) nor drop (1)");
    const std::uint32_t size = control.header_size;
    const bool latency = (control.flags & detail::region::kFlagLatency) != 0;
    const std::size_t expected_size = header_size(static_cast<std::uint32_t>(slots), latency);
    if (size != expected_size)
        corrupt("header size " + str(size) + ", expected " + str(expected_size) + " for " + str(slots) +
                " slots" + (latency ? " with stats=latency" : ""));
    const std::uint64_t capacity = control.capacity;
    detail::region::check_fits(Kind::topic, size, capacity, region.size());
    auto* header = std::launder(reinterpret_cast<TopicHeader*>(region.data()));
    const std::uint64_t committed = header->publisher.committed.load(std::memory_order_acquire);
    const std::uint64_t next_sequence = header->publisher.next_sequence.load(std::memory_order_acquire);
    const std::uint64_t oldest = header->oldest.position.load(std::memory_order_acquire);
    if (oldest > committed || committed - oldest > capacity || committed % kRecordAlignment != 0 ||
        oldest % kRecordAlignment != 0) {
        throw_error(std::errc::protocol_error, "topic cursors corrupt: oldest at " + str(oldest) +
                                                   ", committed at " + str(committed) + ", capacity " +
                                                   str(capacity));
    }
    return {header,
            region.data() + size,
            capacity,
            static_cast<std::uint32_t>(slots),
            static_cast<std::uint32_t>(history),
            overflow == 1,
            latency,
            committed,
            next_sequence,
            oldest};
}

std::uint64_t checked_position(std::uint64_t position, const char* what) {
    if (position % kRecordAlignment != 0) {
        throw_error(std::errc::protocol_error, std::string("topic ") + what + " position " + str(position) +
                                                   " is not 8-aligned (the region is corrupt)");
    }
    return position;
}

void store_committed(PublisherLine& line, std::uint64_t committed, std::uint64_t next_sequence) noexcept {
    const std::uint64_t v = line.version.load(std::memory_order_relaxed);
    line.version.store(v | 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);  // odd before the new values
    line.next_sequence.store(next_sequence, std::memory_order_relaxed);
    line.committed.store(committed, std::memory_order_relaxed);
    line.version.store((v | 1) + 1, std::memory_order_release);  // the values before even
}

bool load_committed(const PublisherLine& line, std::uint64_t& committed,
                    std::uint64_t& next_sequence) noexcept {
    for (int attempt = 0; attempt < 1000; ++attempt) {
        const std::uint64_t v1 = line.version.load(std::memory_order_acquire);
        committed = line.committed.load(std::memory_order_relaxed);
        next_sequence = line.next_sequence.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);  // the values before the re-read
        if (v1 % 2 == 0 && line.version.load(std::memory_order_relaxed) == v1) return true;
        ::sched_yield();
    }
    committed = line.committed.load(std::memory_order_acquire);
    return false;
}

}  // namespace detail::topic

using namespace detail::topic;

// ---- Topic ----

std::size_t Topic::region_size(std::size_t capacity, std::uint32_t subscribers, bool latency) noexcept {
    return header_size(subscribers, latency) + capacity;
}

std::size_t Topic::max_message_size(std::size_t capacity, bool latency) noexcept {
    return max_message(capacity, latency);
}

std::size_t Topic::format(std::span<std::byte> region, TopicOptions options) {
    return detail::topic::format_topic(region, options, nullptr);
}

std::size_t detail::topic::format_topic(std::span<std::byte> region, TopicOptions options,
                                        const std::function<void(const Geometry&)>& before_visible) {
    detail::region::check_span(region, Kind::topic, header_size(1) + kMinCapacity);
    if (options.subscribers < 1 || options.subscribers > kMaxSubscribers) {
        throw_error(std::errc::invalid_argument, "topic subscribers=" + str(options.subscribers) +
                                                     " is outside 1 … " + str(kMaxSubscribers));
    }
    if (options.history > kMaxHistory) {
        throw_error(std::errc::invalid_argument,
                    "topic history=" + str(options.history) + " is over the limit of " + str(kMaxHistory));
    }
    const std::size_t size = header_size(options.subscribers, options.latency);
    if (region.size() < size + kMinCapacity) {
        throw_error(std::errc::invalid_argument, "topic region of " + str(region.size()) +
                                                     " bytes is too small: " + str(options.subscribers) +
                                                     " slots need " + str(size + kMinCapacity));
    }
    const std::uint64_t capacity = detail::region::choose_capacity(
        Kind::topic, options.capacity, region.size() - size, size + options.capacity, region.size());
    std::memset(region.data(), 0, size);
    auto* header = ::new (region.data()) TopicHeader{};
    for (std::uint32_t i = 0; i < options.subscribers; ++i)
        ::new (&slots(header)[i]) Slot{};
    // The first record's position must not hold a word that passes for a commit word.
    word_at(region.data() + size, 0).store(invalid_word(0), std::memory_order_relaxed);
    detail::region::stamp_fields(
        header->control, Kind::topic, size, capacity,
        {options.subscribers, options.history,
         static_cast<std::uint64_t>(options.overflow == Overflow::drop ? OverflowWord::drop
                                                                       : OverflowWord::block)},
        options.latency ? detail::region::kFlagLatency : 0);
    if (before_visible) {
        before_visible(Geometry{header, region.data() + size, capacity, options.subscribers, options.history,
                                options.overflow == Overflow::drop, options.latency, 0, 0, 0});
    }
    detail::region::publish_magic(header->control);
    return static_cast<std::size_t>(capacity);
}

}  // namespace ipckit
