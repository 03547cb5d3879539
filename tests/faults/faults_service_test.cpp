// Services under SIGKILL, round after round on the same address (docs/services.md, "Failures"):
//   - a server killed mid-call turns every call in flight into `closed` (never timed_out: the
//     deadline is far), a new server takes the name over with no `ipckit rm`, and the same
//     client's next call works;
//   - a client killed mid-call never blocks the server: its reply returns `closed` and is
//     counted, and its slot is taken over by the next client;
//   - a server killed when no holder could take service:@NAME over at once: its successor makes
//     new memory, and the client calls it there;
//   - a server in a PID namespace of its own (as a container's) with a client on the host.
// Each test ends with nothing in /dev/shm.
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/io.hpp"
#include "ipckit/poll_set.hpp"
#include "ipckit/service.hpp"
#include "ipckit/unix_socket.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;

constexpr int kRounds = 5;
// Far longer than a survivor takes to see a death (the kernel marks it at once): a call that
// ends timed_out instead of closed did not see the death.
constexpr auto kHangLimit = 30s;

std::string text(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string upper(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

// A pipe one process writes a byte to when it reached a point the other waits for.
struct Signal {
    Fd read_end, write_end;
    Signal() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
        read_end.reset(fds[0]);
        write_end.reset(fds[1]);
    }
    void raise() const {
        const char byte = 1;
        (void)!::write(write_end.get(), &byte, 1);
    }
    // True when a byte came within `limit`.
    [[nodiscard]] bool wait(std::chrono::milliseconds limit) const {
        pollfd p{read_end.get(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(limit.count())) != 1) return false;
        char byte = 0;
        return ::read(read_end.get(), &byte, 1) == 1;
    }
};

// Serves: answers `answer` requests, then takes `hold` more without answering, says so on
// `held`, and waits to be killed.
int serve_then_hold(const std::string& address, int answer, int hold, const Signal& held) {
    Server server = Server::create(address);
    Request request;
    for (int i = 0; i < answer; ++i) {
        if (!server.recv(request, Deadline::after(kHangLimit)).ok()) return 2;
        if (!server.reply(request.handle, as_bytes(upper(text(request.message)))).ok()) return 3;
    }
    std::vector<Request> held_requests(static_cast<std::size_t>(hold));
    for (auto& r : held_requests)
        if (!server.recv(r, Deadline::after(kHangLimit)).ok()) return 4;
    held.raise();
    ::pause();
    return 5;
}

// True once some process serves the abstract name `name` (bounded by kHangLimit).
bool served(const std::string& name) {
    const auto limit = std::chrono::steady_clock::now() + kHangLimit;
    while (std::chrono::steady_clock::now() < limit) {
        try {
            (void)UnixSocket::connect(UnixAddress::abstract(name), SocketType::seqpacket,
                                      Deadline::after(1s));
            return true;
        } catch (const Error&) {
            std::this_thread::sleep_for(1ms);
        }
    }
    return false;
}

bool in_dev_shm(const std::string& name) {
    return std::filesystem::exists("/dev/shm/" + name);
}

class ServiceFaultsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ServiceFaultsTest, AServerKilledMidCallEndsEveryCallInFlightClosedAndASuccessorTakesOver) {
    const std::string name = test::unique_name("ipckit-svc");
    const std::string address = "service:" + GetParam() + name;
    const bool posix = GetParam() == "/";
    Client client = Client::open(address);
    std::vector<std::byte> response;
    for (int round = 0; round < kRounds; ++round) {
        Signal held;
        auto server = test::spawn([&] { return serve_then_hold(address, 1, 3, held); });
        // The client that outlived the last server calls the new one.
        const std::string ask = "round " + std::to_string(round);
        ASSERT_EQ(client.call(as_bytes(ask), response, Deadline::after(kHangLimit)).status, Status::ok)
            << ask;
        EXPECT_EQ(text(response), upper(ask));
        const auto first = client.start(as_bytes("first"), Deadline::after(kHangLimit));
        const auto second = client.start(as_bytes("second"), Deadline::after(kHangLimit));
        ASSERT_TRUE(first.ok() && second.ok());
        // Another client, in its own process, asleep on the same server (the kernel wakes one
        // sleeper at a death: the others must be woken too).
        auto other = test::spawn([&] {
            Client another = Client::open(address);
            std::vector<std::byte> answer;
            // No deadline: a wake-up that never comes hangs it, and other.wait() fails the test.
            const IoResult r = another.call(as_bytes("other"), answer, Deadline::never());
            return r.status == Status::closed ? 0 : 10 + static_cast<int>(r.status);
        });
        // The kill comes while this thread sleeps in wait().
        std::thread killer([&] {
            if (held.wait(kHangLimit)) server.kill(SIGKILL);
        });
        // Every other round waits in a PollSet: the death wakes it too (the server's pidfd).
        if (round % 2 == 1) {
            PollSet set;
            set.add(client);
            EXPECT_FALSE(set.wait(Deadline::after(kHangLimit)).empty()) << "round " << round;
        }
        const Status a = client.wait(first.call, response, Deadline::after(kHangLimit)).status;
        const Status b = client.wait(second.call, response, Deadline::after(kHangLimit)).status;
        killer.join();
        EXPECT_EQ(a, Status::closed) << "round " << round;
        EXPECT_EQ(b, Status::closed) << "round " << round;
        EXPECT_EQ(server.wait(), -SIGKILL);
        EXPECT_EQ(other.wait(kHangLimit), 0)
            << "round " << round << ": the other client's call did not end closed";
        if (posix) {
            EXPECT_TRUE(in_dev_shm(name)) << "a dead server's region stays for its successor";
        } else {
            // The survivors serve the name before the next server comes. One that came while
            // none did yet (a survivor's thread kept off the CPU all along) would make new memory
            // and count no takeover: ServiceFaultsMemfd tests that case on its own.
            EXPECT_TRUE(served(name)) << "round " << round << ": nobody serves the name";
        }
    }
    // The last successor, here: a takeover of every dead server's region, counted.
    {
        Server server = Server::create(address);
        // service:@NAME too: the client kept the dead servers' memfd served.
        EXPECT_EQ(server.counts().takeovers, static_cast<std::uint64_t>(kRounds));
        auto caller = test::spawn([&] {
            Client other = Client::open(address);
            std::vector<std::byte> answer;
            return other.call(as_bytes("last"), answer, Deadline::after(kHangLimit)).ok() &&
                           text(answer) == "LAST"
                       ? 0
                       : 2;
        });
        Request request;
        ASSERT_EQ(server.recv(request, Deadline::after(kHangLimit)).status, Status::ok);
        ASSERT_EQ(server.reply(request.handle, as_bytes(upper(text(request.message)))).status, Status::ok);
        EXPECT_EQ(caller.wait(), 0);
    }
    EXPECT_FALSE(in_dev_shm(name));
}

TEST_P(ServiceFaultsTest, AClientKilledMidCallNeverBlocksTheServerAndItsReplyIsDroppedAndCounted) {
    const std::string name = test::unique_name("ipckit-svc");
    const std::string address = "service:" + GetParam() + name + "?clients=2";
    Server server = Server::create(address);
    Request request;
    for (int round = 0; round < kRounds; ++round) {
        auto client = test::spawn([&] {
            Client doomed = Client::open(address);
            std::vector<std::byte> response;
            (void)doomed.call(as_bytes("never answered"), response, Deadline::after(kHangLimit));
            return 2;
        });
        ASSERT_EQ(server.recv(request, Deadline::after(kHangLimit)).status, Status::ok);
        client.kill(SIGKILL);
        EXPECT_EQ(client.wait(), -SIGKILL);
        EXPECT_EQ(server.reply(request.handle, as_bytes("too late")).status, Status::closed)
            << "round " << round;
        EXPECT_EQ(server.counts().replies_dropped, static_cast<std::uint64_t>(round + 1));
    }
    // Two slots, five dead clients: the next client takes a dead one's slot and is answered.
    auto client = test::spawn([&] {
        Client alive = Client::open(address);
        std::vector<std::byte> response;
        return alive.call(as_bytes("alive"), response, Deadline::after(kHangLimit)).ok() &&
                       text(response) == "ALIVE"
                   ? 0
                   : 2;
    });
    ASSERT_EQ(server.recv(request, Deadline::after(kHangLimit)).status, Status::ok);
    EXPECT_EQ(server.reply(request.handle, as_bytes(upper(text(request.message)))).status, Status::ok);
    EXPECT_EQ(client.wait(), 0);
    const ServerCounts counts = server.counts();
    EXPECT_EQ(counts.calls, static_cast<std::uint64_t>(kRounds + 1));
    EXPECT_EQ(counts.replies, 1u);
    server.close();
    EXPECT_FALSE(in_dev_shm(name));
}

INSTANTIATE_TEST_SUITE_P(Addresses, ServiceFaultsTest, ::testing::Values("/", "@"),
                         [](const auto& test_info) { return test_info.param == "/" ? "shm" : "memfd"; });

// As `unshare --pid --fork --mount-proc`: the server is pid 1 of a PID namespace of its own, and
// dies with the process that made it (PR_SET_PDEATHSIG), as `--kill-child` does.
int in_pid_namespace(const std::function<int()>& body) {
    if (::unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) return 90;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 91;
    const pid_t pid = ::fork();
    if (pid < 0) return 92;
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) ::_exit(93);
        int code = 99;
        try {
            code = body();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "namespaced server: %s\n", e.what());
        }
        ::_exit(code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// service:@NAME is served on its abstract name by whoever holds the memory. A server killed
// while no holder can take the name over at once (the client is stopped, here) leaves the name
// free, and the next server makes new memory under it. The client, resumed, finds the name
// serving other memory and calls the new server: it used to wait on the old memory for a server
// that could never come, and time out (5 runs in 350 of the kill test above, before the fix).
TEST(ServiceFaultsMemfd, AClientWhoseServerWasSucceededInNewMemoryCallsTheNewServer) {
    const std::string address = "service:@" + test::unique_name("ipckit-svc");
    Signal called, go;
    auto first = test::spawn([&] {
        Server server = Server::create(address);
        Request request;
        while (server.recv(request, Deadline::never()).ok())
            (void)server.reply(request.handle, as_bytes(upper(text(request.message))));
        return 2;
    });
    auto client = test::spawn([&] {
        Client c = Client::open(address);
        std::vector<std::byte> response;
        if (!c.call(as_bytes("one"), response, Deadline::after(kHangLimit)).ok()) return 2;
        called.raise();
        if (!go.wait(kHangLimit)) return 3;
        const IoResult r = c.call(as_bytes("two"), response, Deadline::after(kHangLimit));
        return r.ok() && text(response) == "TWO" ? 0 : 10 + static_cast<int>(r.status);
    });
    ASSERT_TRUE(called.wait(kHangLimit));
    ASSERT_TRUE(client.stop());
    first.kill(SIGKILL);
    EXPECT_EQ(first.wait(), -SIGKILL);
    Server second = Server::create(address);
    EXPECT_EQ(second.counts().takeovers, 0u) << "the name was served: the new server took the memory over";
    client.kill(SIGCONT);
    go.raise();
    Request request;
    ASSERT_EQ(second.recv(request, Deadline::after(kHangLimit)).status, Status::ok);
    EXPECT_EQ(text(request.message), "two");
    ASSERT_EQ(second.reply(request.handle, as_bytes(upper(text(request.message)))).status, Status::ok);
    EXPECT_EQ(client.wait(), 0) << "the client's second call did not reach the new server";
}

TEST(ServiceContainers, AServerInItsOwnPidNamespaceServesAHostClientAndItsDeathIsSeen) {
    if (::geteuid() != 0) GTEST_SKIP() << "a PID namespace needs root";
    for (const char* kind : {"/", "@"}) {
        const std::string name = test::unique_name("ipckit-svc");
        const std::string address = std::string("service:") + kind + name;
        Signal held;
        auto server = test::spawn([&] {
            return in_pid_namespace([&] {
                if (::getpid() != 1) return 94;
                return serve_then_hold(address, 1, 1, held);
            });
        });
        Client client = Client::open(address);
        std::vector<std::byte> response;
        ASSERT_EQ(client.call(as_bytes("container"), response, Deadline::after(kHangLimit)).status,
                  Status::ok);
        EXPECT_EQ(text(response), "CONTAINER");
        const auto call = client.start(as_bytes("in flight"), Deadline::after(kHangLimit));
        ASSERT_TRUE(call.ok());
        std::thread killer([&] {
            if (held.wait(kHangLimit)) server.kill(SIGKILL);  // and the namespace's pid 1 with it
        });
        EXPECT_EQ(client.wait(call.call, response, Deadline::after(kHangLimit)).status, Status::closed)
            << kind;
        killer.join();
        EXPECT_EQ(server.wait(), -SIGKILL);
        // A host server takes the name over; the same client's next call reaches it.
        Server host = Server::create(address);
        auto caller = std::thread([&] {
            Request request;
            if (host.recv(request, Deadline::after(kHangLimit)).ok())
                (void)host.reply(request.handle, as_bytes(upper(text(request.message))));
        });
        EXPECT_EQ(client.call(as_bytes("host"), response, Deadline::after(kHangLimit)).status, Status::ok)
            << kind;
        caller.join();
        EXPECT_EQ(text(response), "HOST");
        host.close();
        EXPECT_FALSE(in_dev_shm(name));
    }
}

}  // namespace
}  // namespace ipckit
