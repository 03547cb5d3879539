// Unix domain sockets between real processes: names, permissions, stale files, message
// boundaries, truncation, descriptor passing, credentials, dead peers and readiness.
#include "ipckit/unix_socket.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

std::string text_of(std::span<const std::byte> bytes, std::size_t n) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), n);
}

// Open descriptors of this process; the directory iterator's own descriptor is counted both
// times, so before/after comparisons are exact.
std::size_t open_descriptor_count() {
    std::size_t count = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
        ++count;
    return count;
}

mode_t file_mode(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st.st_mode;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

UnixAddress unique_abstract() {
    return UnixAddress::abstract(test::unique_name("ipckit-test"));
}

// ---------------------------------------------------------------------------------------------
// Addresses

TEST(UnixAddressTest, ParsesPathsAndAbstractNames) {
    const auto path = UnixAddress::parse("/tmp/a.sock");
    EXPECT_FALSE(path.is_abstract());
    EXPECT_EQ(path.name(), "/tmp/a.sock");
    EXPECT_EQ(path.to_string(), "/tmp/a.sock");
    const auto abstract = UnixAddress::parse("@echo");
    EXPECT_TRUE(abstract.is_abstract());
    EXPECT_EQ(abstract.name(), "echo");
    EXPECT_EQ(abstract.to_string(), "@echo");
    EXPECT_EQ(UnixAddress::abstract("echo"), abstract);
}

TEST(UnixAddressTest, PathTooLongForSunPathIsAnErrorQuotingItAndTheLimit) {
    const std::string longest(UnixAddress::max_length, 'a');
    EXPECT_NO_THROW((void)UnixAddress::parse(longest));
    EXPECT_NO_THROW((void)UnixAddress::parse("@" + longest));
    const std::string too_long = "/tmp/" + std::string(103, 'x');  // 108 bytes
    try {
        (void)UnixAddress::parse(too_long);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::filename_too_long);
        const std::string what = e.what();
        EXPECT_NE(what.find(too_long), std::string::npos) << what;
        EXPECT_NE(what.find("108 bytes"), std::string::npos) << what;
        EXPECT_NE(what.find("107"), std::string::npos) << what;
    }
    EXPECT_THROW((void)UnixAddress::parse("@" + std::string(108, 'x')), Error);
}

TEST(UnixAddressTest, EmptyOrNulNamesAreErrors) {
    EXPECT_THROW((void)UnixAddress::parse(""), Error);
    EXPECT_THROW((void)UnixAddress::parse("@"), Error);
    EXPECT_THROW((void)UnixAddress::parse(std::string_view("/tmp/a\0b", 8)), Error);
}

// ---------------------------------------------------------------------------------------------
// Listener: files, permissions, stale sockets

TEST(UnixListenerTest, SocketFileIsCreated0600AndRemovedOnDestruction) {
    test::TempDir dir;
    const std::string path = dir.file("s");
    {
        const mode_t old = ::umask(0);  // even a permissive umask must not widen the socket
        auto listener = UnixListener::bind(UnixAddress::path(path), SocketType::stream);
        ::umask(old);
        const mode_t mode = file_mode(path);
        EXPECT_TRUE(S_ISSOCK(mode));
        EXPECT_EQ(mode & 07777, 0600u);
    }
    EXPECT_FALSE(exists(path));
}

TEST(UnixListenerTest, ModeIsHonouredAndKeepLeavesTheFile) {
    test::TempDir dir;
    const std::string path = dir.file("s");
    {
        auto listener = UnixListener::bind(UnixAddress::path(path), SocketType::seqpacket, 0660);
        EXPECT_EQ(file_mode(path) & 07777, 0660u);
        listener.keep();
    }
    EXPECT_TRUE(S_ISSOCK(file_mode(path)));
    // What was kept is now stale, and a new listener replaces it.
    auto again = UnixListener::bind(UnixAddress::path(path), SocketType::seqpacket);
    EXPECT_TRUE(S_ISSOCK(file_mode(path)));
}

TEST(UnixListenerTest, RegularFileAtThePathIsAnErrorAndStaysUntouched) {
    test::TempDir dir;
    const std::string path = dir.file("data");
    std::ofstream(path) << "precious";
    try {
        (void)UnixListener::bind(UnixAddress::path(path), SocketType::stream);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::address_in_use);
        const std::string what = e.what();
        EXPECT_NE(what.find("a regular file"), std::string::npos) << what;
        EXPECT_NE(what.find("untouched"), std::string::npos) << what;
    }
    std::ifstream in(path);
    std::string content;
    std::getline(in, content);
    EXPECT_EQ(content, "precious");
    EXPECT_TRUE(S_ISREG(file_mode(path)));
}

TEST(UnixListenerTest, FifoSymlinkAndDirectoryAtThePathAreErrorsAndStayUntouched) {
    test::TempDir dir;
    const std::string fifo = dir.file("fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_THROW((void)UnixListener::bind(UnixAddress::path(fifo), SocketType::stream), Error);
    EXPECT_TRUE(S_ISFIFO(file_mode(fifo)));

    // A symlink is never followed nor removed, even when it points at a stale socket.
    const std::string target = dir.file("target");
    UnixListener::bind(UnixAddress::path(target), SocketType::stream).keep();
    const std::string link = dir.file("link");
    ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
    EXPECT_THROW((void)UnixListener::bind(UnixAddress::path(link), SocketType::stream), Error);
    EXPECT_TRUE(S_ISLNK(file_mode(link)));
    EXPECT_TRUE(S_ISSOCK(file_mode(target)));

    const std::string subdir = dir.file("subdir");
    ASSERT_EQ(::mkdir(subdir.c_str(), 0700), 0);
    EXPECT_THROW((void)UnixDatagram::bind(UnixAddress::path(subdir)), Error);
    EXPECT_TRUE(S_ISDIR(file_mode(subdir)));
}

TEST(UnixListenerTest, StaleSocketOfAKilledProcessIsReplaced) {
    test::TempDir dir;
    const auto address = UnixAddress::path(dir.file("s"));
    auto [ours, theirs] = UnixSocket::pair(SocketType::stream);
    auto child = test::spawn([&, &theirs = theirs] {
        auto listener = UnixListener::bind(address, SocketType::stream);
        (void)theirs.send(as_bytes("bound"));
        ::pause();  // until SIGKILL: the file stays behind, its owner dead
        return 0;
    });
    std::array<std::byte, 5> ready;
    ASSERT_EQ(read_exact(ours.fd().get(), ready, Deadline::after(30s), "ready").status, Status::ok);
    child.kill(SIGKILL);
    EXPECT_EQ(child.wait(), -SIGKILL);
    ASSERT_TRUE(S_ISSOCK(file_mode(address.name())));

    try {
        (void)UnixSocket::connect(address, SocketType::stream, Deadline::after(5s));
        FAIL() << "connect to a stale socket succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::connection_refused) << e.what();
    }
    auto listener = UnixListener::bind(address, SocketType::stream);
    auto client = UnixSocket::connect(address, SocketType::stream, Deadline::after(5s));
    EXPECT_TRUE(listener.accept(Deadline::after(5s)).has_value());
}

TEST(UnixListenerTest, LiveSocketIsNotReplaced) {
    test::TempDir dir;
    const auto address = UnixAddress::path(dir.file("s"));
    auto first = UnixListener::bind(address, SocketType::stream);
    auto child = test::spawn([&] {
        try {
            (void)UnixListener::bind(address, SocketType::stream);
            return 1;
        } catch (const Error& e) {
            return e.code() == std::errc::address_in_use ? 0 : 2;
        }
    });
    EXPECT_EQ(child.wait(), 0);
    auto client = UnixSocket::connect(address, SocketType::stream, Deadline::after(5s));
    EXPECT_TRUE(first.accept(Deadline::after(5s)).has_value());
}

TEST(UnixListenerTest, MissingSocketAndWrongTypeAreClearConnectErrors) {
    test::TempDir dir;
    try {
        (void)UnixSocket::connect(UnixAddress::path(dir.file("nobody")), SocketType::stream);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
        EXPECT_NE(std::string(e.what()).find("nobody"), std::string::npos) << e.what();
    }
    const auto abstract = unique_abstract();
    try {
        (void)UnixSocket::connect(abstract, SocketType::stream);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::connection_refused) << e.what();
    }
    auto listener = UnixListener::bind(abstract, SocketType::seqpacket);
    EXPECT_THROW((void)UnixSocket::connect(abstract, SocketType::stream), Error);
    EXPECT_THROW((void)UnixListener::bind(abstract, SocketType::datagram), Error);
}

TEST(UnixListenerTest, AbstractNameLeavesNoFileAndIsExclusive) {
    const auto address = unique_abstract();
    auto listener = UnixListener::bind(address, SocketType::stream);
    EXPECT_FALSE(exists(address.name()));
    EXPECT_THROW((void)UnixListener::bind(address, SocketType::stream), Error);
    auto child = test::spawn([&] {
        auto socket = UnixSocket::connect(address, SocketType::stream, Deadline::after(10s));
        return socket.send(as_bytes("over an abstract name"), Deadline::after(10s)).ok() ? 0 : 1;
    });
    auto peer = listener.accept(Deadline::after(30s));
    ASSERT_TRUE(peer.has_value());
    std::array<std::byte, 21> buffer;
    ASSERT_EQ(read_exact(peer->fd().get(), buffer, Deadline::after(30s), "peer").status, Status::ok);
    EXPECT_EQ(text_of(buffer, buffer.size()), "over an abstract name");
    EXPECT_EQ(child.wait(), 0);
}

// A listener passed over a socket keeps its name bound the whole way, keeps the connection that
// was queued meanwhile, and owns a socket file from then on (the sender kept its own).
TEST(UnixListenerTest, AnAdoptedListenerKeepsItsNameAndItsQueuedConnections) {
    test::TempDir dir;
    for (const auto& address : {unique_abstract(), UnixAddress::path(dir.file("s"))}) {
        SCOPED_TRACE(address.to_string());
        auto [ours, theirs] = UnixSocket::pair(SocketType::seqpacket);
        {
            auto listener = UnixListener::bind(address, SocketType::seqpacket);
            auto queued = UnixSocket::connect(address, SocketType::seqpacket, Deadline::after(10s));
            ASSERT_TRUE(queued.send(as_bytes("queued"), Deadline::after(10s)).ok());
            const int fds[] = {listener.fd().get()};
            ASSERT_TRUE(theirs.send_with_fds(as_bytes("listener"), fds, Deadline::after(10s)).ok());
            listener.keep();
        }  // our copy is closed: the one in flight holds the name
        EXPECT_THROW((void)UnixListener::bind(address, SocketType::seqpacket), Error);
        std::array<std::byte, 16> buffer;
        FdMessage message = ours.recv_with_fds(buffer, 1, Deadline::after(10s));
        ASSERT_EQ(message.fds.size(), 1u);
        {
            UnixListener adopted = UnixListener::adopt(std::move(message.fds[0]));
            EXPECT_EQ(adopted.address(), address);
            EXPECT_EQ(adopted.type(), SocketType::seqpacket);
            auto peer = adopted.accept(Deadline::after(10s));
            ASSERT_TRUE(peer.has_value());
            const IoResult r = peer->recv(buffer, Deadline::after(10s));
            EXPECT_EQ(text_of(buffer, r.bytes), "queued");
        }
        if (!address.is_abstract()) {
            EXPECT_FALSE(exists(address.name()));  // the adopter removed it
        }
        EXPECT_NO_THROW((void)UnixListener::bind(address, SocketType::seqpacket));
    }
}

TEST(UnixListenerTest, AdoptingWhatIsNotAListeningUnixSocketIsAnError) {
    auto [a, b] = UnixSocket::pair(SocketType::stream);
    try {
        (void)UnixListener::adopt(Fd(::dup(a.fd().get())));
        ADD_FAILURE() << "a connected socket was adopted as a listener";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
        EXPECT_NE(std::string(e.what()).find("is not listening"), std::string::npos) << e.what();
    }
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    Fd keep(fds[1]);
    EXPECT_THROW((void)UnixListener::adopt(Fd(fds[0])), Error);  // not a socket at all
}

TEST(UnixListenerTest, AcceptTimesOutAsAValue) {
    auto listener = UnixListener::bind(unique_abstract(), SocketType::stream);
    EXPECT_FALSE(listener.accept(Deadline::after(20ms)).has_value());
    EXPECT_FALSE(listener.accept(Deadline::immediate()).has_value());
}

TEST(UnixListenerTest, ConnectTimesOutWhileTheBacklogIsFull) {
    const auto address = unique_abstract();
    auto listener = UnixListener::bind(address, SocketType::stream, 0600, 0);  // never accepts
    std::vector<UnixSocket> queued;
    bool timed_out = false;
    for (int i = 0; i < 16 && !timed_out; ++i) {
        try {
            queued.push_back(UnixSocket::connect(address, SocketType::stream, Deadline::after(50ms)));
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::timed_out) << e.what();
            EXPECT_NE(std::string(e.what()).find("backlog"), std::string::npos) << e.what();
            timed_out = true;
        }
    }
    EXPECT_TRUE(timed_out) << queued.size() << " connections were queued and none timed out";
}

// ---------------------------------------------------------------------------------------------
// Connected sockets: messages, truncation, dead peers

TEST(UnixSocketTest, StreamEchoesBetweenProcesses) {
    const auto address = unique_abstract();
    auto listener = UnixListener::bind(address, SocketType::stream);
    auto child = test::spawn([&] {
        auto peer = listener.accept(Deadline::after(30s));
        if (!peer) return 1;
        std::array<std::byte, 256> buffer;
        for (;;) {
            const auto r = peer->recv(buffer, Deadline::after(30s));
            if (r.status == Status::closed) return 0;
            if (!r.ok() || !peer->send(std::span(buffer).first(r.bytes)).ok()) return 2;
        }
    });
    auto socket = UnixSocket::connect(address, SocketType::stream, Deadline::after(30s));
    const std::string message = "hello through a unix stream";
    ASSERT_TRUE(socket.send(as_bytes(message), Deadline::after(30s)).ok());
    std::vector<std::byte> echo(message.size());
    ASSERT_EQ(read_exact(socket.fd().get(), echo, Deadline::after(30s), "echo").status, Status::ok);
    EXPECT_EQ(text_of(echo, echo.size()), message);
    socket.shutdown_write();
    EXPECT_EQ(child.wait(), 0);
}

TEST(UnixSocketTest, SeqpacketKeepsMessageBoundaries) {
    auto [parent, child_end] = UnixSocket::pair(SocketType::seqpacket);
    const std::vector<std::size_t> sizes = {1, 1000, 5, 70000};
    auto child = test::spawn([&, &child_end = child_end] {
        for (std::size_t size : sizes) {
            const std::vector<std::byte> message(size, std::byte{'m'});
            if (!child_end.send(message, Deadline::after(30s)).ok()) return 1;
        }
        return 0;
    });
    { const auto dropped = std::move(child_end); }  // the child holds the only copy of its end
    std::vector<std::byte> buffer(100000);
    for (std::size_t size : sizes) {
        const auto r = parent.recv(buffer, Deadline::after(30s));
        ASSERT_TRUE(r.ok()) << to_string(r.status);
        EXPECT_EQ(r.bytes, size);
    }
    EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(parent.recv(buffer, Deadline::after(30s)).status, Status::closed);
    EXPECT_THROW((void)parent.send({}), Error);  // an empty seqpacket message would read as EOF
}

TEST(UnixSocketTest, TruncatedDatagramIsReportedNeverPassedOffAsWhole) {
    for (SocketType type : {SocketType::datagram, SocketType::seqpacket}) {
        SCOPED_TRACE(std::string(to_string(type)));
        auto [a, b] = UnixSocket::pair(type);
        const std::vector<std::byte> big(100, std::byte{'b'});
        ASSERT_TRUE(a.send(big).ok());
        ASSERT_TRUE(a.send(as_bytes("next")).ok());
        const auto size = b.next_message_size(Deadline::after(5s));
        ASSERT_TRUE(size.ok());
        EXPECT_EQ(size.bytes, 100u);  // peeking leaves it queued
        std::array<std::byte, 10> small;
        try {
            (void)b.recv(small, Deadline::after(5s));
            FAIL() << "a truncated message was returned as whole";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::message_size);
            const std::string what = e.what();
            EXPECT_NE(what.find("100 bytes"), std::string::npos) << what;
            EXPECT_NE(what.find("10-byte"), std::string::npos) << what;
        }
        const auto r = b.recv(small, Deadline::after(5s));
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(text_of(small, r.bytes), "next");
    }
}

TEST(UnixSocketTest, PeerKilledMidMessageGivesClosedNotAHang) {
    auto [parent, child_end] = UnixSocket::pair(SocketType::stream);
    auto child = test::spawn([&, &child_end = child_end] {
        (void)child_end.send(as_bytes("half of a rec"));  // 13 of the 26 bytes the parent awaits
        ::pause();
        return 0;
    });
    { const auto dropped = std::move(child_end); }
    std::array<std::byte, 13> first;
    ASSERT_EQ(read_exact(parent.fd().get(), first, Deadline::after(30s), "first half").status, Status::ok);
    child.kill(SIGKILL);
    std::array<std::byte, 13> rest;
    const auto r = read_exact(parent.fd().get(), rest, Deadline::never(), "second half");
    EXPECT_EQ(r.status, Status::closed);
    EXPECT_EQ(r.bytes, 0u);
    EXPECT_EQ(parent.recv(rest).status, Status::closed);
    // Sending to the dead peer is a value too: no SIGPIPE.
    const std::vector<std::byte> lots(1 << 20, std::byte{1});
    EXPECT_EQ(parent.send(lots).status, Status::closed);
    EXPECT_EQ(child.wait(), -SIGKILL);
}

TEST(UnixSocketTest, PeerKilledWhileWeSendGivesClosed) {
    auto [parent, child_end] = UnixSocket::pair(SocketType::seqpacket);
    auto child = test::spawn([&, &child_end = child_end] {
        std::array<std::byte, 16> buffer;
        (void)child_end.recv(buffer);  // one message, then it sleeps until killed
        ::pause();
        return 0;
    });
    { const auto dropped = std::move(child_end); }
    ASSERT_TRUE(parent.send(as_bytes("wake"), Deadline::after(30s)).ok());
    child.kill(SIGKILL);
    EXPECT_EQ(child.wait(), -SIGKILL);
    Status status = Status::ok;
    for (int i = 0; i < 100000 && status == Status::ok; ++i)
        status = parent.send(as_bytes("x")).status;
    EXPECT_EQ(status, Status::closed);
    std::array<std::byte, 16> buffer;
    EXPECT_EQ(parent.recv(buffer, Deadline::after(30s)).status, Status::closed);
}

// A datagram socket has no connection to lose: sending to a closed peer is `closed`, but a
// receiver only learns of it through its deadline (documented in docs/sockets.md).
TEST(UnixSocketTest, ConnectedDatagramPeerGoneIsClosedForTheSender) {
    auto [a, b] = UnixSocket::pair(SocketType::datagram);
    { const auto dropped = std::move(b); }
    EXPECT_EQ(a.send(as_bytes("anyone?")).status, Status::closed);
    std::array<std::byte, 8> buffer;
    EXPECT_EQ(a.recv(buffer, Deadline::after(20ms)).status, Status::timed_out);
}

TEST(UnixSocketTest, RecvTimesOutOrWouldBlockAsValues) {
    auto [a, b] = UnixSocket::pair(SocketType::stream);
    std::array<std::byte, 8> buffer;
    EXPECT_EQ(b.recv(buffer, Deadline::after(20ms)).status, Status::timed_out);
    EXPECT_EQ(b.recv(buffer, Deadline::immediate()).status, Status::would_block);
    b.set_nonblocking(true);
    EXPECT_EQ(b.recv(buffer, Deadline::immediate()).status, Status::would_block);
    ASSERT_TRUE(a.send(as_bytes("hi")).ok());
    const auto r = b.recv(buffer);  // non-blocking socket and Deadline::never: waits, then reads
    EXPECT_EQ(text_of(buffer, r.bytes), "hi");
}

// ---------------------------------------------------------------------------------------------
// Credentials

TEST(UnixSocketTest, PeerCredentialsNameTheConnectingChild) {
    const auto address = unique_abstract();
    auto listener = UnixListener::bind(address, SocketType::seqpacket);
    auto child = test::spawn([&] {
        auto socket = UnixSocket::connect(address, SocketType::seqpacket, Deadline::after(30s));
        std::array<std::byte, 4> buffer;
        (void)socket.recv(buffer, Deadline::after(30s));  // stay until the parent has looked
        const auto server = socket.peer_credentials();
        return server.pid == ::getppid() ? 0 : 1;
    });
    auto peer = listener.accept(Deadline::after(30s));
    ASSERT_TRUE(peer.has_value());
    const PeerCredentials who = peer->peer_credentials();
    EXPECT_EQ(who.pid, child.pid());
    EXPECT_EQ(who.uid, ::getuid());
    EXPECT_EQ(who.gid, ::getgid());
    ASSERT_TRUE(peer->send(as_bytes("done")).ok());
    EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(UnixSocket::pair(SocketType::stream).first.peer_credentials().pid, ::getpid());
}

// ---------------------------------------------------------------------------------------------
// Descriptor passing

TEST(UnixSocketTest, DescriptorsOpenedAfterForkReachTheOtherProcess) {
    for (SocketType type : {SocketType::stream, SocketType::seqpacket, SocketType::datagram}) {
        SCOPED_TRACE(std::string(to_string(type)));
        auto [parent, child_end] = UnixSocket::pair(type);
        auto child = test::spawn([&, &child_end = child_end] {
            // Opened after fork: the parent can only get these through the socket.
            Fd memfd(::memfd_create("ipckit-test", MFD_CLOEXEC));
            if (!memfd || ::write(memfd.get(), "in a memfd", 10) != 10) return 1;
            int pipe_fds[2];
            if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return 2;
            Fd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
            if (::write(write_end.get(), "in a pipe", 9) != 9) return 3;
            const std::array<int, 2> fds{memfd.get(), read_end.get()};
            return child_end.send_with_fds(as_bytes("two fds"), fds, Deadline::after(30s)).ok() ? 0 : 4;
        });
        { const auto dropped = std::move(child_end); }
        std::array<std::byte, 64> buffer;
        FdMessage message = parent.recv_with_fds(buffer, 4, Deadline::after(30s));
        ASSERT_TRUE(message.io.ok()) << to_string(message.io.status);
        EXPECT_EQ(text_of(buffer, message.io.bytes), "two fds");
        ASSERT_EQ(message.fds.size(), 2u);
        EXPECT_FALSE(message.fds[0].inheritable());  // MSG_CMSG_CLOEXEC
        char text[16] = {};
        ASSERT_EQ(::pread(message.fds[0].get(), text, 10, 0), 10);
        EXPECT_EQ(std::string(text, 10), "in a memfd");
        ASSERT_EQ(::read(message.fds[1].get(), text, 9), 9);
        EXPECT_EQ(std::string(text, 9), "in a pipe");
        EXPECT_EQ(child.wait(), 0);
    }
}

TEST(UnixSocketTest, MoreDescriptorsThanTheBufferHoldsIsAnErrorAndNoneLeak) {
    for (SocketType type : {SocketType::stream, SocketType::seqpacket, SocketType::datagram}) {
        SCOPED_TRACE(std::string(to_string(type)));
        auto [parent, child_end] = UnixSocket::pair(type);
        auto child = test::spawn([&, &child_end = child_end] {
            std::vector<Fd> owned;
            std::vector<int> fds;
            for (int i = 0; i < 5; ++i) {
                owned.emplace_back(::memfd_create("ipckit-test", MFD_CLOEXEC));
                fds.push_back(owned.back().get());
            }
            return child_end.send_with_fds(as_bytes("five"), fds, Deadline::after(30s)).ok() ? 0 : 1;
        });
        { const auto dropped = std::move(child_end); }
        ASSERT_EQ(child.wait(), 0);
        const std::size_t before = open_descriptor_count();
        std::array<std::byte, 16> buffer;
        try {
            (void)parent.recv_with_fds(buffer, 2, Deadline::after(30s));
            FAIL() << "truncated descriptors were not reported";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::message_size);
            EXPECT_NE(std::string(e.what()).find("max_fds (2)"), std::string::npos) << e.what();
        }
        EXPECT_EQ(open_descriptor_count(), before);
    }
}

TEST(UnixSocketTest, DescriptorsOnATruncatedMessageAreClosed) {
    auto [a, b] = UnixSocket::pair(SocketType::datagram);
    Fd memfd(::memfd_create("ipckit-test", MFD_CLOEXEC));
    const std::array<int, 1> fds{memfd.get()};
    ASSERT_TRUE(a.send_with_fds(as_bytes("a message too long"), fds).ok());
    const std::size_t before = open_descriptor_count();
    std::array<std::byte, 4> small;
    EXPECT_THROW((void)b.recv_with_fds(small, 1, Deadline::after(5s)), Error);
    EXPECT_EQ(open_descriptor_count(), before);
}

TEST(UnixSocketTest, BadDescriptorListsAreErrors) {
    auto [a, b] = UnixSocket::pair(SocketType::stream);
    const std::vector<int> too_many(max_fds_per_message + 1, 0);
    EXPECT_THROW((void)a.send_with_fds(as_bytes("x"), too_many), Error);
    const std::array<int, 1> one{0};
    EXPECT_THROW((void)a.send_with_fds({}, one), Error);  // a stream needs a byte to carry them
    const std::array<int, 1> closed{987654};
    EXPECT_THROW((void)a.send_with_fds(as_bytes("x"), closed), Error);
}

// ---------------------------------------------------------------------------------------------
// Readiness

TEST(UnixSocketTest, EpollReportsReadableSocketsAndListeners) {
    const auto address = unique_abstract();
    auto listener = UnixListener::bind(address, SocketType::stream);
    Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
    ASSERT_TRUE(epoll.valid());
    epoll_event listen_event{EPOLLIN, {.u32 = 1}};
    ASSERT_EQ(::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, listener.fd().get(), &listen_event), 0);
    epoll_event ready{};
    EXPECT_EQ(::epoll_wait(epoll.get(), &ready, 1, 0), 0);

    auto child = test::spawn([&] {
        auto socket = UnixSocket::connect(address, SocketType::stream, Deadline::after(30s));
        std::array<std::byte, 1> go;
        if (socket.recv(go, Deadline::after(30s)).status != Status::ok) return 1;
        return socket.send(as_bytes("ready"), Deadline::after(30s)).ok() ? 0 : 2;
    });
    ASSERT_EQ(::epoll_wait(epoll.get(), &ready, 1, 30000), 1);
    EXPECT_EQ(ready.data.u32, 1u);
    auto peer = listener.accept(Deadline::immediate());
    ASSERT_TRUE(peer.has_value());
    peer->set_nonblocking(true);
    epoll_event peer_event{EPOLLIN, {.u32 = 2}};
    ASSERT_EQ(::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, peer->fd().get(), &peer_event), 0);
    EXPECT_EQ(::epoll_wait(epoll.get(), &ready, 1, 0), 0);
    std::array<std::byte, 8> buffer;
    EXPECT_EQ(peer->recv(buffer, Deadline::immediate()).status, Status::would_block);
    ASSERT_TRUE(peer->send(as_bytes("g")).ok());
    ASSERT_EQ(::epoll_wait(epoll.get(), &ready, 1, 30000), 1);
    EXPECT_EQ(ready.data.u32, 2u);
    std::string got;
    while (got.size() < 5) {
        const auto r = peer->recv(buffer, Deadline::after(30s));
        ASSERT_TRUE(r.ok());
        got += text_of(buffer, r.bytes);
    }
    EXPECT_EQ(got, "ready");
    EXPECT_EQ(child.wait(), 0);
}

// ---------------------------------------------------------------------------------------------
// Datagram sockets by address

TEST(UnixDatagramTest, BoundServerAnswersAnAutoboundClient) {
    test::TempDir dir;
    const auto address = UnixAddress::path(dir.file("dgram"));
    auto server = UnixDatagram::bind(address);
    EXPECT_EQ(file_mode(address.name()) & 07777, 0600u);
    auto child = test::spawn([&] {
        auto client = UnixDatagram::autobind();
        if (!client.send_to(as_bytes("question"), address, Deadline::after(30s)).ok()) return 1;
        std::array<std::byte, 32> buffer;
        const auto answer = client.recv_from(buffer, Deadline::after(30s));
        if (!answer.io.ok() || text_of(buffer, answer.io.bytes) != "answer") return 2;
        return answer.from == address ? 0 : 3;
    });
    std::array<std::byte, 32> buffer;
    const auto question = server.recv_from(buffer, Deadline::after(30s));
    ASSERT_TRUE(question.io.ok());
    EXPECT_EQ(text_of(buffer, question.io.bytes), "question");
    ASSERT_TRUE(question.from.has_value());
    EXPECT_TRUE(question.from->is_abstract());
    ASSERT_TRUE(server.send_to(as_bytes("answer"), *question.from, Deadline::after(30s)).ok());
    EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(server.local_address(), address);
}

TEST(UnixDatagramTest, StaleFileIsReplacedAndSendingToNobodyGivesClosed) {
    test::TempDir dir;
    const auto address = UnixAddress::path(dir.file("dgram"));
    UnixDatagram::bind(address).keep();  // closed at once: its file is now stale
    auto sender = UnixDatagram::unnamed();
    EXPECT_EQ(sender.send_to(as_bytes("anyone?"), address, Deadline::after(5s)).status, Status::closed);
    auto server = UnixDatagram::bind(address);
    EXPECT_TRUE(sender.send_to(as_bytes("anyone?"), address, Deadline::after(5s)).ok());
    std::array<std::byte, 3> small;
    EXPECT_THROW((void)server.recv_from(small, Deadline::after(5s)), Error);  // 7 bytes into 3
    EXPECT_EQ(server.recv_from(small, Deadline::after(20ms)).io.status, Status::timed_out);
}

TEST(UnixDatagramTest, ConnectedDatagramSocketSendsToABoundServer) {
    const auto address = unique_abstract();
    auto server = UnixDatagram::bind(address);
    auto child = test::spawn([&] {
        auto socket = UnixSocket::connect(address, SocketType::datagram, Deadline::after(30s));
        return socket.send(as_bytes("connected datagram"), Deadline::after(30s)).ok() ? 0 : 1;
    });
    std::array<std::byte, 64> buffer;
    const auto got = server.recv_from(buffer, Deadline::after(30s));
    ASSERT_TRUE(got.io.ok());
    EXPECT_EQ(text_of(buffer, got.io.bytes), "connected datagram");
    EXPECT_FALSE(got.from.has_value());  // an unnamed sender cannot be answered
    EXPECT_EQ(child.wait(), 0);
}

TEST(UnixDatagramTest, FullReceiverQueueTimesOutAsAValue) {
    const auto address = unique_abstract();
    auto server = UnixDatagram::bind(address);  // never reads
    auto sender = UnixDatagram::unnamed();
    Status status = Status::ok;
    for (int i = 0; i < 100000 && status == Status::ok; ++i)
        status = sender.send_to(as_bytes("fill"), address, Deadline::after(20ms)).status;
    EXPECT_EQ(status, Status::timed_out);
    EXPECT_EQ(sender.send_to(as_bytes("fill"), address, Deadline::immediate()).status, Status::would_block);
}

}  // namespace
}  // namespace ipckit
