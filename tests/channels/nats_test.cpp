// The nats:// transport against real nats-server processes on loopback: delivery, fan-out,
// queue groups, limits from the server, the errors of bad input, and the server killed and
// restarted mid-stream (JetStream loses nothing; core NATS counts what it lost).
#include "ipckit/nats.hpp"

#include <signal.h>

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/address.hpp"
#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/poll_set.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"
#include "support/text.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

const auto* const registry = ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using test::contains;
using test::text_of;
using test::what_of;

std::string received(Receiver& rx, Deadline deadline = Deadline::after(20s)) {
    std::vector<std::byte> message;
    const auto r = rx.recv(message, deadline);
    if (!r.ok()) return "<" + std::string(to_string(r.status)) + ">";
    return text_of(message);
}

TEST(NatsTest, ASubscriberGetsEveryMessageInOrder) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer server;
    auto rx = Receiver::open(server.url("ipckit.order"));
    auto tx = Sender::open(server.url("ipckit.order"));
    for (int i = 1; i <= 500; ++i)
        ASSERT_TRUE(tx.send(as_bytes(std::to_string(i)), Deadline::after(10s)).ok());
    for (int i = 1; i <= 500; ++i)
        ASSERT_EQ(received(rx), std::to_string(i));
    std::vector<std::byte> none;
    EXPECT_EQ(rx.try_recv(none).status, Status::would_block);
    EXPECT_EQ(rx.recv(none, Deadline::after(50ms)).status, Status::timed_out);
    const auto report = nats_report(rx);
    EXPECT_TRUE(report.is_nats);
    EXPECT_EQ(report.lost, 0u);
    EXPECT_EQ(report.disconnects, 0u);
    EXPECT_EQ(rx.native_handle(), -1);
}

TEST(NatsTest, APollSetWaitsOnCoreAndJetStreamReceivers) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer server(test::jetstream_server());
    auto core = Receiver::open(server.url("ipckit.poll.core"));
    auto stored = Receiver::open(server.url("ipckit.poll.stored", "stream=POLL"));
    PollSet set;
    set.add(core);
    set.add(stored);
    EXPECT_TRUE(set.wait(Deadline::after(50ms)).empty());
    auto to_stored = Sender::open(server.url("ipckit.poll.stored", "stream=POLL"));
    ASSERT_TRUE(to_stored.send(as_bytes("stored")).ok());
    EXPECT_EQ(set.wait(Deadline::after(20s)), std::vector<std::size_t>{1});
    EXPECT_EQ(received(stored), "stored");
    auto to_core = Sender::open(server.url("ipckit.poll.core"));
    ASSERT_TRUE(to_core.send(as_bytes("core")).ok());
    EXPECT_EQ(set.wait(Deadline::after(20s)), std::vector<std::size_t>{0});
    EXPECT_EQ(received(core), "core");
}

TEST(NatsTest, ReportOfAChannelThatIsNotNatsIsEmpty) {
    test::TempDir dir;
    auto rx = Receiver::create("fifo:" + dir.file("f"));
    EXPECT_FALSE(nats_report(rx).is_nats);
    EXPECT_FALSE(nats_hand_back_last(rx));
}

TEST(NatsTest, EveryReceiverOnASubjectGetsEveryMessage) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer server;
    std::vector<Receiver> receivers;
    for (int i = 0; i < 3; ++i)
        receivers.push_back(Receiver::open(server.url("ipckit.fan")));
    auto tx = Sender::open(server.url("ipckit.fan"));
    for (int i = 0; i < 50; ++i)
        ASSERT_TRUE(tx.send(as_bytes("m" + std::to_string(i))).ok());
    for (auto& rx : receivers) {
        for (int i = 0; i < 50; ++i)
            ASSERT_EQ(received(rx), "m" + std::to_string(i));
    }
}

TEST(NatsTest, AQueueGroupGivesEachMessageToOneMember) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer server;
    auto a = Receiver::open(server.url("ipckit.work", "group=workers"));
    auto b = Receiver::open(server.url("ipckit.work", "group=workers"));
    auto tx = Sender::open(server.url("ipckit.work"));
    constexpr int count = 200;
    for (int i = 0; i < count; ++i)
        ASSERT_TRUE(tx.send(as_bytes(std::to_string(i))).ok());
    std::set<std::string> seen;
    std::size_t from_a = 0, from_b = 0;
    std::vector<std::byte> message;
    const auto until = Deadline::after(20s);
    while (seen.size() < count && !until.expired()) {
        for (auto* rx : {&a, &b}) {
            while (rx->recv(message, Deadline::after(5ms)).ok()) {
                EXPECT_TRUE(seen.insert(text_of(message)).second) << "twice: " << text_of(message);
                (rx == &a ? from_a : from_b) += 1;
            }
        }
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(count));
    EXPECT_EQ(from_a + from_b, static_cast<std::size_t>(count));
    // The server spreads them at random: one member getting none of 200 is 2^-199.
    EXPECT_GT(from_a, 0u);
    EXPECT_GT(from_b, 0u);
    EXPECT_EQ(nats_report(a).lost, 0u) << "gaps mean nothing in a group";
}

TEST(NatsTest, AWildcardReceiverGetsEveryMatchingSubject) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer server;
    auto rx = Receiver::open(server.url("cam.*"));
    auto front = Sender::open(server.url("cam.front"));
    auto back = Sender::open(server.url("cam.back"));
    ASSERT_TRUE(front.send(as_bytes("front")).ok());
    ASSERT_TRUE(back.send(as_bytes("back")).ok());
    std::set<std::string> got{received(rx), received(rx)};
    EXPECT_EQ(got, (std::set<std::string>{"front", "back"}));
    EXPECT_TRUE(contains(what_of([&] { (void)Sender::open(server.url("cam.*")); }), "wildcard"));
}

TEST(NatsTest, TheLimitIsTheServersMaxPayload) {
    IPCKIT_REQUIRE_NATS();
    test::TempDir dir;
    const std::string config = dir.file("small.conf");
    std::ofstream(config) << "max_payload: 4096\n";
    test::NatsServer server(test::server_with({"-c", config}));
    auto rx = Receiver::open(server.url("ipckit.big"));
    auto tx = Sender::open(server.url("ipckit.big"));
    ASSERT_EQ(tx.max_message_size(), 4096u - 128u);
    EXPECT_EQ(rx.max_message_size(), 4096u - 128u);
    const std::string fits(tx.max_message_size(), 'f');
    ASSERT_TRUE(tx.send(as_bytes(fits)).ok());
    EXPECT_EQ(received(rx), fits);
    const std::string over(tx.max_message_size() + 1, 'o');
    const std::string what = what_of([&] { (void)tx.send(as_bytes(over)); });
    EXPECT_TRUE(contains(what, server.url("ipckit.big"))) << what;
    EXPECT_TRUE(contains(what, "max_payload 4096")) << what;
    // The channel goes on after the refusal.
    ASSERT_TRUE(tx.send(as_bytes("after")).ok());
    EXPECT_EQ(received(rx), "after");
    // A message that does not fit the caller's buffer stays queued for a bigger one.
    ASSERT_TRUE(tx.send(as_bytes("twelve bytes")).ok());
    std::array<std::byte, 4> small{};
    EXPECT_TRUE(contains(what_of([&] { (void)rx.recv(small, Deadline::after(10s)); }), "does not fit"));
    EXPECT_EQ(received(rx), "twelve bytes");
}

TEST(NatsTest, NoServerIsAOneLineErrorNamingTheAddressAndNoHang) {
    IPCKIT_REQUIRE_NATS();
    const std::string address = "nats://127.0.0.1:" + std::to_string(test::free_tcp_port()) + "/ipckit.none";
    for (const auto& what :
         {what_of([&] { (void)Sender::open(address); }), what_of([&] { (void)Receiver::open(address); }),
          what_of([&] { (void)Sender::open(address, Deadline::after(300ms)); })}) {
        EXPECT_TRUE(contains(what, "nats \"" + address + "\"")) << what;
        EXPECT_TRUE(contains(what, "cannot connect")) << what;
        EXPECT_FALSE(contains(what, "\n")) << what;
    }
    try {
        (void)Sender::open(address);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::connection_refused);
    }
}

TEST(NatsTest, MalformedAddressesAreOneLineErrors) {
    for (const std::string bad :
         {"nats://host", "nats://host:4222/", "nats://host:0/x", "nats://:4222/x", "nats://host:4222/a..b",
          "nats://host:4222/a b", "nats://host:4222/a.>.b", "nats://host:4222/x?group=a.b",
          "nats://host:4222/x?mode=0600", "nats://host:4222/x?reconnect=-1", "tcp://host:1?group=g"}) {
        const std::string what = what_of([&] { (void)parse_address(bad); });
        EXPECT_TRUE(contains(what, "address \"" + bad + "\"")) << bad << " -> " << what;
    }
    const auto a = parse_address("nats://[::1]/cam.front?group=g&stream=S&durable=D&reconnect=3");
    EXPECT_EQ(a.transport, Transport::nats);
    EXPECT_EQ(a.target, "::1");
    EXPECT_EQ(a.nats.port, 4222);
    EXPECT_EQ(a.nats.subject, "cam.front");
    EXPECT_EQ(a.nats.group, "g");
    EXPECT_EQ(a.nats.stream, "S");
    EXPECT_EQ(a.nats.durable, "D");
    EXPECT_EQ(a.nats.reconnect, 3);
}

TEST(NatsTest, AWrongTokenIsRefusedAndNeverPrinted) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer server(test::server_with({"--auth", "right-token-1234"}));
    const std::string what =
        what_of([&] { (void)Sender::open(server.url("ipckit.auth", "token=wrong-token-5678")); });
    EXPECT_TRUE(contains(what, server.url("ipckit.auth", "token=***"))) << what;
    EXPECT_FALSE(contains(what, "wrong-token-5678")) << what;
    EXPECT_TRUE(contains(what, "uthorization")) << what;
    EXPECT_TRUE(contains(what_of([&] { (void)Sender::open(server.url("ipckit.auth")); }), "uthorization"));
    // The right one works, and its text never shows the token either.
    auto rx = Receiver::open(server.url("ipckit.auth", "token=right-token-1234"));
    auto tx = Sender::open(server.url("ipckit.auth", "token=right-token-1234"));
    EXPECT_EQ(tx.address(), server.url("ipckit.auth", "token=***"));
    ASSERT_TRUE(tx.send(as_bytes("in")).ok());
    EXPECT_EQ(received(rx), "in");
}

TEST(NatsTest, AMissingCredentialsFileIsAnErrorNamingTheAddress) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer server;
    const std::string address = server.url("ipckit.creds", "creds=/nonexistent/ipckit.creds");
    const std::string what = what_of([&] { (void)Sender::open(address); });
    EXPECT_TRUE(contains(what, "nats \"" + address + "\"")) << what;
}

TEST(NatsTest, JetStreamKeepsMessagesForAReceiverThatIsNotThereYet) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer server(test::jetstream_server());
    const std::string address = server.url("ipckit.stored", "stream=STORED");
    {
        auto tx = Sender::open(address);
        for (int i = 1; i <= 20; ++i)
            ASSERT_TRUE(tx.send(as_bytes(std::to_string(i)), Deadline::after(10s)).ok());
    }
    {
        auto rx = Receiver::open(address);
        for (int i = 1; i <= 10; ++i)
            ASSERT_EQ(received(rx), std::to_string(i));
    }  // acknowledged the ten it took
    auto rx = Receiver::open(address);
    for (int i = 11; i <= 20; ++i)
        ASSERT_EQ(received(rx), std::to_string(i));
    std::vector<std::byte> none;
    EXPECT_EQ(rx.recv(none, Deadline::after(200ms)).status, Status::timed_out);
}

TEST(NatsTest, JetStreamHandsBackWhatWasNotPassedOn) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer server(test::jetstream_server());
    const std::string address = server.url("ipckit.back", "stream=BACK");
    auto tx = Sender::open(address);
    ASSERT_TRUE(tx.send(as_bytes("keep me")).ok());
    {
        auto rx = Receiver::open(address);
        ASSERT_EQ(received(rx), "keep me");
        EXPECT_TRUE(nats_hand_back_last(rx));
    }
    auto rx = Receiver::open(address);
    EXPECT_EQ(received(rx), "keep me");
    EXPECT_EQ(nats_report(rx).redelivered, 1u);
}

// Sends "1", "2", ... from one thread while the server is killed and restarted under it.
TEST(NatsFaultTest, JetStreamLosesNothingWhenTheServerIsKilledMidStream) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer server(test::jetstream_server());
    const std::string address = server.url("ipckit.survive", "stream=SURVIVE");
    auto tx = Sender::open(address);
    auto rx = Receiver::open(address);
    constexpr int count = 300;
    std::set<int> got;
    std::vector<std::byte> message;
    for (int i = 1; i <= count; ++i) {
        if (i == 100) {
            server.kill(SIGKILL);
            server.start();
        }
        ASSERT_TRUE(tx.send(as_bytes(std::to_string(i)), Deadline::after(60s)).ok()) << i;
        if (i % 3 == 0 && rx.recv(message, Deadline::after(10ms)).ok())
            got.insert(std::stoi(text_of(message)));
    }
    while (static_cast<int>(got.size()) < count && rx.recv(message, Deadline::after(30s)).ok())
        got.insert(std::stoi(text_of(message)));
    EXPECT_EQ(static_cast<int>(got.size()), count);
    EXPECT_EQ(*got.begin(), 1);
    EXPECT_EQ(*got.rbegin(), count);
    const auto sent = nats_report(tx);
    EXPECT_GE(sent.disconnects, 1u);
    EXPECT_GE(sent.reconnects, 1u);
    EXPECT_GE(nats_report(rx).disconnects, 1u);
}

TEST(NatsFaultTest, CoreNatsCountsWhatTheServerRestartLost) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer server;
    const std::string address = server.url("ipckit.lossy");
    auto tx = Sender::open(address);
    auto rx = Receiver::open(address);
    std::vector<int> got;
    std::vector<std::byte> message;
    const auto drain = [&](Deadline deadline) {
        while (rx.recv(message, deadline).ok())
            got.push_back(std::stoi(text_of(message)));
    };
    int sent = 0;
    for (; sent < 100;)
        ASSERT_TRUE(tx.send(as_bytes(std::to_string(++sent))).ok());
    // Mid-stream: the receiver has been getting them.
    while (got.size() < 100 && rx.recv(message, Deadline::after(10s)).ok())
        got.push_back(std::stoi(text_of(message)));
    ASSERT_EQ(got.size(), 100u);
    server.kill(SIGKILL);
    for (int i = 0; i < 100; ++i)  // while the server is gone: held, then sent or lost
        ASSERT_TRUE(tx.send(as_bytes(std::to_string(++sent))).ok());
    server.start();
    // Until both ends are back, and one message has come through after the restart, the loss
    // is not known yet.
    const auto until = Deadline::after(30s);
    while (!until.expired() && (got.empty() || got.back() <= 200)) {
        ASSERT_TRUE(tx.send(as_bytes(std::to_string(++sent))).ok());
        drain(Deadline::after(20ms));
    }
    drain(Deadline::after(200ms));
    ASSERT_FALSE(got.empty());
    ASSERT_GT(got.back(), 200) << "nothing came through after the restart";
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
    const auto report = nats_report(rx);
    EXPECT_GE(report.disconnects, 1u);
    EXPECT_GE(report.reconnects, 1u);
    EXPECT_GE(nats_report(tx).sent_disconnected, 1u);
    // Every number up to the last one received either came or is counted as lost.
    EXPECT_EQ(got.size() + report.lost, static_cast<std::size_t>(got.back()))
        << "received " << got.size() << ", counted lost " << report.lost << ", last " << got.back()
        << ", the 101st received " << (got.size() > 100 ? got[100] : -1);
    std::printf("core NATS across a server restart: %zu received, %llu counted lost, of %d\n", got.size(),
                static_cast<unsigned long long>(report.lost), got.back());
}

TEST(NatsFaultTest, AServerThatNeverComesBackClosesTheChannel) {
    IPCKIT_REQUIRE_NATS();
    auto server = std::make_unique<test::NatsServer>();
    const std::string address = server->url("ipckit.gone", "reconnect=3");
    auto rx = Receiver::open(address);
    auto tx = Sender::open(address);
    server.reset();
    std::vector<std::byte> message;
    const auto until = Deadline::after(30s);
    Status status = Status::ok;
    while (!until.expired() && status != Status::closed)
        status = rx.recv(message, Deadline::after(100ms)).status;
    EXPECT_EQ(status, Status::closed);
    const auto report = nats_report(rx);
    EXPECT_TRUE(report.gave_up);
    EXPECT_TRUE(contains(report.last_event, "gave up")) << report.last_event;
    const auto tx_until = Deadline::after(30s);
    status = Status::ok;
    while (!tx_until.expired() && status != Status::closed)
        status = tx.send(as_bytes("x"), Deadline::after(100ms)).status;
    EXPECT_EQ(status, Status::closed);
    EXPECT_TRUE(nats_report(tx).gave_up);
}

}  // namespace
}  // namespace ipckit
