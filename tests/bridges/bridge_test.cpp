// ipckit::Bridge and `ipckit bridge`: forwarding in order, backpressure from a slow side, a
// clean stop on SIGTERM, a service exposed at another address (ServiceBridge, and on NATS by the tool), local
// programs talking through NATS (JetStream) by one bridge on each side, and two "hosts" (network namespaces
// joined by a veth pair), each with its own nats-server in one cluster, carrying a message from a local
// publisher on one to a local subscriber on the other.
//
// The local ends are unix:@NAME sockets (abstract names belong to their network namespace), and
// topic:/NAME on each "host" of the two-namespace test, as a deployment would use. No NATS runs in this test
// process itself: it forks and executes the tool, so libnats's threads never meet fork.
#include "ipckit/bridge.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/nats.hpp"
#include "support/host_pair.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

const auto* const registry = ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

std::string text_of(const std::vector<std::byte>& message) {
    return std::string(reinterpret_cast<const char*>(message.data()), message.size());
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// Runs the ipckit tool in a child (inside network namespace `netns` when given), its stdout
// and stderr into files, its stdin from `stdin_fd` (or /dev/null).
test::Child start_tool(std::vector<std::string> args, const std::string& out, const std::string& err,
                       const std::string& netns = {}, int stdin_fd = -1) {
    args.insert(args.begin(), test::bin_path("ipckit"));
    return test::spawn([=] {
        if (!netns.empty()) {
            Fd ns(::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC));
            if (!ns || ::setns(ns.get(), CLONE_NEWNET) != 0) return 121;
        }
        const int in = stdin_fd >= 0 ? stdin_fd : ::open("/dev/null", O_RDONLY);
        const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || o < 0 || e < 0) return 122;
        ::dup2(in, 0);
        ::dup2(o, 1);
        ::dup2(e, 2);
        std::vector<char*> argv;
        for (const auto& arg : args)
            argv.push_back(const_cast<char*>(arg.c_str()));
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        return 127;
    });
}

// Waits (bounded) until `path` contains `text`.
bool wait_for_text(const std::string& path, const std::string& text, std::chrono::seconds limit = 30s) {
    const auto until = Deadline::after(limit);
    while (!until.expired()) {
        if (slurp(path).find(text) != std::string::npos) return true;
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

TEST(BridgeTest, ForwardsEveryMessageInOrderAndEndsWhenTheSourceCloses) {
    const std::string in = "unix:@" + test::unique_name("ipckit-bridge-in");
    const std::string out = "unix:@" + test::unique_name("ipckit-bridge-out");
    auto destination = Receiver::create(out);
    std::atomic<bool> stop{false};
    BridgeCounts counts;
    std::atomic<int> progress_calls{0};
    BridgeOptions options;
    options.progress_interval = 1ms;
    options.progress = [&](const BridgeCounts&) { progress_calls.fetch_add(1); };
    Bridge bridge(Receiver::create(in), Sender::open(out, Deadline::after(10s)), options);
    std::thread runner([&] { counts = bridge.run(stop); });
    // The bridge holds a slow side back, so the reading goes on while the sending does.
    std::vector<std::string> got;
    std::thread reader([&] {
        std::vector<std::byte> message;
        while (got.size() < 1000 && destination.recv(message, Deadline::after(10s)).ok())
            got.push_back(text_of(message));
    });
    {
        auto source = Sender::open(in, Deadline::after(10s));
        for (int i = 0; i < 1000; ++i) {
            const auto r = source.send(as_bytes("message " + std::to_string(i)), Deadline::after(10s));
            EXPECT_TRUE(r.ok()) << i << " " << to_string(r.status);
        }
    }
    reader.join();
    ASSERT_EQ(got.size(), 1000u);
    for (int i = 0; i < 1000; ++i)
        ASSERT_EQ(got[static_cast<std::size_t>(i)], "message " + std::to_string(i));
    runner.join();
    EXPECT_EQ(counts.ended, "source closed");
    EXPECT_EQ(counts.messages, 1000u);
    EXPECT_EQ(counts.undelivered, 0u);
    EXPECT_GT(progress_calls.load(), 0);
}

TEST(BridgeTest, ASlowDestinationHoldsTheSourceBackInsteadOfBuffering) {
    const std::string in = "unix:@" + test::unique_name("ipckit-bridge-in");
    const std::string out = "unix:@" + test::unique_name("ipckit-bridge-out");
    auto destination = Receiver::create(out);  // takes nothing until the end
    std::atomic<bool> stop{false};
    BridgeCounts counts;
    Bridge bridge(Receiver::create(in), Sender::open(out, Deadline::after(10s)));
    std::thread runner([&] { counts = bridge.run(stop); });
    auto source = Sender::open(in, Deadline::after(10s));
    const std::string chunk(4096, 'c');
    int sent = 0;
    // Both sockets' buffers fill (a few MiB at most); then the source must wait.
    for (; sent < 20000; ++sent) {
        const auto r = source.send(as_bytes(chunk + std::to_string(sent)), Deadline::after(500ms));
        if (r.status == Status::timed_out) break;
        ASSERT_TRUE(r.ok());
    }
    EXPECT_LT(sent, 20000) << "80 MB went into the bridge without the source ever waiting";
    std::vector<std::byte> message;
    for (int i = 0; i < sent; ++i) {
        ASSERT_TRUE(destination.recv(message, Deadline::after(10s)).ok()) << i;
        ASSERT_EQ(text_of(message), chunk + std::to_string(i));
    }
    stop = true;
    runner.join();
    EXPECT_EQ(counts.messages, static_cast<std::uint64_t>(sent));
}

// A local service exposed at another address (a memfd service here, so no NATS runs in this
// process): calls there are made on the local service and answered; a call the service fails
// is left unanswered and counted.
TEST(ServiceBridgeTest, CallsAtTheExposedAddressAreAnsweredByTheService) {
    const std::string local = "service:/" + test::unique_name("ipckit-bridge-svc");
    const std::string exposed = "service:@" + test::unique_name("ipckit-bridge-svc");
    auto server = Server::create(local);
    std::atomic<bool> done{false};
    std::thread answering([&] {
        Request request;
        while (!done) {
            if (!server.recv(request, Deadline::after(100ms)).ok()) continue;
            std::string text = text_of(request.message);
            for (auto& c : text)
                c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            if (text == "SILENT") continue;  // never answered: the bridge's call times out
            if (!server.reply(request.handle, as_bytes(text)).ok()) return;
        }
    });
    BridgeOptions options;
    options.call_timeout = 300ms;
    ServiceBridge bridge(Client::open(local), Server::create(exposed), options);
    std::atomic<bool> stop{false};
    BridgeCounts counts;
    std::thread runner([&] { counts = bridge.run(stop); });
    auto client = Client::open(exposed);
    std::vector<std::byte> response;
    ASSERT_TRUE(client.call(as_bytes("hello"), response, Deadline::after(30s)).ok());
    EXPECT_EQ(text_of(response), "HELLO");
    EXPECT_EQ(client.call(as_bytes("silent"), response, Deadline::after(2s)).status, Status::timed_out);
    ASSERT_TRUE(client.call(as_bytes("again"), response, Deadline::after(30s)).ok());
    EXPECT_EQ(text_of(response), "AGAIN");
    stop = true;
    runner.join();
    done = true;
    answering.join();
    EXPECT_EQ(counts.ended, "stopped");
    EXPECT_EQ(counts.messages, 2u);
    EXPECT_EQ(counts.undelivered, 1u);
    EXPECT_EQ(counts.bytes, 20u);
}

TEST(BridgeToolTest, StopsCleanlyOnSigtermWithASummary) {
    test::TempDir dir;
    const std::string in = "unix:@" + test::unique_name("ipckit-bridge-in");
    const std::string out = "unix:@" + test::unique_name("ipckit-bridge-out");
    auto destination = Receiver::create(out);
    auto bridge = start_tool({"bridge", in, out, "--progress", "0.1"}, dir.file("out"), dir.file("err"));
    auto source = Sender::open(in, Deadline::after(30s));
    for (int i = 0; i < 10; ++i)
        ASSERT_TRUE(source.send(as_bytes("m" + std::to_string(i)), Deadline::after(10s)).ok());
    std::vector<std::byte> message;
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(destination.recv(message, Deadline::after(10s)).ok());
        EXPECT_EQ(text_of(message), "m" + std::to_string(i));
    }
    ASSERT_TRUE(wait_for_text(dir.file("err"), "10 messages")) << slurp(dir.file("err"));
    bridge.kill(SIGTERM);
    EXPECT_EQ(bridge.wait(30s), 0) << slurp(dir.file("err"));
    const std::string err = slurp(dir.file("err"));
    EXPECT_NE(err.find(in + " -> " + out + ": stopped: 10 messages"), std::string::npos) << err;
}

TEST(BridgeToolTest, ABadAddressIsAOneLineErrorAndNoHang) {
    if (!nats_available())
        GTEST_SKIP() << "built without NATS (libnats-dev was absent when ipckit was configured)";
    const std::string nowhere = "nats://127.0.0.1:" + std::to_string(test::free_tcp_port()) + "/cam";
    const auto r = test::run({test::bin_path("ipckit"), "bridge", nowhere, "unix:@ipckit-never"}, {}, 30s);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("nats \"" + nowhere + "\": cannot connect"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// `ipckit serve` on a local service, `ipckit bridge` exposing it on NATS, `ipckit call` on the
// NATS subject: three processes and a nats-server.
TEST(BridgeToolTest, ExposesALocalServiceOnNats) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer nats;
    test::TempDir dir;
    const std::string local = "service:/" + test::unique_name("ipckit-bridge-svc");
    const std::string remote = nats.url("calc.upper");
    auto serve = start_tool({"serve", local, "--", "tr", "a-z", "A-Z"}, dir.file("s.out"), dir.file("s.err"));
    auto bridge =
        start_tool({"bridge", local, remote, "--progress", "0.1"}, dir.file("b.out"), dir.file("b.err"));
    const auto call =
        test::run({test::bin_path("ipckit"), "call", remote, "hello", "--timeout", "30"}, {}, 60s);
    EXPECT_EQ(call.exit_code, 0) << call.err << slurp(dir.file("b.err"));
    EXPECT_EQ(call.out, "HELLO\n");
    bridge.kill(SIGTERM);
    EXPECT_EQ(bridge.wait(30s), 0) << slurp(dir.file("b.err"));
    const std::string err = slurp(dir.file("b.err"));
    EXPECT_NE(err.find(local + " exposed at " + remote + ": stopped: 1 calls answered"), std::string::npos)
        << err;
    serve.kill(SIGTERM);
    EXPECT_EQ(serve.wait(30s), 0) << slurp(dir.file("s.err"));
}

// Local programs on unix:@ sockets, one bridge to NATS and one back, through a JetStream
// stream: every message arrives, in order, whichever bridge starts first.
TEST(BridgeToolTest, LocalProgramsTalkThroughNatsByOneBridgeEachWay) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer server(test::jetstream_server());
    test::TempDir dir;
    const std::string in = "unix:@" + test::unique_name("ipckit-bridge-in");
    const std::string out = "unix:@" + test::unique_name("ipckit-bridge-out");
    const std::string hub = server.url("cam.front", "stream=CAM");
    auto destination = Receiver::create(out);
    auto outbound = start_tool({"bridge", in, hub}, dir.file("a.out"), dir.file("a.err"));
    auto inbound = start_tool({"bridge", hub, out}, dir.file("b.out"), dir.file("b.err"));
    {
        auto source = Sender::open(in, Deadline::after(30s));
        for (int i = 0; i < 200; ++i)
            ASSERT_TRUE(source.send(as_bytes("frame " + std::to_string(i)), Deadline::after(30s)).ok());
    }
    std::vector<std::byte> message;
    for (int i = 0; i < 200; ++i) {
        ASSERT_TRUE(destination.recv(message, Deadline::after(30s)).ok()) << i << slurp(dir.file("b.err"));
        ASSERT_EQ(text_of(message), "frame " + std::to_string(i));
    }
    EXPECT_EQ(outbound.wait(30s), 0) << slurp(dir.file("a.err"));  // its source closed
    EXPECT_NE(slurp(dir.file("a.err")).find("source closed: 200 messages"), std::string::npos)
        << slurp(dir.file("a.err"));
    inbound.kill(SIGINT);
    EXPECT_EQ(inbound.wait(30s), 0) << slurp(dir.file("b.err"));
    EXPECT_NE(slurp(dir.file("b.err")).find("stopped: 200 messages"), std::string::npos)
        << slurp(dir.file("b.err"));
}

// JetStream through the bridges while everything goes wrong: the server is killed (SIGKILL) and
// restarted mid-stream, and the inbound bridge is stopped (SIGTERM) and replaced. Every message
// still arrives: what a bridge acknowledged it had delivered, and the stream kept the rest.
TEST(BridgeToolTest, JetStreamLosesNothingThroughAServerRestartAndABridgeRestart) {
    IPCKIT_REQUIRE_NATS();
    test::NatsServer server(test::jetstream_server());
    test::TempDir dir;
    const std::string in = "unix:@" + test::unique_name("ipckit-bridge-in");
    const std::string first_out = "unix:@" + test::unique_name("ipckit-bridge-out1");
    const std::string second_out = "unix:@" + test::unique_name("ipckit-bridge-out2");
    const std::string hub = server.url("cam.survive", "stream=SURVIVE");
    auto first = Receiver::create(first_out);
    auto outbound = start_tool({"bridge", in, hub}, dir.file("a.out"), dir.file("a.err"));
    auto inbound = start_tool({"bridge", hub, first_out}, dir.file("b.out"), dir.file("b.err"));
    constexpr int count = 300;
    std::set<int> got;
    std::vector<std::byte> message;
    std::optional<Sender> source = Sender::open(in, Deadline::after(30s));
    // Both bridges are up once the first message came through.
    ASSERT_TRUE(source->send(as_bytes("1"), Deadline::after(30s)).ok());
    ASSERT_TRUE(first.recv(message, Deadline::after(30s)).ok()) << slurp(dir.file("b.err"));
    got.insert(std::stoi(text_of(message)));
    for (int i = 2; i <= count; ++i) {
        if (i == 100) {
            server.kill(SIGKILL);
            server.start();
        }
        ASSERT_TRUE(source->send(as_bytes(std::to_string(i)), Deadline::after(60s)).ok()) << i;
        while (first.recv(message, Deadline::immediate()).ok())
            got.insert(std::stoi(text_of(message)));
    }
    // The inbound bridge stops part-way through what it has to deliver.
    inbound.kill(SIGTERM);
    EXPECT_EQ(inbound.wait(30s), 0) << slurp(dir.file("b.err"));
    while (first.recv(message, Deadline::after(1s)).ok())
        got.insert(std::stoi(text_of(message)));
    const auto after_first = got.size();
    std::printf("the first inbound bridge delivered %zu of %d before its SIGTERM\n", after_first, count);
    auto second = Receiver::create(second_out);
    auto replacement = start_tool({"bridge", hub, second_out}, dir.file("c.out"), dir.file("c.err"));
    while (static_cast<int>(got.size()) < count && second.recv(message, Deadline::after(30s)).ok())
        got.insert(std::stoi(text_of(message)));
    EXPECT_EQ(static_cast<int>(got.size()), count)
        << "first bridge delivered " << after_first << "\nA: " << slurp(dir.file("a.err"))
        << "\nB: " << slurp(dir.file("b.err")) << "\nC: " << slurp(dir.file("c.err"));
    EXPECT_EQ(*got.begin(), 1);
    EXPECT_EQ(*got.rbegin(), count);
    source.reset();  // the outbound bridge's source closes: it ends, having passed on all it took
    EXPECT_EQ(outbound.wait(30s), 0) << slurp(dir.file("a.err"));
    EXPECT_NE(slurp(dir.file("a.err")).find("source closed: 300 messages"), std::string::npos)
        << slurp(dir.file("a.err"));
    replacement.kill(SIGTERM);
    EXPECT_EQ(replacement.wait(30s), 0) << slurp(dir.file("c.err"));
}

// ---------------------------------------------------------------------------------------------
// Two hosts: network namespaces joined by a veth pair, one nats-server each, clustered.

// Hosts A (169.254.78.1) and B (169.254.78.2): test::HostPair (tests/support/host_pair.hpp).

test::NatsServerOptions cluster_member(const std::string& netns, const std::string& self,
                                       const std::string& peer) {
    test::NatsServerOptions options;
    options.host = "0.0.0.0";  // loopback for the host's own bridge; the link for nothing but routes
    options.netns = netns;
    options.extra = {"--cluster_name",           "ipckit",   "--cluster",
                     "nats://" + self + ":6222", "--routes", "nats://" + peer + ":6222"};
    return options;
}

TEST(BridgeCrossHostTest, APublisherOnOneHostReachesASubscriberOnTheOtherThroughTwoBridges) {
    IPCKIT_REQUIRE_NATS();
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for ip netns (two namespaces joined by a veth pair)";
    test::HostPair hosts("n", "169.254.78");
    if (!hosts.ok()) GTEST_SKIP() << "cannot build the two-namespace network: " << hosts.error();
    test::NatsServer hub_a(cluster_member(hosts.a(), "169.254.78.1", "169.254.78.2"), 4222);
    test::NatsServer hub_b(cluster_member(hosts.b(), "169.254.78.2", "169.254.78.1"), 4222);
    test::TempDir dir;
    // Each host's local programs talk through a topic, the fastest local shape; the two "hosts"
    // share this machine's /dev/shm, so each topic has a name of its own.
    const std::string local_a = "topic:/" + test::unique_name("ipckit-cam-a");
    const std::string local_b = "topic:/" + test::unique_name("ipckit-cam-b");
    const std::string nats = "nats://127.0.0.1:4222/cam.front";

    // Host B: a subscriber and the bridge from NATS to it.
    auto subscriber = start_tool({"recv", local_b, "--count", "1", "--timeout", "60"}, dir.file("sub.out"),
                                 dir.file("sub.err"), hosts.b());
    auto bridge_b = start_tool({"bridge", nats, local_b}, dir.file("bb.out"), dir.file("bb.err"), hosts.b());
    // Host A: the bridge from the local address to NATS, and a publisher writing lines to it.
    auto bridge_a = start_tool({"bridge", local_a, nats}, dir.file("ba.out"), dir.file("ba.err"), hosts.a());
    int lines[2];
    ASSERT_EQ(::pipe2(lines, O_CLOEXEC), 0);
    Fd write_end(lines[1]);
    auto publisher = start_tool({"send", local_a, "--timeout", "30"}, dir.file("pub.out"),
                                dir.file("pub.err"), hosts.a(), lines[0]);
    ::close(lines[0]);

    // Core NATS delivers to the subscribers known at that moment: until the route between the
    // two servers carries B's interest, probes go nowhere (and that is no failure).
    ::signal(SIGPIPE, SIG_IGN);
    bool arrived = false;
    for (int i = 0; i < 600 && !arrived; ++i) {
        const std::string line = "hello from host A, probe " + std::to_string(i) + "\n";
        ASSERT_EQ(::write(write_end.get(), line.data(), line.size()), static_cast<ssize_t>(line.size()));
        arrived = slurp(dir.file("sub.out")).find("hello from host A") != std::string::npos;
        if (!arrived) std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(wait_for_text(dir.file("sub.out"), "hello from host A, probe"))
        << "A: " << slurp(dir.file("ba.err")) << "\nB: " << slurp(dir.file("bb.err"));
    EXPECT_EQ(subscriber.wait(60s), 0) << slurp(dir.file("sub.err"));
    write_end = Fd();  // the publisher's input ends; so does host A's bridge, its source closed
    EXPECT_EQ(publisher.wait(30s), 0) << slurp(dir.file("pub.err"));
    EXPECT_EQ(bridge_a.wait(30s), 0) << slurp(dir.file("ba.err"));
    EXPECT_NE(slurp(dir.file("ba.err")).find("source closed"), std::string::npos)
        << slurp(dir.file("ba.err"));
    bridge_b.kill(SIGTERM);
    // B's bridge may hold a message for the subscriber that left: it says so and exits 1.
    const int b_code = bridge_b.wait(30s);
    EXPECT_TRUE(b_code == 0 || b_code == 1) << slurp(dir.file("bb.err"));
    EXPECT_NE(slurp(dir.file("bb.err")).find("ipckit bridge: " + nats + " -> " + local_b), std::string::npos)
        << slurp(dir.file("bb.err"));
}

}  // namespace
}  // namespace ipckit
