// Other users stay out: a child that drops to `nobody` (uid 65534) tries to open every
// transport's objects that this test created, as sender and as receiver. Each attempt must be
// refused with an Error naming the object, and afterwards the objects carry messages between
// their rightful owners as before, with nothing injected or taken.
//
// An abstract socket (unix:@, unix+seqpacket:@, shm:@, topic:@) is checked both ways, and the
// opener's own check refuses first; FaultsUsersServerTest shows the server's check alone: its
// intruder connects to the socket itself, skipping the opener's check, and must be hung up on.
//
// Not covered, by design: tcp (a port has no owner; use a firewall or a Unix socket) and an
// abstract unix+dgram name (a datagram has no connection to check; use a path, whose 0600
// file mode keeps others out, as the unix_dgram case here does).
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <new>
#include <ostream>
#include <string>
#include <thread>

#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/unix_socket.hpp"
#include "support/process.hpp"
#include "support/transports.hpp"

namespace ipckit {
namespace {

[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

class FaultsUsersTest : public ::testing::TestWithParam<test::TransportCase> {};

// The name an error must quote: the address's target (path, /NAME, @NAME or key), options left out.
std::string object_of(const std::string& address) {
    const auto colon = address.find(':');
    const auto options = address.find('?', colon);
    return address.substr(colon + 1, options == std::string::npos ? std::string::npos : options - colon - 1);
}

// The rightful pair still talks: a sender of this uid reaches `receiver` at `address`.
void expect_owner_still_talks(Receiver& receiver, const std::string& address) {
    auto sender = test::spawn([&] {
        Sender tx = Sender::open(address, Deadline::after(10s));
        return tx.send(as_bytes("owner"), Deadline::after(10s)).ok() ? 0 : 1;
    });
    std::vector<std::byte> message;
    ASSERT_EQ(receiver.recv(message, Deadline::after(10s)).status, Status::ok) << address;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(message.data()), message.size()), "owner");
    EXPECT_EQ(sender.wait(30s), 0);
}

TEST_P(FaultsUsersTest, AnotherUserIsRefusedWithAnErrorNamingTheObjectAndChangesNothing) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root, to setuid a child to nobody (uid 65534)";
    if (GetParam().name == "tcp") GTEST_SKIP() << "a TCP port has no owner to check (see the file's comment)";
    test::TempDir dir;
    // The directory itself lets others through, so what refuses them is the object's own mode.
    ::chmod(dir.path().c_str(), 0755);
    const std::string address = GetParam().address(dir);
    Receiver receiver = Receiver::create(address);

    auto intruder = test::spawn([&] {
        if (::setgroups(0, nullptr) != 0 || ::setgid(kNogroup) != 0 || ::setuid(kNobody) != 0) return 90;
        const std::string object = object_of(address);
        int refused = 0;
        for (int attempt = 0; attempt < 2; ++attempt) {
            try {
                if (attempt == 0) {
                    Sender sender = Sender::open(address, Deadline::after(300ms));
                    (void)sender.try_send(as_bytes("intruder"));
                } else {
                    Receiver other = Receiver::open(address, Deadline::after(300ms));
                    std::vector<std::byte> message;
                    (void)other.try_recv(message);
                }
                std::fprintf(stderr, "%s: uid %d was let in (%s)\n", address.c_str(), kNobody,
                             attempt == 0 ? "sender" : "receiver");
            } catch (const Error& e) {
                if (std::string(e.what()).find(object) == std::string::npos) {
                    std::fprintf(stderr, "%s: refused without naming it: %s\n", address.c_str(), e.what());
                } else {
                    ++refused;
                }
            }
        }
        return refused == 2 ? 0 : 1;
    });
    EXPECT_EQ(intruder.wait(30s), 0) << address;

    // Nothing was injected...
    std::vector<std::byte> message;
    if (!GetParam().connectionless) {
        EXPECT_EQ(receiver.recv(message, Deadline::after(100ms)).status, Status::timed_out) << address;
    }
    // ...and the rightful pair still talks.
    expect_owner_still_talks(receiver, address);
}

INSTANTIATE_TEST_SUITE_P(Transports, FaultsUsersTest, ::testing::ValuesIn(test::all_transports()),
                         [](const auto& param_info) { return param_info.param.name; });

// ---- the server's own check ----------------------------------------------------------------

// An abstract-socket transport and the socket type its server accepts on.
struct ServerCase {
    std::string name;
    std::string scheme;  // the address without the name: "unix:@" …
    SocketType type;
    bool serves_memory;  // shm:@, topic:@: the server thread sends the memfd to whoever it accepts
};

void PrintTo(const ServerCase& server, std::ostream* out) {
    *out << server.name;
}

class FaultsUsersServerTest : public ::testing::TestWithParam<ServerCase> {};

// What the intruder saw, for the parent: written by the child, read after it ended.
struct Seen {
    std::atomic<int> done;
    char text[512];
};

bool drop_to_nobody() {
    return ::setgroups(0, nullptr) == 0 && ::setgid(kNogroup) == 0 && ::setuid(kNobody) == 0;
}

// Connects to @NAME as `nobody` without ipckit's opener (so without its check of the server's
// uid) and waits, bounded, for what the server does: only the server's own check can refuse.
// 0: hung up on, with nothing sent; 1: let in (sent something, or kept the connection open).
int raw_intruder(const ServerCase& server, const std::string& name, Seen& seen) {
    auto say = [&](const std::string& text) {
        std::snprintf(seen.text, sizeof seen.text, "%s", text.c_str());
    };
    if (!drop_to_nobody()) return 90;
    UnixSocket socket = UnixSocket::connect(UnixAddress::abstract(name), server.type, Deadline::after(10s));
    if (const uid_t uid = socket.peer_credentials().uid; uid == ::geteuid()) {
        say("the server runs as the intruder's uid: nothing to refuse");
        return 2;
    }
    std::byte buffer[64];
    const FdMessage got = socket.recv_with_fds(buffer, 1, Deadline::after(10s));
    if (got.io.status == Status::closed && got.fds.empty()) {
        say("hung up on");
        return 0;
    }
    say(got.io.status == Status::timed_out ? "the connection was kept open for 10 s (accepted)"
                                           : "received " + std::to_string(got.io.bytes) + " bytes and " +
                                                 std::to_string(got.fds.size()) + " descriptor(s)");
    return 1;
}

TEST_P(FaultsUsersServerTest, AnotherUsersConnectionIsDroppedByTheServerItself) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root, to setuid a child to nobody (uid 65534)";
    const ServerCase& server = GetParam();
    const std::string name = test::unique_name("ipckit-test");
    const std::string address = server.scheme + name;
    Receiver receiver = Receiver::create(address);
    auto region = Mapping::anonymous_shared(4096);
    Seen& seen = *::new (region.bytes().data()) Seen{};

    if (server.serves_memory) {
        // The same connection from this uid is served the memory: what refuses the intruder
        // below is the uid, not the way it connects.
        UnixSocket own = UnixSocket::connect(UnixAddress::abstract(name), server.type, Deadline::after(10s));
        std::byte buffer[64];
        const FdMessage got = own.recv_with_fds(buffer, 1, Deadline::after(10s));
        ASSERT_EQ(got.io.status, Status::ok) << address;
        EXPECT_EQ(got.fds.size(), 1u) << address << ": the owner's raw connection got no memory";
    }

    auto intruder = test::spawn([&] {
        const int result = raw_intruder(server, name, seen);
        seen.done.store(1);
        return result;
    });
    // A stream or seqpacket receiver accepts while it receives: it receives (in slices, bounded)
    // until the intruder has its answer, and gets nothing. shm:@ and topic:@ answer from the
    // creator's own thread.
    std::vector<std::byte> message;
    for (int slice = 0; !server.serves_memory && slice < 400 && seen.done.load() == 0; ++slice) {
        ASSERT_EQ(receiver.recv(message, Deadline::after(50ms)).status, Status::timed_out)
            << address << ": the receiver took up the intruder's connection";
    }
    EXPECT_EQ(intruder.wait(30s), 0) << address << ": uid " << kNobody << " " << seen.text;

    expect_owner_still_talks(receiver, address);
}

INSTANTIATE_TEST_SUITE_P(Abstract, FaultsUsersServerTest,
                         ::testing::Values(ServerCase{"unix_abstract", "unix:@", SocketType::stream, false},
                                           ServerCase{"unix_seqpacket", "unix+seqpacket:@",
                                                      SocketType::seqpacket, false},
                                           ServerCase{"shm_memfd", "shm:@", SocketType::seqpacket, true},
                                           ServerCase{"topic_memfd", "topic:@", SocketType::seqpacket, true}),
                         [](const auto& param_info) { return param_info.param.name; });

// The opener's message when the server refuses it: a creator that changed its uid after it
// bound the socket (the socket still says the old uid, so the opener's check passes) serves
// only its new uid, and an opener of the old one hears "the creator refused this process".
TEST(FaultsUsersServerTest, AnOpenerTheServerRefusesIsToldSoNamingTheObject) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root, to setuid a child to nobody (uid 65534)";
    for (const std::string scheme : {"shm:@", "topic:@"}) {
        const std::string address = scheme + test::unique_name("ipckit-test");
        auto region = Mapping::anonymous_shared(4096);
        Seen& seen = *::new (region.bytes().data()) Seen{};
        auto creator = test::spawn([&] {
            Receiver receiver = Receiver::create(address);
            // setuid(2) in glibc changes every thread's uid, the server thread's too.
            if (!drop_to_nobody()) return 90;
            seen.done.store(1);
            while (seen.done.load() != 2)
                std::this_thread::sleep_for(1ms);  // held until the opener is done
            return 0;
        });
        for (int slice = 0; slice < 10000 && seen.done.load() == 0; ++slice)
            std::this_thread::sleep_for(1ms);
        ASSERT_EQ(seen.done.load(), 1) << address << ": the creator did not start";
        std::string error;
        try {
            Sender sender = Sender::open(address, Deadline::after(10s));
        } catch (const Error& e) {
            error = e.what();
        }
        seen.done.store(2);
        EXPECT_EQ(creator.wait(30s), 0) << address;
        EXPECT_NE(error.find("the creator refused this process"), std::string::npos)
            << address << ": " << error;
        EXPECT_NE(error.find(address), std::string::npos) << address << ": " << error;
    }
}

}  // namespace
}  // namespace ipckit
