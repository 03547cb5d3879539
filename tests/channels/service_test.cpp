// Services (ipckit/service.hpp) over service:/NAME and service:@NAME, between real processes:
// a round trip, many clients, calls in flight answered out of order, a call with no server,
// refused replies (stale, unknown), oversized messages, regions that are not services, and
// zero-copy calls. The crash cases are in tests/faults/faults_service_test.cpp.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/objects.hpp"
#include "ipckit/poll_set.hpp"
#include "ipckit/posix_shm.hpp"
#include "ipckit/service.hpp"
#include "rings/service_region.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;

std::string text(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return s;
}

bool in_dev_shm(const std::string& address) {
    const auto slash = address.find(":/");
    if (slash == std::string::npos) return false;
    return std::filesystem::exists("/dev/shm/" + address.substr(slash + 2, address.find('?') - slash - 2));
}

// A server in a child that answers `count` requests with their upper case, then closes.
test::Child serve_upper(const std::string& address, int count) {
    return test::spawn([address, count] {
        Server server = Server::create(address);
        Request request;
        for (int i = 0; i < count; ++i) {
            if (!server.recv(request, Deadline::after(30s)).ok()) return 2;
            const std::string answer = upper(text(request.message));
            if (!server.reply(request.handle, as_bytes(answer)).ok()) return 3;
        }
        return 0;
    });
}

class ServiceTest : public ::testing::TestWithParam<std::string> {
protected:
    // service:/NAME or service:@NAME, with `options` after '?'.
    [[nodiscard]] std::string address(const std::string& options = "") const {
        return "service:" + GetParam() + test::unique_name("ipckit-svc") +
               (options.empty() ? "" : "?" + options);
    }
};

TEST_P(ServiceTest, ACallGetsItsAnswerFromAServerInAnotherProcess) {
    const std::string at = address();
    auto server = serve_upper(at, 3);
    Client client = Client::open(at);  // the server may not be there yet: the call waits for it
    std::vector<std::byte> response;
    for (const char* word : {"hello", "", "service"}) {
        const IoResult r = client.call(as_bytes(word), response, Deadline::after(30s));
        ASSERT_EQ(r.status, Status::ok) << word;
        EXPECT_EQ(text(response), upper(word));
        EXPECT_EQ(r.bytes, std::strlen(word));
    }
    EXPECT_EQ(server.wait(), 0);
    EXPECT_FALSE(in_dev_shm(at)) << "the server removes its region when it closes";
}

TEST_P(ServiceTest, ManyClientsInTheirOwnProcessesEachGetTheirOwnAnswers) {
    constexpr int kClients = 4;
    constexpr int kCalls = 50;
    const std::string at = address("clients=4");
    auto server = serve_upper(at, kClients * kCalls);
    std::vector<test::Child> clients;
    for (int c = 0; c < kClients; ++c) {
        clients.push_back(test::spawn([at, c] {
            Client client = Client::open(at);
            std::vector<std::byte> response;
            for (int i = 0; i < kCalls; ++i) {
                const std::string ask = "client " + std::to_string(c) + " call " + std::to_string(i);
                if (!client.call(as_bytes(ask), response, Deadline::after(30s)).ok()) return 2;
                if (text(response) != upper(ask)) return 3;
            }
            return 0;
        }));
    }
    for (auto& child : clients)
        EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(server.wait(), 0);
}

TEST_P(ServiceTest, CallsInFlightAnsweredOutOfOrderEachGetTheirOwnAnswer) {
    const std::string at = address("inflight=3");
    auto child = test::spawn([at] {
        Server server = Server::create(at);
        std::vector<Request> requests(3);
        for (auto& request : requests)
            if (!server.recv(request, Deadline::after(30s)).ok()) return 2;
        for (int i = 2; i >= 0; --i) {  // the last first
            const std::string answer = upper(text(requests[static_cast<std::size_t>(i)].message));
            if (!server.reply(requests[static_cast<std::size_t>(i)].handle, as_bytes(answer)).ok()) return 3;
        }
        return 0;
    });
    Client client = Client::open(at);
    std::vector<CallId> calls;
    for (const char* word : {"one", "two", "three"}) {
        const auto started = client.start(as_bytes(word), Deadline::after(30s));
        ASSERT_TRUE(started.ok());
        calls.push_back(started.call);
    }
    // A fourth is more than inflight=3 allows, and says so.
    try {
        (void)client.start(as_bytes("four"), Deadline::after(30s));
        ADD_FAILURE() << "a fourth call in flight was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::resource_unavailable_try_again);
        EXPECT_NE(std::string(e.what()).find("inflight=3"), std::string::npos) << e.what();
    }
    std::vector<std::byte> response;
    for (std::size_t i = 0; i < calls.size(); ++i) {  // waited for in the order sent
        ASSERT_EQ(client.wait(calls[i], response, Deadline::after(30s)).status, Status::ok);
        EXPECT_EQ(text(response), upper(std::vector<std::string>{"one", "two", "three"}[i]));
    }
    EXPECT_EQ(child.wait(), 0);
}

TEST_P(ServiceTest, ACallWithNoServerTimesOutAndCreatesNothing) {
    const std::string at = address();
    Client client = Client::open(at);
    std::vector<std::byte> response;
    EXPECT_EQ(client.call(as_bytes("anyone?"), response, Deadline::after(200ms)).status, Status::timed_out);
    EXPECT_EQ(client.call(as_bytes("anyone?"), response, Deadline::immediate()).status, Status::timed_out);
    EXPECT_FALSE(in_dev_shm(at));
}

TEST_P(ServiceTest, AReplyToAnAnsweredOrUnknownIdIsRefusedAndTheRightOneStillGoes) {
    const std::string at = address();
    Server server = Server::create(at);
    auto child = test::spawn([at] {
        Client client = Client::open(at);
        std::vector<std::byte> response;
        if (!client.call(as_bytes("first"), response, Deadline::after(30s)).ok()) return 2;
        return text(response) == "FIRST" ? 0 : 3;
    });
    Request request;
    ASSERT_EQ(server.recv(request, Deadline::after(30s)).status, Status::ok);
    ReplyHandle unknown = request.handle;
    unknown.id += 12345;
    for (const ReplyHandle& bad : {unknown, ReplyHandle{999, request.handle.epoch, request.handle.id}}) {
        try {
            (void)server.reply(bad, as_bytes("never"));
            ADD_FAILURE() << "a reply to an unknown id was accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::invalid_argument);
            EXPECT_NE(std::string(e.what()).find("stale or unknown request id"), std::string::npos)
                << e.what();
        }
    }
    ASSERT_EQ(server.reply(request.handle, as_bytes("FIRST")).status, Status::ok);
    try {
        (void)server.reply(request.handle, as_bytes("again"));
        ADD_FAILURE() << "a second reply to one request was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("stale or unknown request id"), std::string::npos) << e.what();
    }
    EXPECT_EQ(child.wait(), 0);
    const ServerCounts counts = server.counts();
    EXPECT_EQ(counts.calls, 1u);
    EXPECT_EQ(counts.replies, 1u);
    EXPECT_EQ(counts.replies_dropped, 0u);
}

TEST_P(ServiceTest, OversizedRequestsAndResponsesAreErrorsNamingTheLimitAndLoseNothing) {
    const std::string at = address("max=1000");
    Server server = Server::create(at);
    EXPECT_GE(server.max_message_size(), 1000u);
    const std::size_t limit = server.max_message_size();
    const std::string limit_text = std::to_string(limit);
    Client client = Client::open(at);
    const std::vector<std::byte> big(limit + 1);
    try {
        (void)client.start(big, Deadline::after(30s));
        ADD_FAILURE() << "an oversized request was sent";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::message_size);
        EXPECT_NE(std::string(e.what()).find(limit_text), std::string::npos) << e.what();
    }
    const std::vector<std::byte> full(limit, std::byte{7});
    const auto started = client.start(full, Deadline::after(30s));
    ASSERT_TRUE(started.ok());
    Request request;
    ASSERT_EQ(server.recv(request, Deadline::after(30s)).status, Status::ok);
    EXPECT_EQ(request.message, full);
    try {
        (void)server.reply(request.handle, big);
        ADD_FAILURE() << "an oversized response was sent";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::message_size);
        EXPECT_NE(std::string(e.what()).find(limit_text), std::string::npos) << e.what();
    }
    // The handle is still good for a reply that fits.
    ASSERT_EQ(server.reply(request.handle, full).status, Status::ok);
    std::vector<std::byte> response;
    ASSERT_EQ(client.wait(started.call, response, Deadline::after(30s)).status, Status::ok);
    EXPECT_EQ(response, full);
}

TEST_P(ServiceTest, ZeroCopyCallsAndRepliesCarryTheirBytesInPlace) {
    const std::string at = address();
    auto child = test::spawn([at] {
        Server server = Server::create(at);
        Request request;
        for (int i = 0; i < 2; ++i) {
            if (!server.recv(request, Deadline::after(30s)).ok()) return 2;
            const std::string answer = upper(text(request.message));
            const Loan loan = server.loan_reply(request.handle, answer.size() + 10);
            if (!loan.ok()) return 3;
            std::memcpy(loan.buffer.data(), answer.data(), answer.size());
            server.commit_reply(request.handle, answer.size());
        }
        return 0;
    });
    Client client = Client::open(at);
    for (const std::string word : {"zero", "copy"}) {
        const Loan loan = client.loan(64, Deadline::after(30s));
        ASSERT_TRUE(loan.ok());
        std::memcpy(loan.buffer.data(), word.data(), word.size());
        const auto started = client.commit_call(word.size());
        ASSERT_TRUE(started.ok());
        const RecordView view = client.read(started.call, Deadline::after(30s));
        ASSERT_TRUE(view.ok());
        EXPECT_EQ(text(view.message), upper(word));
        client.release();
    }
    EXPECT_EQ(child.wait(), 0);
}

TEST_P(ServiceTest, ASecondLiveServerIsRefusedNamingThePid) {
    const std::string at = address();
    Server server = Server::create(at);
    auto second = test::spawn([at] {
        try {
            (void)Server::create(at);
        } catch (const Error& e) {
            const bool names_pid =
                std::string(e.what()).find(std::to_string(::getppid())) != std::string::npos;
            return e.code() == std::errc::device_or_resource_busy && names_pid ? 0 : 2;
        }
        return 3;
    });
    EXPECT_EQ(second.wait(), 0);
}

TEST_P(ServiceTest, APollSetWaitsOnAServerBesideAReceiverAndOnAClient) {
    const std::string at = address();
    Server server = Server::create(at);
    Receiver other = Receiver::create("shm:/" + test::unique_name("ipckit-svc"));
    PollSet set;
    const std::size_t receiver_index = set.add(other);
    const std::size_t server_index = set.add(server);
    EXPECT_TRUE(set.wait(Deadline::after(50ms)).empty()) << "nothing asked yet";
    auto child = test::spawn([at] {
        Client client = Client::open(at);
        PollSet calls;
        calls.add(client);
        std::vector<std::byte> response;
        const auto started = client.start(as_bytes("polled"), Deadline::after(30s));
        if (!started.ok()) return 2;
        for (int turns = 0; turns < 1000; ++turns) {
            const auto ready = calls.wait(Deadline::after(30s));
            if (ready.empty()) return 3;
            const IoResult r = calls.client(ready[0]).wait(started.call, response, Deadline::immediate());
            if (r.status == Status::would_block) continue;
            return r.ok() && text(response) == "POLLED" ? 0 : 4;
        }
        return 5;
    });
    const auto ready = set.wait(Deadline::after(30s));
    ASSERT_EQ(ready, std::vector<std::size_t>{server_index});
    EXPECT_THROW((void)set[server_index], Error);
    EXPECT_EQ(&set[receiver_index], &other);
    Request request;
    ASSERT_EQ(set.server(server_index).try_recv(request).status, Status::ok);
    ASSERT_EQ(server.reply(request.handle, as_bytes(upper(text(request.message)))).status, Status::ok);
    EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(server.try_recv(request).status, Status::would_block);
}

INSTANTIATE_TEST_SUITE_P(Addresses, ServiceTest, ::testing::Values("/", "@"),
                         [](const auto& test_info) { return test_info.param == "/" ? "shm" : "memfd"; });

TEST(ServiceRegion, AForeignOrCorruptRegionIsRefusedSayingWhatItIs) {
    const std::string name = "/" + test::unique_name("ipckit-svc");
    {
        Receiver ring = Receiver::create("shm:" + name);  // a kind-1 ring under the name
        try {
            (void)Server::create("service:" + name);
            ADD_FAILURE() << "a server took a ring for a service";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::protocol_error);
            EXPECT_NE(std::string(e.what()).find("is not a service"), std::string::npos) << e.what();
        }
        Client client = Client::open("service:" + name);
        std::vector<std::byte> response;
        try {
            (void)client.call(as_bytes("x"), response, Deadline::after(5s));
            ADD_FAILURE() << "a client took a ring for a service";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::protocol_error);
            EXPECT_NE(std::string(e.what()).find("service:" + name), std::string::npos) << e.what();
        }
    }
    // A service whose header lies about its slots.
    std::optional<Server> server(Server::create("service:" + name + "?clients=2"));
    {
        PosixShm shm = PosixShm::open(name, Access::read_write);
        Mapping map = shm.map(Access::read_write);
        auto* header = reinterpret_cast<detail::service::ServiceHeader*>(map.bytes().data());
        header->control.kind_words[0] = 5000;
    }
    Client client = Client::open("service:" + name);
    std::vector<std::byte> response;
    try {
        (void)client.call(as_bytes("x"), response, Deadline::after(5s));
        ADD_FAILURE() << "a client took a corrupt service";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::protocol_error);
        EXPECT_NE(std::string(e.what()).find("client slot count 5000"), std::string::npos) << e.what();
    }
    server.reset();
    EXPECT_FALSE(std::filesystem::exists("/dev/shm" + name));
}

const IpcObject* find_listed(const std::vector<IpcObject>& objects, const std::string& address) {
    for (const auto& o : objects)
        if (o.address == address) return &o;
    return nullptr;
}

TEST(ServiceRegion, ListedAsAServiceWithItsServerAndClientsAndRemovedByItsAddress) {
    const std::string address = "service:/" + test::unique_name("ipckit-svc");
    auto server = test::spawn([&] {
        Server s = Server::create(address + "?clients=3");
        Request request;
        if (!s.recv(request, Deadline::after(30s)).ok()) return 2;
        (void)s.reply(request.handle, as_bytes("ok"));
        ::pause();
        return 3;
    });
    Client client = Client::open(address);
    std::vector<std::byte> response;
    ASSERT_EQ(client.call(as_bytes("x"), response, Deadline::after(30s)).status, Status::ok);
    {
        const auto objects = list_objects();
        const IpcObject* o = find_listed(objects, address);
        ASSERT_NE(o, nullptr);
        ASSERT_TRUE(o->service.has_value());
        EXPECT_EQ(kind_name(*o), "service");
        EXPECT_EQ(o->service->clients, 3u);
        EXPECT_EQ(o->service->clients_attached, 1u);
        EXPECT_TRUE(o->service->server_alive);
        EXPECT_EQ(o->service->server_pid, server.pid());
        EXPECT_EQ(o->service->calls, 1u);
        EXPECT_EQ(o->service->replies, 1u);
        EXPECT_EQ(o->creator_pid, server.pid());
    }
    server.kill(SIGKILL);
    EXPECT_EQ(server.wait(), -SIGKILL);
    {
        const auto objects = list_objects();
        const IpcObject* o = find_listed(objects, address);
        ASSERT_NE(o, nullptr);
        EXPECT_FALSE(o->service->server_alive);
    }
    (void)remove_object(address);
    EXPECT_EQ(find_listed(list_objects(), address), nullptr);
}

TEST(ServiceRegion, TheMostClientSlotsAServerCanHoldServeACall) {
    // 1023 slots: two ring ends each and the server's own end, 2047 of the 2048 a process holds.
    const std::string address = "service:/" + test::unique_name("ipckit-svc") + "?clients=1023&max=64";
    {
        Server server = Server::create(address);
        auto child = test::spawn([&] {
            Client client = Client::open(address);
            std::vector<std::byte> response;
            return client.call(as_bytes("many"), response, Deadline::after(30s)).ok() &&
                           text(response) == "MANY"
                       ? 0
                       : 2;
        });
        Request request;
        ASSERT_EQ(server.recv(request, Deadline::after(30s)).status, Status::ok);
        ASSERT_EQ(server.reply(request.handle, as_bytes(upper(text(request.message)))).status, Status::ok);
        EXPECT_EQ(child.wait(), 0);
    }
    try {
        (void)Server::create("service:/" + test::unique_name("ipckit-svc") + "?clients=1024");
        ADD_FAILURE() << "1024 client slots were accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
        EXPECT_NE(std::string(e.what()).find("1 to 1023"), std::string::npos) << e.what();
    }
}

TEST(ServiceRegion, AChannelAddressIsNotAServiceAndAServiceNotAChannel) {
    EXPECT_THROW((void)Server::create("shm:/" + test::unique_name("ipckit-svc")), Error);
    EXPECT_THROW((void)Receiver::create("service:/" + test::unique_name("ipckit-svc")), Error);
}

}  // namespace
}  // namespace ipckit
