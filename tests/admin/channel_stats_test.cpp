// read_channel_stats (src/admin/channel_stats.cpp): a ring's backlog and holders as another
// process left them, a dead holder seen as dead, lanes, services, and a cursor written wrong on
// purpose; the counters every end keeps (layout version 3, part B) equal what was sent and received.
#include "ipckit/channel_stats.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/channel.hpp"
#include "ipckit/service.hpp"
#include "ipckit/topic.hpp"
#include "rings/ring_layout.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;

std::optional<ChannelStats> stats_of(const std::string& address) {
    for (auto& c : read_channel_stats())
        if (c.address == address) return c;
    return std::nullopt;
}

// A child that runs `work` (true: done), says so through a pipe and waits to be killed (so what
// it sent stays queued, and the ends it keeps outside `work` stay held); returned once it said so.
test::Child child_that_stays(const std::function<bool()>& work) {
    int ready[2];
    EXPECT_EQ(::pipe(ready), 0);
    auto child = test::spawn([&] {
        const char byte = 1;
        if (!work() || ::write(ready[1], &byte, 1) != 1) return 2;
        ::pause();
        return 0;
    });
    char byte = 0;
    EXPECT_EQ(::read(ready[0], &byte, 1), 1);
    ::close(ready[0]);
    ::close(ready[1]);
    return child;
}

// A sender on `address` that sends `count` messages of 100 bytes and stays.
test::Child sender_that_stays(const std::string& address, int count) {
    std::optional<Sender> sender;  // the child's copy outlives `work`: its end stays held
    return child_that_stays([&] {
        sender.emplace(Sender::open(address, Deadline::after(10s)));
        const std::string message(100, 'r');
        for (int i = 0; i < count; ++i)
            if (!sender->send(as_bytes(message)).ok()) return false;
        return true;
    });
}

TEST(ChannelStatsTest, ARingShowsItsBacklogAndHoldersAndADeadProducerAsDead) {
    const std::string name = "/" + test::unique_name("ipckit-test-stats");
    Receiver receiver = Receiver::create("shm:" + name);
    auto child = sender_that_stays("shm:" + name, 5);
    auto stats = stats_of("shm:" + name);
    ASSERT_TRUE(stats.has_value());
    EXPECT_EQ(stats->kind, "ring");
    EXPECT_TRUE(stats->problem.empty()) << stats->problem;
    const std::uint64_t record = detail::region::record_size(100);
    EXPECT_EQ(stats->backlog, 5 * record);
    EXPECT_EQ(stats->bytes, 5 * record);
    ASSERT_EQ(stats->holders.size(), 2u);
    EXPECT_EQ(stats->holders[0].role, "producer");
    EXPECT_EQ(stats->holders[0].pid, child.pid());
    EXPECT_TRUE(stats->holders[0].alive);
    EXPECT_EQ(stats->holders[1].pid, ::getpid());

    child.kill(SIGKILL);
    (void)child.wait();
    stats = stats_of("shm:" + name);
    ASSERT_TRUE(stats.has_value());
    ASSERT_EQ(stats->holders.size(), 2u);
    EXPECT_FALSE(stats->holders[0].alive);
    EXPECT_EQ(stats->backlog, 5 * record);  // committed records stay for the reader

    // A consumer cursor ahead of the producer's is a corrupt region, said as such.
    const int fd = ::open(("/dev/shm" + name).c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    constexpr off_t kConsumer = offsetof(detail::ring::RingHeader, consumer);
    std::uint64_t consumed = 0;
    ASSERT_EQ(::pread(fd, &consumed, 8, kConsumer), 8);
    const std::uint64_t ahead = 1 << 20;
    ASSERT_EQ(::pwrite(fd, &ahead, 8, kConsumer), 8);
    stats = stats_of("shm:" + name);
    ASSERT_TRUE(stats.has_value());
    EXPECT_NE(stats->problem.find("corrupt: the consumer cursor"), std::string::npos) << stats->problem;
    EXPECT_FALSE(stats->backlog.has_value());
    ASSERT_EQ(::pwrite(fd, &consumed, 8, kConsumer), 8);
    ::close(fd);
}

TEST(ChannelStatsTest, LanesAddTheirSendersBacklogs) {
    const std::string name = "/" + test::unique_name("ipckit-test-stats");
    Receiver receiver = Receiver::create("shm:" + name + "?senders=4");
    auto first = sender_that_stays("shm:" + name + "?senders=4", 3);
    auto second = sender_that_stays("shm:" + name + "?senders=4", 2);
    const auto stats = stats_of("shm:" + name + "?senders=4");
    ASSERT_TRUE(stats.has_value());
    EXPECT_EQ(stats->kind, "lanes");
    EXPECT_EQ(stats->backlog, 5 * detail::region::record_size(100));
    EXPECT_EQ(stats->slowest_lag_bytes, 3 * detail::region::record_size(100));
    EXPECT_EQ(std::count_if(stats->holders.begin(), stats->holders.end(),
                            [](const ChannelHolder& h) { return h.alive; }),
              3);
    first.kill(SIGKILL);
    second.kill(SIGKILL);
}

// Two numbers a child reports through a pipe.
struct Report {
    std::uint64_t first = 0;
    std::uint64_t second = 0;
};

class ReportPipe {
public:
    ReportPipe() { EXPECT_EQ(::pipe(fds_), 0); }
    ReportPipe(const ReportPipe&) = delete;
    ReportPipe& operator=(const ReportPipe&) = delete;
    ~ReportPipe() {
        ::close(fds_[0]);
        ::close(fds_[1]);
    }
    [[nodiscard]] bool send(Report report) const {
        return ::write(fds_[1], &report, sizeof report) == static_cast<ssize_t>(sizeof report);
    }
    [[nodiscard]] Report receive() const {
        Report report;
        EXPECT_EQ(::read(fds_[0], &report, sizeof report), static_cast<ssize_t>(sizeof report));
        return report;
    }

private:
    int fds_[2] = {-1, -1};
};

const ChannelHolder* holder(const ChannelStats& stats, const std::string& role) {
    for (const auto& h : stats.holders)
        if (h.role == role) return &h;
    return nullptr;
}

// Receives `count` messages (each must come within 10 s) and returns their payload bytes.
std::uint64_t receive(Receiver& receiver, int count) {
    std::uint64_t bytes = 0;
    std::vector<std::byte> message;
    for (int i = 0; i < count; ++i) {
        const auto r = receiver.recv(message, Deadline::after(10s));
        EXPECT_TRUE(r.ok());
        bytes += r.bytes;
    }
    return bytes;
}

TEST(ChannelStatsCountersTest, ARingCountsWhatWasSentAndReceivedAndEveryTakeover) {
    const std::string address = "shm:/" + test::unique_name("ipckit-test-counters");
    Receiver receiver = Receiver::create(address);
    // Three producers in turn on one address, the first two killed: each takeover is counted.
    std::uint64_t received = 0;
    for (int round = 0; round < 3; ++round) {
        auto child = sender_that_stays(address, 5);
        received += receive(receiver, 3);
        auto stats = stats_of(address);
        ASSERT_TRUE(stats.has_value());
        ASSERT_TRUE(stats->counters.has_value()) << stats->problem;
        const ChannelCounters& c = *stats->counters;
        const auto sent = static_cast<std::uint64_t>(5 * (round + 1));
        EXPECT_EQ(c.messages_sent, sent);
        EXPECT_EQ(c.bytes_sent, sent * 100);
        EXPECT_EQ(c.messages_received, static_cast<std::uint64_t>(3 * (round + 1)));
        EXPECT_EQ(c.bytes_received, received);
        EXPECT_EQ(c.takeovers, static_cast<std::uint64_t>(round));
        const auto* producer = holder(*stats, "producer");
        ASSERT_NE(producer, nullptr);
        EXPECT_EQ(producer->messages, sent);  // the end's count, across its holders
        const auto* consumer = holder(*stats, "consumer");
        ASSERT_NE(consumer, nullptr);
        EXPECT_EQ(consumer->bytes, received);
        child.kill(SIGKILL);
        (void)child.wait();
    }
    received += receive(receiver, 6);
    const auto stats = stats_of(address);
    ASSERT_TRUE(stats.has_value() && stats->counters.has_value());
    EXPECT_EQ(stats->counters->messages_received, 15u);
    EXPECT_EQ(stats->counters->bytes_received, 1500u);
    EXPECT_EQ(stats->counters->full_waits, 0u);
}

TEST(ChannelStatsCountersTest, AFullRingCountsEachSendThatFoundNoRoom) {
    const std::string address = "shm:/" + test::unique_name("ipckit-test-counters");
    Receiver receiver = Receiver::create(address + "?capacity=4096");
    Sender sender = Sender::open(address);
    const std::string message(100, 'f');
    std::uint64_t sent = 0;
    while (sender.try_send(as_bytes(message)).ok())
        ASSERT_LT(++sent, 100u);
    ASSERT_FALSE(sender.try_send(as_bytes(message)).ok());
    auto stats = stats_of(address);
    ASSERT_TRUE(stats.has_value() && stats->counters.has_value());
    EXPECT_EQ(stats->counters->full_waits, 2u);
    EXPECT_EQ(stats->counters->messages_sent, sent);
    EXPECT_EQ(receive(receiver, static_cast<int>(sent)), sent * 100);
    stats = stats_of(address);
    EXPECT_EQ(stats->counters->messages_received, sent);
    EXPECT_EQ(stats->counters->sleeps, 0u);  // nobody waited: neither end slept
}

TEST(ChannelStatsCountersTest, ASleepingReceiverIsCountedAsleepAndWokenOnce) {
    const std::string address = "shm:/" + test::unique_name("ipckit-test-counters");
    Sender sender = Sender::create(address);
    ReportPipe report;
    auto child = test::spawn([&] {
        Receiver receiver = Receiver::open(address + "?wait=block");
        std::vector<std::byte> message;
        const auto r = receiver.recv(message, Deadline::after(20s));
        if (!report.send({r.ok() ? 1u : 0u, r.bytes})) return 2;
        ::pause();
        return 0;
    });
    // Sent only once the receiver sleeps (a bounded look, every millisecond).
    for (int i = 0; i < 10000; ++i) {
        const auto stats = stats_of(address);
        if (stats && stats->sleepers == 1) break;
        std::this_thread::sleep_for(1ms);
    }
    ASSERT_EQ(stats_of(address)->sleepers, 1u);
    ASSERT_TRUE(sender.send(as_bytes(std::string(42, 'w'))).ok());
    const Report got = report.receive();
    EXPECT_EQ(got.first, 1u);
    EXPECT_EQ(got.second, 42u);
    const auto stats = stats_of(address);
    ASSERT_TRUE(stats.has_value() && stats->counters.has_value());
    EXPECT_GE(stats->counters->sleeps, 1u);
    EXPECT_EQ(stats->counters->wakes_sent, 1u);  // the one send that found it asleep
    EXPECT_EQ(stats->counters->messages_received, 1u);
    child.kill(SIGKILL);
}

TEST(ChannelStatsCountersTest, LanesCountEverySendersMessages) {
    const std::string address = "shm:/" + test::unique_name("ipckit-test-counters") + "?senders=4";
    Receiver receiver = Receiver::create(address);
    auto first = sender_that_stays(address, 3);
    auto second = sender_that_stays(address, 2);
    EXPECT_EQ(receive(receiver, 5), 500u);
    const auto stats = stats_of(address);
    ASSERT_TRUE(stats.has_value() && stats->counters.has_value());
    EXPECT_EQ(stats->counters->messages_sent, 5u);
    EXPECT_EQ(stats->counters->messages_received, 5u);
    EXPECT_EQ(stats->counters->bytes_received, 500u);
    EXPECT_EQ(holder(*stats, "lane 0")->messages + holder(*stats, "lane 1")->messages, 5u);
    first.kill(SIGKILL);
    second.kill(SIGKILL);
}

TEST(ChannelStatsCountersTest, ALappedSubscriberCountsWhatItMissed) {
    const std::string address = "topic:/" + test::unique_name("ipckit-test-counters");
    constexpr std::uint64_t kSent = 400;
    ReportPipe joined;
    ReportPipe done;
    int go[2];
    ASSERT_EQ(::pipe(go), 0);
    Sender publisher = Sender::create(address + "?capacity=4096&overflow=drop");
    // The subscriber joins, waits while the publisher laps it many times, then reads to the end.
    auto child = test::spawn([&] {
        Receiver subscriber = Receiver::open(address);
        if (!joined.send({1, 0})) return 2;
        char byte = 0;
        if (::read(go[0], &byte, 1) != 1) return 3;
        std::uint64_t received = 0;
        std::uint64_t missed = 0;
        std::vector<std::byte> message;
        while (received + missed < kSent) {  // to the last record, each delivered or missed
            if (!subscriber.recv(message, Deadline::after(10s)).ok()) return 5;
            ++received;
            missed += subscriber.missed();
        }
        if (!done.send({received, missed})) return 4;
        ::pause();
        return 0;
    });
    (void)joined.receive();
    const std::string message(100, 'd');
    for (std::uint64_t i = 0; i < kSent; ++i)
        ASSERT_TRUE(publisher.send(as_bytes(message)).ok());
    const char byte = 1;
    ASSERT_EQ(::write(go[1], &byte, 1), 1);
    const Report got = done.receive();
    EXPECT_GT(got.second, 0u);  // lapped
    const auto stats = stats_of(address);
    ASSERT_TRUE(stats.has_value() && stats->counters.has_value());
    EXPECT_EQ(stats->counters->messages_sent, kSent);
    EXPECT_EQ(stats->counters->bytes_sent, kSent * 100);
    EXPECT_EQ(stats->counters->messages_received, got.first);
    EXPECT_EQ(stats->counters->bytes_received, got.first * 100);
    EXPECT_EQ(stats->missed, got.second);
    const auto* subscriber = holder(*stats, "subscriber 0");
    ASSERT_NE(subscriber, nullptr);
    EXPECT_EQ(subscriber->missed, got.second);
    EXPECT_EQ(subscriber->messages, got.first);
    child.kill(SIGKILL);
    ::close(go[0]);
    ::close(go[1]);
}

// stats=latency in real processes: the readers' histogram counts exactly the messages consumed,
// on a ring and on lanes (each lane's consumer keeps its own block); without it there is none.
TEST(ChannelStatsCountersTest, TheLatencyHistogramCountsEveryMessageConsumed) {
    for (const std::string options : {"", "?senders=2"}) {
        const std::string shown = "shm:/" + test::unique_name("ipckit-test-latency") + options;
        const std::string address = shown + (options.empty() ? "?" : "&") + "stats=latency";
        Receiver receiver = Receiver::create(address);
        const bool lanes = !options.empty();
        auto first = sender_that_stays(address, lanes ? 6 : 9);
        std::optional<test::Child> second;  // lanes: a second sender, on a lane of its own
        if (lanes) second = sender_that_stays(address, 3);
        EXPECT_EQ(receive(receiver, 7), 700u);
        auto stats = stats_of(shown);
        ASSERT_TRUE(stats.has_value()) << shown;
        ASSERT_EQ(stats->latency_histogram.size(), 64u) << shown;
        std::uint64_t total = 0;
        for (const auto n : stats->latency_histogram)
            total += n;
        EXPECT_EQ(total, 7u) << shown;
        EXPECT_EQ(total, stats->counters->messages_received);
        EXPECT_TRUE(latency_quantile(stats->latency_histogram, 0.5).has_value());
        first.kill(SIGKILL);
        if (second) second->kill(SIGKILL);
    }
    const std::string plain = "shm:/" + test::unique_name("ipckit-test-latency");
    Receiver receiver = Receiver::create(plain);
    const auto stats = stats_of(plain);
    ASSERT_TRUE(stats.has_value());
    EXPECT_TRUE(stats->latency_histogram.empty());
    EXPECT_FALSE(latency_quantile(stats->latency_histogram, 0.99).has_value());
}

TEST(ChannelStatsCountersTest, ATopicSubscribersLatencyHistogramCountsWhatItReceived) {
    const std::string shown = "topic:/" + test::unique_name("ipckit-test-latency");
    Sender publisher = Sender::create(shown + "?stats=latency&subscribers=2&capacity=64KiB");
    EXPECT_EQ(publisher.max_message_size(), Topic::max_message_size(64 * 1024, true));
    EXPECT_EQ(Topic::max_message_size(64 * 1024, true) + 8, Topic::max_message_size(64 * 1024));
    ReportPipe joined;
    ReportPipe done;
    auto child = test::spawn([&] {
        Receiver subscriber = Receiver::open(shown);
        if (!joined.send({1, 0})) return 2;
        std::vector<std::byte> message;
        std::uint64_t bytes = 0;
        for (int i = 0; i < 12; ++i) {
            const auto r = subscriber.recv(message, Deadline::after(10s));
            if (!r.ok()) return 3;
            bytes += r.bytes;
        }
        if (!done.send({12, bytes})) return 4;
        ::pause();
        return 0;
    });
    (void)joined.receive();
    for (int i = 0; i < 20; ++i)
        ASSERT_TRUE(publisher.send(as_bytes(std::string(static_cast<std::size_t>(i), 't'))).ok());
    const Report got = done.receive();
    EXPECT_EQ(got.second, 66u);  // 0 + 1 + … + 11: the payload, never the commit time
    const auto stats = stats_of(shown);
    ASSERT_TRUE(stats.has_value());
    ASSERT_EQ(stats->latency_histogram.size(), 64u) << stats->problem;
    std::uint64_t total = 0;
    for (const auto n : stats->latency_histogram)
        total += n;
    EXPECT_EQ(total, 12u);
    EXPECT_EQ(stats->counters->messages_received, 12u);
    child.kill(SIGKILL);
}

TEST(ChannelStatsTest, AServiceShowsItsServerItsClientsAndItsCalls) {
    const std::string name = "/" + test::unique_name("ipckit-test-stats");
    Server server = Server::create("service:" + name + "?clients=2");
    // A client with one call in flight, which stays: its request stays queued.
    std::optional<Client> client_end;
    auto client = child_that_stays([&] {
        client_end.emplace(Client::open("service:" + name));
        return client_end->start(as_bytes("waiting"), Deadline::after(10s)).ok();
    });
    auto stats = stats_of("service:" + name);
    ASSERT_TRUE(stats.has_value());
    EXPECT_EQ(stats->kind, "service");
    EXPECT_TRUE(stats->problem.empty()) << stats->problem;
    EXPECT_EQ(stats->backlog, detail::region::record_size(8 + 7)) << "one request queued, its id first";
    ASSERT_EQ(stats->holders.size(), 2u);
    EXPECT_EQ(stats->holders[0].role, "server");
    EXPECT_EQ(stats->holders[1].role, "client 0");
    Request request;
    ASSERT_EQ(server.try_recv(request).status, Status::ok);
    stats = stats_of("service:" + name);
    ASSERT_TRUE(stats.has_value());
    EXPECT_EQ(stats->messages, 1u);
    EXPECT_EQ(stats->backlog, 0u);
    // The request rings' counters: one request sent (its 8-byte id first) and one received.
    ASSERT_TRUE(stats->counters.has_value());
    EXPECT_EQ(stats->counters->messages_sent, 1u);
    EXPECT_EQ(stats->counters->bytes_sent, 8u + 7);
    EXPECT_EQ(stats->counters->messages_received, 1u);
    client.kill(SIGKILL);
}

}  // namespace
}  // namespace ipckit
