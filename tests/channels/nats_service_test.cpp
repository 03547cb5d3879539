// nats:// as a service address (service.hpp): NATS request/reply against real nats-server
// processes on loopback. Calls and replies, several in flight answered out of order, a queue
// group of servers sharing the calls, a call that waits for a server to come, deadlines, the
// NATS server killed mid-call, and the errors of bad input. The server runs on a thread of the
// test: libnats's threads make a fork without exec unsafe; the tool's tests (tool_service_test)
// run servers and clients as processes.
#include <signal.h>

#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/nats.hpp"
#include "ipckit/poll_set.hpp"
#include "ipckit/service.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"
#include "support/text.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

using test::text_of;
using test::what_of;

std::span<const std::byte> bytes_of(std::string_view text) {
    return std::as_bytes(std::span(text.data(), text.size()));
}

// The call's response, or "<status>".
std::string called(Client& client, std::string_view request, Deadline deadline = Deadline::after(20s)) {
    std::vector<std::byte> response;
    const auto r = client.call(bytes_of(request), response, deadline);
    if (!r.ok()) return "<" + std::string(to_string(r.status)) + ">";
    return text_of(response);
}

// `body` throws an Error with `code` whose message names `part`.
void expect_error(const std::function<void()>& body, std::errc code, const std::string& part) {
    try {
        body();
        ADD_FAILURE() << "no error; expected one naming " << part;
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        EXPECT_TRUE(test::contains(e.what(), part)) << e.what();
    }
}

// Answers every request with `answer(request)` until the server closes.
std::thread serve(Server& server, std::function<std::string(const std::string&)> answer) {
    return std::thread([&server, answer = std::move(answer)] {
        Request request;
        while (server.recv(request, Deadline::after(30s)).ok()) {
            const std::string response = answer(text_of(request.message));
            if (!server.reply(request.handle, bytes_of(response)).ok()) return;
        }
    });
}

std::string upper(std::string text) {
    for (auto& c : text)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return text;
}

TEST(NatsServiceTest, ACallGetsTheServersReply) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    auto server = Server::create(nats.url("ipckit.upper"));
    auto answering = serve(server, upper);
    auto client = Client::open(nats.url("ipckit.upper"));
    EXPECT_EQ(called(client, "hello"), "HELLO");
    EXPECT_EQ(called(client, "again"), "AGAIN");
    EXPECT_EQ(called(client, ""), "");
    server.close();
    answering.join();
    const auto counts = server.counts();
    EXPECT_EQ(counts.calls, 3u);
    EXPECT_EQ(counts.replies, 3u);
}

TEST(NatsServiceTest, CallsInFlightAreMatchedToTheirResponsesAnsweredInReverse) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    auto server = Server::create(nats.url("ipckit.reverse"));
    std::thread answering([&] {
        std::vector<Request> requests(3);
        for (auto& request : requests)
            ASSERT_TRUE(server.recv(request, Deadline::after(20s)).ok());
        for (auto it = requests.rbegin(); it != requests.rend(); ++it)
            ASSERT_TRUE(server.reply(it->handle, bytes_of("re:" + text_of(it->message))).ok());
    });
    auto client = Client::open(nats.url("ipckit.reverse?inflight=3"));
    std::vector<CallId> calls;
    for (const char* text : {"one", "two", "three"}) {
        const auto started = client.start(bytes_of(text), Deadline::after(20s));
        ASSERT_TRUE(started.ok());
        calls.push_back(started.call);
    }
    // Waited for in the order sent, while the server answers the last first.
    std::vector<std::byte> response;
    for (const auto& [call, expected] :
         {std::pair{calls[0], "re:one"}, {calls[1], "re:two"}, {calls[2], "re:three"}}) {
        ASSERT_TRUE(client.wait(call, response, Deadline::after(20s)).ok());
        EXPECT_EQ(text_of(response), expected);
    }
    answering.join();
}

TEST(NatsServiceTest, AQueueGroupOfServersSharesTheCalls) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    auto first = Server::create(nats.url("ipckit.shared?group=workers"));
    auto second = Server::create(nats.url("ipckit.shared?group=workers"));
    auto a = serve(first, [](const std::string&) { return std::string("first"); });
    auto b = serve(second, [](const std::string&) { return std::string("second"); });
    auto client = Client::open(nats.url("ipckit.shared"));
    std::multiset<std::string> answered_by;
    // NATS picks a member at random for each call: 40 calls all to one is a 1 in 2^39 chance.
    for (int i = 0; i < 40; ++i)
        answered_by.insert(called(client, "who"));
    EXPECT_EQ(answered_by.count("first") + answered_by.count("second"), 40u);
    EXPECT_GT(answered_by.count("first"), 0u);
    EXPECT_GT(answered_by.count("second"), 0u);
    first.close();
    second.close();
    a.join();
    b.join();
}

TEST(NatsServiceTest, APollSetWakesForARequestAndForAResponse) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    auto client = Client::open(nats.url("ipckit.polled"));
    // Started before the server exists: a PollSet's caller, looking without waiting, asks again.
    const auto started = client.start(bytes_of("q"), Deadline::after(20s));
    ASSERT_TRUE(started.ok());
    auto server = Server::create(nats.url("ipckit.polled"));
    PollSet set;
    const std::size_t s = set.add(server);
    const std::size_t c = set.add(client);
    std::vector<std::byte> response;
    Request request;
    for (auto until = Deadline::after(20s); !until.expired();) {
        EXPECT_EQ(client.wait(started.call, response, Deadline::immediate()).status, Status::would_block);
        const auto ready = set.wait(Deadline::after(50ms));
        if (std::find(ready.begin(), ready.end(), s) != ready.end()) break;
    }
    ASSERT_TRUE(server.try_recv(request).ok());
    ASSERT_TRUE(server.reply(request.handle, bytes_of("a")).ok());
    EXPECT_EQ(set.wait(Deadline::after(20s)), std::vector<std::size_t>{c});
    ASSERT_TRUE(client.wait(started.call, response, Deadline::immediate()).ok());
    EXPECT_EQ(text_of(response), "a");
}

TEST(NatsServiceTest, ACallWithNoServerTimesOut) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    auto client = Client::open(nats.url("ipckit.nobody"));
    EXPECT_EQ(called(client, "anyone?", Deadline::after(300ms)), "<timed out>");
    // The call ended: waiting for it again is an error, not a hang.
    const auto started = client.start(bytes_of("again"), Deadline::after(300ms));
    ASSERT_TRUE(started.ok());
    std::vector<std::byte> response;
    EXPECT_EQ(client.wait(started.call, response, Deadline::after(300ms)).status, Status::timed_out);
    EXPECT_NE(what_of([&] {
                  (void)client.wait(started.call, response, Deadline::after(300ms));
              }).find("no such call in flight"),
              std::string::npos);
}

TEST(NatsServiceTest, ACallWaitsForAServerThatComesBeforeItsDeadline) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    auto client = Client::open(nats.url("ipckit.later"));
    // Sent while no one listens: NATS answers "no responders", and the client asks again.
    const auto started = client.start(bytes_of("late"), Deadline::after(30s));
    ASSERT_TRUE(started.ok());
    std::vector<std::byte> response;
    EXPECT_EQ(client.wait(started.call, response, Deadline::immediate()).status, Status::would_block);
    std::this_thread::sleep_for(200ms);  // so the first request certainly found no one
    auto server = Server::create(nats.url("ipckit.later"));
    auto answering = serve(server, upper);
    ASSERT_TRUE(client.wait(started.call, response, Deadline::after(30s)).ok());
    EXPECT_EQ(text_of(response), "LATE");
    server.close();
    answering.join();
}

TEST(NatsServiceTest, ALateAnswerToACallThatTimedOutIsDropped) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    auto server = Server::create(nats.url("ipckit.late"));
    std::thread answering([&] {
        Request first, second;
        ASSERT_TRUE(server.recv(first, Deadline::after(20s)).ok());
        ASSERT_TRUE(server.recv(second, Deadline::after(20s)).ok());
        ASSERT_TRUE(server.reply(first.handle, bytes_of("answer to first")).ok());
        ASSERT_TRUE(server.reply(second.handle, bytes_of("answer to " + text_of(second.message))).ok());
    });
    auto client = Client::open(nats.url("ipckit.late"));
    EXPECT_EQ(called(client, "first", Deadline::after(300ms)), "<timed out>");
    EXPECT_EQ(called(client, "second"), "answer to second");
    answering.join();
}

// A call the server has received when the NATS server is killed: it ends closed, long before
// its deadline.
void kill_nats_mid_call(test::NatsServer& nats, Server& server, Client& client) {
    const auto started = client.start(bytes_of("in flight"), Deadline::after(60s));
    ASSERT_TRUE(started.ok());
    Request request;
    ASSERT_TRUE(server.recv(request, Deadline::after(20s)).ok());
    nats.kill(SIGKILL);
    std::vector<std::byte> response;
    EXPECT_EQ(client.wait(started.call, response, Deadline::after(60s)).status, Status::closed);
}

TEST(NatsServiceTest, TheNatsServerKilledMidCallEndsTheCallClosedNotAtItsDeadline) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    auto server = Server::create(nats.url("ipckit.killed?reconnect=0"));
    auto client = Client::open(nats.url("ipckit.killed?reconnect=0"));
    kill_nats_mid_call(nats, server, client);
    // Without reconnection the client is closed for good, and so is the server.
    EXPECT_EQ(called(client, "after", Deadline::after(60s)), "<closed>");
    Request request;
    EXPECT_EQ(server.recv(request, Deadline::after(60s)).status, Status::closed);
}

TEST(NatsServiceTest, ADisconnectionEndsTheCallsInFlightClosedAndLaterCallsGoThrough) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    auto server = Server::create(nats.url("ipckit.bounce"));
    auto client = Client::open(nats.url("ipckit.bounce"));
    kill_nats_mid_call(nats, server, client);
    nats.start();  // the same port: both ends reconnect
    auto answering = serve(server, upper);
    EXPECT_EQ(called(client, "back", Deadline::after(60s)), "BACK");
    server.close();
    answering.join();
}

TEST(NatsServiceTest, AReplyToAnUnknownOrAnsweredRequestIsRefused) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    auto server = Server::create(nats.url("ipckit.stale"));
    EXPECT_NE(what_of([&] {
                  (void)server.reply(ReplyHandle{0, 0, 42}, bytes_of("x"));
              }).find("stale or unknown request id"),
              std::string::npos);
    auto client = Client::open(nats.url("ipckit.stale"));
    const auto started = client.start(bytes_of("q"), Deadline::after(20s));
    ASSERT_TRUE(started.ok());
    Request request;
    ASSERT_TRUE(server.recv(request, Deadline::after(20s)).ok());
    ASSERT_TRUE(server.reply(request.handle, bytes_of("once")).ok());
    expect_error([&] { (void)server.reply(request.handle, bytes_of("twice")); }, std::errc::invalid_argument,
                 "ipckit.stale");
    std::vector<std::byte> response;
    ASSERT_TRUE(client.wait(started.call, response, Deadline::after(20s)).ok());
    EXPECT_EQ(text_of(response), "once");
}

TEST(NatsServiceTest, AHandleFromAnotherServerIsStale) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    // Without a queue group both servers get each request, and number it 1.
    auto first = Server::create(nats.url("ipckit.two"));
    auto second = Server::create(nats.url("ipckit.two"));
    auto client = Client::open(nats.url("ipckit.two"));
    const auto started = client.start(bytes_of("q"), Deadline::after(20s));
    ASSERT_TRUE(started.ok());
    Request to_first, to_second;
    ASSERT_TRUE(first.recv(to_first, Deadline::after(20s)).ok());
    ASSERT_TRUE(second.recv(to_second, Deadline::after(20s)).ok());
    EXPECT_EQ(to_first.handle.id, to_second.handle.id);
    EXPECT_NE(what_of([&] {
                  (void)first.reply(to_second.handle, bytes_of("x"));
              }).find("stale or unknown request id"),
              std::string::npos);
    ASSERT_TRUE(first.reply(to_first.handle, bytes_of("from first")).ok());
    std::vector<std::byte> response;
    ASSERT_TRUE(client.wait(started.call, response, Deadline::after(20s)).ok());
    EXPECT_EQ(text_of(response), "from first");
}

TEST(NatsServiceTest, OversizedRequestsAndResponsesAreErrorsNamingTheLimit) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    auto server = Server::create(nats.url("ipckit.big?max=100"));
    auto client = Client::open(nats.url("ipckit.big?max=100"));
    EXPECT_EQ(client.max_message_size(), 100u);
    const std::string big(101, 'x');
    expect_error([&] { (void)client.start(bytes_of(big), Deadline::after(1s)); }, std::errc::message_size,
                 "limit of 100 B");
    EXPECT_EQ(called(client, std::string(100, 'y'), Deadline::after(100ms)), "<timed out>");
    Request request;
    ASSERT_TRUE(server.recv(request, Deadline::after(20s)).ok());
    EXPECT_EQ(request.message.size(), 100u);
    EXPECT_NE(what_of([&] { (void)server.reply(request.handle, bytes_of(big)); }).find("limit of 100 B"),
              std::string::npos);
    // The refused reply did not use up the request: it can still be answered.
    EXPECT_TRUE(server.reply(request.handle, bytes_of("fits")).ok());
}

TEST(NatsServiceTest, MoreCallsInFlightThanInflightIsAnErrorNamingTheLimit) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    auto client = Client::open(nats.url("ipckit.busy?inflight=2"));
    ASSERT_TRUE(client.start(bytes_of("1"), Deadline::after(1s)).ok());
    ASSERT_TRUE(client.start(bytes_of("2"), Deadline::after(1s)).ok());
    expect_error([&] { (void)client.start(bytes_of("3"), Deadline::after(1s)); },
                 std::errc::resource_unavailable_try_again, "inflight=2");
}

TEST(NatsServiceTest, BadServiceAddressesAreRefusedByName) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    EXPECT_NE(what_of([&] { (void)Server::create(nats.url("ipckit.*")); }).find("has a wildcard"),
              std::string::npos);
    EXPECT_NE(what_of([&] {
                  (void)Client::open(nats.url("ipckit.s", "stream=S"));
              }).find("stream= is for channels"),
              std::string::npos);
    EXPECT_NE(what_of([&] { (void)Client::open(nats.url("ipckit.s", "clients=4")); }).find("clients"),
              std::string::npos);
}

}  // namespace
}  // namespace ipckit
