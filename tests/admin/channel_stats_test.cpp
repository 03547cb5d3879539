// read_channel_stats (src/admin/channel_stats.cpp): a ring's backlog and holders as another
// process left them, a dead holder seen as dead, lanes, and a cursor written wrong on purpose.
#include "ipckit/channel_stats.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <string>

#include "ipckit/channel.hpp"
#include "ipckit/service.hpp"
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
    client.kill(SIGKILL);
}

}  // namespace
}  // namespace ipckit
