// Reading every channel's state from outside, for `ipckit top` (include/ipckit/channel_stats.hpp).
// The one place that interprets regions for display, the counters of layout version 3 (each end's,
// on its own line: docs/ring-layout.md, "Counters") included.
#include "ipckit/channel_stats.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "channels/locator.hpp"
#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/objects.hpp"
#include "rings/ring_layout.hpp"
#include "rings/service_region.hpp"
#include "rings/shared_region.hpp"
#include "rings/topic_layout.hpp"

namespace ipckit {
namespace {

namespace region = detail::region;
namespace ring = detail::ring;
namespace service = detail::service;
namespace topic = detail::topic;

// A corrupt region: what `problem` says.
struct Corrupt {
    std::string what;
};

[[noreturn]] void corrupt(std::string what) {
    throw Corrupt{std::move(what)};
}

// Every load is acquire: a snapshot taken by a bystander, not a hot path.
std::uint64_t load(const std::atomic<std::uint64_t>& word) {
    return word.load(std::memory_order_acquire);
}
std::uint32_t load(const std::atomic<std::uint32_t>& word) {
    return word.load(std::memory_order_acquire);
}
// A counter: relaxed, as its one writer stores it.
std::uint64_t counter(const std::atomic<std::uint64_t>& word) {
    return word.load(std::memory_order_relaxed);
}

// The region's bytes, mapped read-only for as long as the reading takes.
class RegionView {
public:
    RegionView(const Fd& fd, std::size_t size, const std::string& object)
        : mapping_(Mapping::map(fd, size, Access::read_only, {}, object)), guard_(mapping_.bytes(), object) {}
    template <class T>
    const T& at(std::uint64_t offset) const {
        if (offset > mapping_.size() || mapping_.size() - offset < sizeof(T))
            corrupt("a header at byte " + std::to_string(offset) + " lies past the region's end");
        return *reinterpret_cast<const T*>(mapping_.data() + offset);
    }
    [[nodiscard]] std::size_t size() const { return mapping_.size(); }
    [[nodiscard]] bool lost() const { return guard_.lost(); }

private:
    Mapping mapping_;
    detail::BusGuard guard_;
};

// Adds the end's holder, if it is held, and returns it (null when nobody holds the end). The
// end's takeovers are counted either way: its line keeps them across holders.
ChannelHolder* add_holder(ChannelStats& stats, const ring::EndpointLine& line, std::string role) {
    stats.counters->takeovers += counter(line.takeovers);
    const auto owner = ring::OwnerWord::unpack(load(line.owner));
    if (owner.state == ring::EndpointState::vacant || owner.state == ring::EndpointState::closed)
        return nullptr;
    if (owner.state != ring::EndpointState::attached && owner.state != ring::EndpointState::claiming)
        corrupt("the " + role + "'s owner word has state " + std::to_string(static_cast<int>(owner.state)));
    // Alive as takeover decides it: the holder word, a robust futex the kernel marks at the
    // holder's death in any PID namespace (endpoint.hpp). The pid is for display.
    stats.holders.push_back(
        {std::move(role), static_cast<pid_t>(owner.pid), ring::holder_alive(load(line.holder))});
    return &stats.holders.back();
}

// A ring end's (or the topic publisher's) counters into the channel's, and its holder's.
void add_counters(ChannelStats& stats, const region::EndCounters& end, ChannelHolder* holder, bool sender) {
    const std::uint64_t messages = counter(end.messages);
    const std::uint64_t bytes = counter(end.bytes);
    auto& c = *stats.counters;
    (sender ? c.messages_sent : c.messages_received) += messages;
    (sender ? c.bytes_sent : c.bytes_received) += bytes;
    c.full_waits += counter(end.full_waits);
    c.sleeps += counter(end.sleeps);
    c.wakes_sent += counter(end.wakes_sent);
    if (holder != nullptr) {
        holder->messages = messages;
        holder->bytes = bytes;
    }
}

void check_capacity(std::uint64_t capacity) {
    if (capacity < region::kMinCapacity || capacity > region::kMaxCapacity ||
        (capacity & (capacity - 1)) != 0)
        corrupt("capacity " + std::to_string(capacity) + " is not a power of two from 64 B to 4 GiB");
}

// Adds a reader's histogram block to the channel's.
void add_latency(ChannelStats& stats, const region::LatencyHistogram& block) {
    stats.latency_histogram.resize(region::kLatencyBuckets);
    for (std::size_t b = 0; b < region::kLatencyBuckets; ++b)
        stats.latency_histogram[b] += counter(block.buckets[b]);
}

// One 1:1 ring's cursors, counters and holders, at `base` (0, or a lane's offset). A lane's consumer
// end is the lanes receiver's: its counters go to the channel, and its sleeps (the receiver's,
// counted on every lane it slept on) to `lanes_receiver_sleeps`, the most any lane counted.
// A kind-1 ring's cursors: its bytes committed and its backlog, into the channel's.
void add_cursors(ChannelStats& stats, const ring::RingHeader& header, std::uint64_t capacity) {
    // The consumer first: it never passes the producer, so read in this order the pair is ordered.
    const std::uint64_t consumed = load(header.consumer.position);
    const std::uint64_t committed = load(header.producer.position);
    if (consumed > committed)
        corrupt("the consumer cursor (" + std::to_string(consumed) + ") is ahead of the producer's (" +
                std::to_string(committed) + ")");
    const std::uint64_t backlog = std::min(committed - consumed, capacity);
    stats.bytes = stats.bytes.value_or(0) + committed;
    stats.backlog = stats.backlog.value_or(0) + backlog;
    stats.slowest_lag_bytes = std::max(stats.slowest_lag_bytes.value_or(0), backlog);
}

void read_ring(const RegionView& view, std::uint64_t base, ChannelStats& stats, const std::string& producer,
               const char* consumer, bool& lanes_receiver_sleeping, std::uint64_t& lanes_receiver_sleeps) {
    const auto& header = view.at<ring::RingHeader>(base);
    add_cursors(stats, header, *stats.capacity);
    // A lanes receiver asleep is counted on every lane it waits on: once is what it is.
    const auto consumers = load(header.wait.consumer_sleepers);
    stats.sleepers += load(header.wait.producer_sleepers) + (consumer != nullptr ? consumers : 0);
    lanes_receiver_sleeping = lanes_receiver_sleeping || (consumer == nullptr && consumers != 0);
    add_counters(stats, header.producer.counters, add_holder(stats, header.producer_end, producer), true);
    if ((header.control.flags & region::kFlagLatency) != 0) add_latency(stats, header.latency);
    if (consumer != nullptr) {
        add_counters(stats, header.consumer.counters, add_holder(stats, header.consumer_end, consumer),
                     false);
        return;
    }
    // The consumer end is the receiver's (or a service's server's): its takeovers are its own end's.
    const std::uint64_t sleeps = counter(header.consumer.counters.sleeps);
    add_counters(stats, header.consumer.counters, nullptr, false);
    stats.counters->sleeps -= sleeps;
    lanes_receiver_sleeps = std::max(lanes_receiver_sleeps, sleeps);
}

void read_topic(const RegionView& view, const region::ControlLine& control, ChannelStats& stats) {
    const auto slots = control.kind_words[topic::kSlotsWord];
    if (slots < 1 || slots > topic::kMaxSubscribers)
        corrupt("a topic with " + std::to_string(slots) + " subscriber slots (1-1024)");
    const bool latency = (control.flags & region::kFlagLatency) != 0;
    if (latency) stats.latency_histogram.resize(region::kLatencyBuckets);  // zeros until one joins
    if (control.header_size != topic::header_size(static_cast<std::uint32_t>(slots), latency))
        corrupt("header size " + std::to_string(control.header_size) + " does not fit " +
                std::to_string(slots) + " slots");
    const auto& header = view.at<topic::TopicHeader>(0);
    add_counters(stats, header.publisher.counters, add_holder(stats, header.publisher_end, "publisher"),
                 true);
    std::uint64_t committed = 0;
    std::uint64_t next_sequence = 0;
    for (int attempt = 0;; ++attempt) {  // the publisher's pair, under its sequence lock
        const std::uint64_t before = load(header.publisher.version);
        committed = load(header.publisher.committed);
        next_sequence = load(header.publisher.next_sequence);
        if ((before & 1) == 0 && load(header.publisher.version) == before) break;
        if (attempt == 1000) corrupt("the publisher line stays locked (odd version)");
    }
    stats.bytes = committed;
    stats.messages = next_sequence;
    stats.missed = 0;
    std::uint64_t slowest_bytes = 0;
    std::uint64_t slowest_messages = 0;
    for (std::uint64_t i = 0; i < slots; ++i) {
        const auto& slot = view.at<topic::Slot>(topic::kFixedHeaderSize + i * sizeof(topic::Slot));
        const auto owner = ring::OwnerWord::unpack(load(slot.end.owner));
        if (owner.state != ring::EndpointState::attached || load(slot.cursor.joined_epoch) != owner.epoch) {
            stats.counters->takeovers += counter(slot.end.takeovers);
            continue;
        }
        ++stats.subscribers;
        ChannelHolder* holder = add_holder(stats, slot.end, "subscriber " + std::to_string(i));
        const std::uint64_t position = load(slot.cursor.position);
        const std::uint64_t sequence = load(slot.cursor.sequence);
        const std::uint64_t missed = load(slot.cursor.missed);
        *stats.missed += missed;
        auto& c = *stats.counters;
        const std::uint64_t messages = counter(slot.cursor.messages);
        const std::uint64_t bytes = counter(slot.cursor.bytes);
        c.messages_received += messages;
        c.bytes_received += bytes;
        c.sleeps += counter(slot.cursor.sleeps);
        if (latency)
            add_latency(stats, view.at<region::LatencyHistogram>(
                                   topic::header_size(static_cast<std::uint32_t>(slots)) +
                                   i * sizeof(region::LatencyHistogram)));
        if (holder != nullptr) {
            holder->messages = messages;
            holder->bytes = bytes;
            holder->missed = missed;
        }
        // The publisher's pair was read before the cursors: a subscriber may have moved past it.
        if (position <= committed) slowest_bytes = std::max(slowest_bytes, committed - position);
        if (sequence <= next_sequence)
            slowest_messages = std::max(slowest_messages, next_sequence - sequence);
    }
    stats.backlog = std::min(slowest_bytes, *stats.capacity);
    stats.slowest_lag_bytes = slowest_bytes;
    stats.slowest_lag_messages = slowest_messages;
    stats.sleepers += load(header.wait.subscriber_sleepers) + load(header.wait.publisher_sleepers);
}

// A service (kind 4): the server, and each slot's client with the requests it has queued (the
// server consumes them); `messages` is the server's count of calls received.
void read_service(const RegionView& view, const region::ControlLine& control, ChannelStats& stats) {
    const auto slots = control.kind_words[0];
    const auto stride = control.kind_words[1];
    if (slots < 1 || slots > service::kMaxClients)
        corrupt("a service with " + std::to_string(slots) + " client slots (1-1023)");
    if (stride < 2 * ring::kHeaderSize + *stats.capacity || view.size() < service::kServiceHeaderSize ||
        (view.size() - service::kServiceHeaderSize) / stride < slots)
        corrupt("service slots of stride " + std::to_string(stride) + " do not fit the region");
    const auto& header = view.at<service::ServiceHeader>(0);
    add_holder(stats, header.server_end, "server");
    stats.messages = load(header.server.calls);
    stats.sleepers += load(header.wait.server_sleepers);
    bool unused = false;
    std::uint64_t unused_sleeps = 0;  // the server sleeps on its own wait line, not on the rings
    for (std::uint64_t i = 0; i < slots; ++i)
        read_ring(view, service::kServiceHeaderSize + i * stride, stats, "client " + std::to_string(i),
                  nullptr, unused, unused_sleeps);
}

void read_lanes(const RegionView& view, const region::ControlLine& control, ChannelStats& stats) {
    const auto count = control.kind_words[0];
    const auto stride = control.kind_words[1];
    if (count < 1 || count > 64) corrupt("lanes with " + std::to_string(count) + " lanes (1-64)");
    if (stride < ring::kHeaderSize + *stats.capacity || view.size() < ring::kLanesHeaderSize ||
        (view.size() - ring::kLanesHeaderSize) / stride < count)
        corrupt("lanes of stride " + std::to_string(stride) + " do not fit the region");
    stats.address += "?senders=" + std::to_string(count);
    add_holder(stats, view.at<ring::LanesHeader>(0).receiver_end, "receiver");
    bool receiver_sleeping = false;
    std::uint64_t receiver_sleeps = 0;
    for (std::uint64_t i = 0; i < count; ++i)
        read_ring(view, ring::kLanesHeaderSize + i * stride, stats, "lane " + std::to_string(i), nullptr,
                  receiver_sleeping, receiver_sleeps);
    stats.sleepers += receiver_sleeping ? 1 : 0;
    stats.counters->sleeps += receiver_sleeps;
}

// A file in /dev/shm: an ipckit region (its magic) or not ours (nothing).
std::optional<ChannelStats> read_region(const std::string& name) {
    const std::string path = std::string(detail::kShmDir) + name;
    const Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    // A copy by pread first: nothing is mapped before the magic says it is ours.
    alignas(region::ControlLine) std::byte copy[sizeof(region::ControlLine)];
    if (st.st_size < static_cast<off_t>(sizeof copy) ||
        ::pread(fd.get(), copy, sizeof copy, 0) != static_cast<ssize_t>(sizeof copy))
        return std::nullopt;
    const auto& control_copy = *reinterpret_cast<const region::ControlLine*>(copy);
    if (control_copy.magic.load(std::memory_order_relaxed) != region::kMagic) return std::nullopt;

    ChannelStats stats;
    stats.address = "shm:" + name;
    try {
        if (control_copy.version != region::kVersion) {  // another build's region, not a damaged one
            ChannelStats other;
            other.address = stats.address;
            other.kind = "region";
            other.problem = "layout version " + std::to_string(control_copy.version) +
                            ": this ipckit reads " + std::to_string(region::kVersion);
            return other;
        }
        const RegionView view(fd, static_cast<std::size_t>(st.st_size), stats.address);
        const auto& control = view.at<region::ControlLine>(0);
        stats.capacity = control.capacity;
        stats.counters.emplace();
        check_capacity(control.capacity);
        switch (control.kind) {
            case region::Kind::ring: {
                stats.kind = "ring";
                if (control.header_size != ring::kHeaderSize || view.size() < ring::kHeaderSize ||
                    view.size() - ring::kHeaderSize < control.capacity)
                    corrupt("a ring whose data area does not fit the region");
                bool unused = false;
                std::uint64_t unused_sleeps = 0;
                read_ring(view, 0, stats, "producer", "consumer", unused, unused_sleeps);
                break;
            }
            case region::Kind::lanes:
                stats.kind = "lanes";
                read_lanes(view, control, stats);
                break;
            case region::Kind::topic:
                stats.kind = "topic";
                stats.address = "topic:" + name;
                if (control.header_size > view.size() || view.size() - control.header_size < control.capacity)
                    corrupt("a topic whose data area does not fit the region");
                read_topic(view, control, stats);
                break;
            case region::Kind::service:
                stats.kind = "service";
                stats.address = "service:" + name;
                read_service(view, control, stats);
                break;
            default:
                corrupt("region kind " + std::to_string(static_cast<std::uint32_t>(control.kind)) +
                        " (known: 1 ring, 2 lanes, 3 topic, 4 service)");
        }
        if (view.lost()) corrupt("truncated while it was read");
    } catch (const Corrupt& c) {
        ChannelStats bad;
        bad.address = stats.address;
        bad.kind = stats.kind.empty() ? "region" : stats.kind;
        bad.problem = "corrupt: " + c.what;
        return bad;
    } catch (const Error&) {
        return std::nullopt;  // gone, or not mappable: not a channel any more
    }
    return stats;
}

}  // namespace

std::optional<std::uint64_t> latency_quantile(const std::vector<std::uint64_t>& histogram, double q) {
    std::uint64_t total = 0;
    for (const auto n : histogram)
        total += n;
    if (total == 0) return std::nullopt;
    const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < histogram.size(); ++b) {
        seen += histogram[b];
        if (seen >= std::max<std::uint64_t>(rank, 1))
            return b == 0 ? 0 : std::uint64_t{1} << std::min<std::size_t>(b, 63);
    }
    return std::uint64_t{1} << 63;
}

std::vector<ChannelStats> read_channel_stats() {
    std::vector<ChannelStats> all;
    for (const auto& object : list_objects()) {
        if (object.kind == ObjectKind::shm) {
            const auto name = object.address.substr(object.address.find(':') + 1);
            if (auto stats = read_region(name)) all.push_back(std::move(*stats));
        } else if (object.kind == ObjectKind::sysvmq || object.kind == ObjectKind::posixmq) {
            ChannelStats stats;
            stats.address = object.address;
            stats.kind = std::string(to_string(object.kind));
            stats.messages = object.messages;
            stats.backlog = object.size;
            all.push_back(std::move(stats));
        }
    }
    return all;
}

}  // namespace ipckit
