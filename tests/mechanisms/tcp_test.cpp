// TCP between real processes on loopback (IPv4, IPv6, localhost), its errors, and across two
// network namespaces joined by a veth pair: the project's own test hosts. No traffic ever
// leaves loopback or those namespaces.
#include "ipckit/tcp.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "ipckit/unix_socket.hpp"
#include "support/host_pair.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

std::string text_of(std::span<const std::byte> bytes, std::size_t n) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), n);
}

// Accepts one client and echoes until it closes; returns the child's exit code.
int echo_one_client(TcpListener& listener) {
    auto peer = listener.accept(Deadline::after(30s));
    if (!peer) return 10;
    if (!peer->nodelay()) return 11;
    std::array<std::byte, 4096> buffer;
    for (;;) {
        const auto r = peer->recv(buffer, Deadline::after(30s));
        if (r.status == Status::closed) return 0;
        if (!r.ok()) return 12;
        if (!peer->send(std::span(buffer).first(r.bytes), Deadline::after(30s)).ok()) return 13;
    }
}

// Sends `message` and reads the whole echo back.
std::string round_trip(TcpStream& stream, const std::string& message) {
    EXPECT_TRUE(stream.send(as_bytes(message), Deadline::after(30s)).ok());
    std::vector<std::byte> echo(message.size());
    const auto r = read_exact(stream.fd().get(), echo, Deadline::after(30s), stream.description());
    EXPECT_EQ(r.status, Status::ok);
    return text_of(echo, r.bytes);
}

void expect_echo_through(const std::string& listen_host, const std::string& connect_host) {
    SCOPED_TRACE(listen_host + " <- " + connect_host);
    auto listener = TcpListener::listen(listen_host, 0);
    const std::uint16_t port = listener.local_port();
    ASSERT_NE(port, 0);
    auto child = test::spawn([&] { return echo_one_client(listener); });
    auto stream = TcpStream::connect(connect_host, port, Deadline::after(30s));
    EXPECT_TRUE(stream.nodelay());
    EXPECT_EQ(round_trip(stream, "ping over " + connect_host), "ping over " + connect_host);
    const std::string big(1 << 20, 'z');  // more than the socket buffers: short writes get completed
    EXPECT_EQ(round_trip(stream, big), big);
    stream.shutdown_write();
    EXPECT_EQ(child.wait(), 0);
}

TEST(TcpTest, EchoesOverIPv4) {
    expect_echo_through("127.0.0.1", "127.0.0.1");
}

TEST(TcpTest, EchoesOverIPv6) {
    expect_echo_through("::1", "::1");
    expect_echo_through("[::1]", "[::1]");
}

TEST(TcpTest, EchoesOverLocalhostAndTheWildcard) {
    expect_echo_through("localhost", "localhost");
    expect_echo_through("", "127.0.0.1");  // the dual-stack wildcard takes IPv4 clients too
}

TEST(TcpTest, AddressesAreReported) {
    auto listener = TcpListener::listen("127.0.0.1", 0);
    const auto port = std::to_string(listener.local_port());
    EXPECT_EQ(listener.local_address(), "127.0.0.1:" + port);
    auto stream = TcpStream::connect("127.0.0.1", listener.local_port());
    EXPECT_EQ(stream.peer_address(), "127.0.0.1:" + port);
    EXPECT_EQ(stream.description(), "tcp://127.0.0.1:" + port);
    stream.set_nodelay(false);
    EXPECT_FALSE(stream.nodelay());
}

TEST(TcpTest, ConnectionRefusedIsAClearError) {
    std::uint16_t port = 0;
    {
        auto listener = TcpListener::listen("127.0.0.1", 0);
        port = listener.local_port();
    }
    try {
        (void)TcpStream::connect("127.0.0.1", port, Deadline::after(30s));
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::connection_refused);
        EXPECT_NE(std::string(e.what()).find("tcp://127.0.0.1:" + std::to_string(port)), std::string::npos)
            << e.what();
    }
}

TEST(TcpTest, AddressInUseIsAClearError) {
    auto first = TcpListener::listen("127.0.0.1", 0);
    try {
        (void)TcpListener::listen("127.0.0.1", first.local_port());
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::address_in_use);
        EXPECT_NE(std::string(e.what()).find("bind(tcp://127.0.0.1:"), std::string::npos) << e.what();
    }
}

// Loopback cannot drop packets on its own, but a listener whose accept queue is full (backlog
// 0, never accepting) drops new SYNs: the connect then really waits, and the deadline ends it.
TEST(TcpTest, ConnectTimesOutWhileTheAcceptQueueIsFull) {
    auto listener = TcpListener::listen("127.0.0.1", 0, 0);
    std::vector<TcpStream> queued;
    bool timed_out = false;
    for (int i = 0; i < 16 && !timed_out; ++i) {
        try {
            queued.push_back(TcpStream::connect("127.0.0.1", listener.local_port(), Deadline::after(200ms)));
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::timed_out) << e.what();
            timed_out = true;
        }
    }
    EXPECT_TRUE(timed_out) << queued.size() << " connections were made and none timed out";
}

TEST(TcpTest, AcceptAndRecvTimeOutAsValues) {
    auto listener = TcpListener::listen("127.0.0.1", 0);
    EXPECT_FALSE(listener.accept(Deadline::after(20ms)).has_value());
    auto stream = TcpStream::connect("127.0.0.1", listener.local_port());
    std::array<std::byte, 8> buffer;
    EXPECT_EQ(stream.recv(buffer, Deadline::after(20ms)).status, Status::timed_out);
    EXPECT_EQ(stream.recv(buffer, Deadline::immediate()).status, Status::would_block);
}

TEST(TcpTest, PeerKilledMidStreamGivesClosedNotAHang) {
    auto listener = TcpListener::listen("127.0.0.1", 0);
    auto child = test::spawn([&] {
        auto stream = TcpStream::connect("127.0.0.1", listener.local_port(), Deadline::after(30s));
        (void)stream.send(as_bytes("half a"), Deadline::after(30s));
        ::pause();
        return 0;
    });
    auto peer = listener.accept(Deadline::after(30s));
    ASSERT_TRUE(peer.has_value());
    std::array<std::byte, 6> half;
    ASSERT_EQ(read_exact(peer->fd().get(), half, Deadline::after(30s), "half").status, Status::ok);
    child.kill(SIGKILL);
    EXPECT_EQ(child.wait(), -SIGKILL);
    std::array<std::byte, 6> rest;
    EXPECT_EQ(peer->recv(rest).status, Status::closed);
    // Writing into the dead connection: RST, then closed; never SIGPIPE.
    Status status = Status::ok;
    const std::vector<std::byte> chunk(65536, std::byte{7});
    for (int i = 0; i < 1000 && status == Status::ok; ++i)
        status = peer->send(chunk, Deadline::after(30s)).status;
    EXPECT_EQ(status, Status::closed);
}

TEST(TcpTest, EpollReportsReadiness) {
    auto listener = TcpListener::listen("::1", 0);
    Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
    epoll_event event{EPOLLIN, {.u32 = 1}};
    ASSERT_EQ(::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, listener.fd().get(), &event), 0);
    epoll_event ready{};
    EXPECT_EQ(::epoll_wait(epoll.get(), &ready, 1, 0), 0);
    auto child = test::spawn([&] {
        auto stream = TcpStream::connect("::1", listener.local_port(), Deadline::after(30s));
        return stream.send(as_bytes("hi"), Deadline::after(30s)).ok() ? 0 : 1;
    });
    ASSERT_EQ(::epoll_wait(epoll.get(), &ready, 1, 30000), 1);
    auto peer = listener.accept(Deadline::immediate());
    ASSERT_TRUE(peer.has_value());
    peer->set_nonblocking(true);
    epoll_event peer_event{EPOLLIN, {.u32 = 2}};
    ASSERT_EQ(::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, peer->fd().get(), &peer_event), 0);
    ASSERT_EQ(::epoll_wait(epoll.get(), &ready, 1, 30000), 1);
    EXPECT_EQ(ready.data.u32, 2u);
    std::array<std::byte, 2> buffer;
    ASSERT_EQ(read_exact(peer->fd().get(), buffer, Deadline::after(30s), "peer").status, Status::ok);
    EXPECT_EQ(text_of(buffer, 2), "hi");
    EXPECT_EQ(child.wait(), 0);
}

// A child in a fresh, empty network namespace: its loopback is down and it has no routes, so
// "unreachable" and "name not resolved" can be produced without any packet leaving.
TEST(TcpTest, UnreachableAndUnresolvedAreClearErrors) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to unshare a network namespace";
    auto child = test::spawn([] {
        if (::unshare(CLONE_NEWNET) != 0) return 77;
        int failures = 0;
        try {
            (void)TcpStream::connect("127.0.0.1", 9, Deadline::after(10s));
            failures |= 1;
        } catch (const Error& e) {
            if (e.code() != std::errc::network_unreachable) failures |= 2;
        }
        try {
            (void)TcpStream::connect("no-such-host.invalid", 9, Deadline::after(10s));
            failures |= 4;
        } catch (const Error& e) {
            const std::string what = e.what();
            if (what.find("getaddrinfo(tcp://no-such-host.invalid:9)") == std::string::npos) failures |= 8;
            if (e.code().category() != resolver_category() && e.code().category() != std::system_category())
                failures |= 16;
        }
        return failures;
    });
    const int code = child.wait();
    if (code == 77) GTEST_SKIP() << "unshare(CLONE_NEWNET) is not permitted here";
    EXPECT_EQ(code, 0) << "bit 1/2: unreachable not reported as such, bit 4/8/16: name resolution";
}

// ---------------------------------------------------------------------------------------------
// Across hosts: two network namespaces joined by a veth pair.

// Two namespaces "hosts" A (169.254.77.1, fd00:1b5c::1) and B (.2, ::2) on one veth link:
// test::HostPair (tests/support/host_pair.hpp).
using test::enter_namespace;

TEST(TcpCrossHostTest, MessagesCrossAVethLinkBetweenTwoNamespaces) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for ip netns (two namespaces joined by a veth pair)";
    test::HostPair hosts("t", "169.254.77", /*ipv6=*/true);
    if (!hosts.ok()) GTEST_SKIP() << "cannot build the two-namespace network: " << hosts.error();

    constexpr std::uint16_t port = 5555;  // the namespaces are ours alone: any port is free
    auto [ready_here, ready_there] = UnixSocket::pair(SocketType::seqpacket);
    auto server = test::spawn([&, &ready_there = ready_there] {
        if (!enter_namespace(hosts.a())) return 20;
        auto listener = TcpListener::listen("", port);  // dual stack: IPv4 and IPv6 clients
        if (!ready_there.send(as_bytes("listening")).ok()) return 21;
        for (int client = 0; client < 2; ++client)
            if (const int code = echo_one_client(listener); code != 0) return code;
        return 0;
    });
    std::array<std::byte, 16> ready;
    ASSERT_TRUE(ready_here.recv(ready, Deadline::after(30s)).ok());

    auto client = test::spawn([&] {
        if (!enter_namespace(hosts.b())) return 30;
        int code = 0;
        for (const char* host : {"169.254.77.1", "fd00:1b5c::1"}) {
            auto stream = TcpStream::connect(host, port, Deadline::after(30s));
            if (stream.peer_address().find(host) == std::string::npos) code |= 1;
            for (int i = 0; i < 100; ++i) {
                const std::string message = "message " + std::to_string(i) + " from B to " + host;
                if (round_trip(stream, message) != message) code |= 2;
            }
            const std::string big(256 * 1024, 'x');
            if (round_trip(stream, big) != big) code |= 4;
            stream.shutdown_write();
        }
        return code;
    });
    EXPECT_EQ(client.wait(), 0);
    EXPECT_EQ(server.wait(), 0);
}

}  // namespace
}  // namespace ipckit
