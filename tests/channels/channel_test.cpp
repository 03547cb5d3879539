// The channel API: the same scenarios over every transport, in real processes. The receiver
// creates the channel in the test process; the sender opens it in a forked child.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <functional>
#include <optional>
#include <random>

#include "ipckit/address.hpp"
#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/pipe.hpp"
#include "ipckit/sysv_key.hpp"
#include "ipckit/sysv_queue.hpp"
#include "support/process.hpp"
#include "support/transports.hpp"

namespace ipckit {
namespace {

// Records of the channels these tests create (and of the creators they kill) stay out of the
// user's registry.
[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;

using test::TransportCase;

class ChannelTest : public ::testing::TestWithParam<TransportCase> {
protected:
    void SetUp() override { address_ = GetParam().address(dir_); }

    // Creates the receiver, then forks a sender that opens the channel and runs `body`.
    std::pair<Receiver, test::Child> start(const std::function<int(Sender&)>& body) {
        Receiver receiver = Receiver::create(address_);
        auto child = test::spawn([&] {
            Sender sender = Sender::open(address_, Deadline::after(10s));
            return body(sender);
        });
        return {std::move(receiver), std::move(child)};
    }

    test::TempDir dir_;
    std::string address_;
};

std::vector<std::byte> pattern(std::size_t size, std::uint32_t seed) {
    std::vector<std::byte> bytes(size);
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& b : bytes) {
        x = x * 1664525u + 1013904223u;
        b = static_cast<std::byte>(x >> 24);
    }
    return bytes;
}

TEST_P(ChannelTest, DeliversTenThousandMessagesOfRandomSizesInOrder) {
    constexpr int kCount = 10'000;
    Receiver receiver = Receiver::create(address_);
    const std::size_t limit = std::min<std::size_t>(receiver.max_message_size(), 8192);
    auto child = test::spawn([&] {
        Sender sender = Sender::open(address_, Deadline::after(10s));
        std::mt19937 rng(42);
        for (int i = 0; i < kCount; ++i) {
            const auto message = pattern(rng() % (limit + 1), static_cast<std::uint32_t>(i));
            if (!sender.send(message, Deadline::after(30s)).ok()) return 1;
        }
        // Stay until the receiver has everything: a connectionless transport would drop
        // nothing, but a creator-owned object must not vanish under the receiver.
        return 0;
    });
    std::mt19937 rng(42);
    std::vector<std::byte> got;
    for (int i = 0; i < kCount; ++i) {
        const auto r = receiver.recv(got, Deadline::after(30s));
        ASSERT_EQ(r.status, Status::ok) << "message " << i;
        ASSERT_EQ(got, pattern(rng() % (limit + 1), static_cast<std::uint32_t>(i))) << "message " << i;
    }
    EXPECT_EQ(child.wait(), 0);
}

TEST_P(ChannelTest, CarriesAnEmptyMessage) {
    auto [receiver, child] = start(
        [](Sender& sender) { return sender.send({}).ok() && sender.send(as_bytes("after")).ok() ? 0 : 1; });
    std::vector<std::byte> got(3);
    ASSERT_EQ(receiver.recv(got, Deadline::after(10s)).status, Status::ok);
    EXPECT_TRUE(got.empty());
    ASSERT_EQ(receiver.recv(got, Deadline::after(10s)).status, Status::ok);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(got.data()), got.size()), "after");
    EXPECT_EQ(child.wait(), 0);
}

TEST_P(ChannelTest, CarriesAMessageOfExactlyTheLimit) {
    Receiver receiver = Receiver::create(address_);
    const std::size_t limit = receiver.max_message_size();
    auto child = test::spawn([&] {
        Sender sender = Sender::open(address_, Deadline::after(10s));
        if (sender.max_message_size() != limit) return 2;
        return sender.send(pattern(limit, 9), Deadline::after(30s)).ok() ? 0 : 1;
    });
    std::vector<std::byte> got;
    ASSERT_EQ(receiver.recv(got, Deadline::after(30s)).status, Status::ok);
    EXPECT_EQ(got.size(), limit);
    EXPECT_TRUE(got == pattern(limit, 9));
    EXPECT_EQ(child.wait(), 0);
}

TEST_P(ChannelTest, AMessageOverTheLimitIsAnErrorThatSaysTheLimit) {
    auto [receiver, child] = start([](Sender& sender) {
        const std::size_t limit = sender.max_message_size();
        try {
            (void)sender.send(std::vector<std::byte>(limit + 1));
            return 1;
        } catch (const Error& e) {
            if (e.code() != std::errc::message_size) return 2;
            if (std::string(e.what()).find(std::to_string(limit)) == std::string::npos) return 3;
        }
        // The channel still works after the refusal.
        return sender.send(as_bytes("fine")).ok() ? 0 : 4;
    });
    std::vector<std::byte> got;
    ASSERT_EQ(receiver.recv(got, Deadline::after(10s)).status, Status::ok);
    EXPECT_EQ(got.size(), 4u);
    EXPECT_EQ(child.wait(), 0);
}

TEST_P(ChannelTest, AMessageLargerThanTheBufferStaysQueued) {
    auto [receiver, child] =
        start([](Sender& sender) { return sender.send(as_bytes("0123456789")).ok() ? 0 : 1; });
    std::array<std::byte, 4> small{};
    // Wait for the message with the small buffer: the error comes once it is there, and it
    // must come (a message that never arrived would refuse nothing).
    std::optional<std::error_code> refused;
    std::string what;
    const auto deadline = Deadline::after(30s);
    while (!refused && !deadline.expired()) {
        try {
            const Status s = receiver.recv(small, Deadline::after(100ms)).status;
            ASSERT_NE(s, Status::ok) << "a 10-byte message fitted a 4-byte buffer";
            ASSERT_NE(s, Status::closed);
        } catch (const Error& e) {
            refused = e.code();
            what = e.what();
        }
    }
    ASSERT_TRUE(refused) << "the small buffer was never refused: the message did not arrive";
    EXPECT_EQ(*refused, std::errc::message_size) << what;
    // System V does not tell the size of a message that did not fit: the buffer's is said.
    EXPECT_TRUE(what.find("10 bytes") != std::string::npos || what.find("4-byte buffer") != std::string::npos)
        << what;
    std::array<std::byte, 16> large{};
    const auto r = receiver.recv(large, Deadline::after(10s));
    ASSERT_EQ(r.status, Status::ok);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(large.data()), r.bytes), "0123456789");
    EXPECT_EQ(child.wait(), 0);
}

TEST_P(ChannelTest, ReceiverSeesClosedAfterTheSenderLeaves) {
    if (GetParam().connectionless) GTEST_SKIP() << "a datagram receiver has no connection to see closed";
    auto [receiver, child] = start([](Sender& sender) {
        for (int i = 0; i < 3; ++i) {
            if (!sender.send(as_bytes("m" + std::to_string(i))).ok()) return 1;
        }
        return 0;
    });
    // Read while the sender may still be there: a ring sender lingers (up to 10 s) until its
    // receiver has taken what it committed, so waiting for it first would only wait that out.
    std::vector<std::byte> got;
    for (int i = 0; i < 3; ++i)
        ASSERT_EQ(receiver.recv(got, Deadline::after(10s)).status, Status::ok) << i;
    EXPECT_EQ(receiver.recv(got, Deadline::after(10s)).status, Status::closed);
    EXPECT_EQ(child.wait(), 0);
}

TEST_P(ChannelTest, SenderKilledMidStreamEndsTheWaitWithEveryMessageWhole) {
    if (GetParam().connectionless) GTEST_SKIP() << "a datagram receiver has no connection to see closed";
    auto [receiver, child] = start([](Sender& sender) {
        for (int i = 0; i < 100; ++i) {
            if (!sender.send(pattern(static_cast<std::size_t>(i) * 37, static_cast<std::uint32_t>(i))).ok())
                return 1;
        }
        ::raise(SIGKILL);
        return 2;
    });
    std::vector<std::byte> got;
    int received = 0;
    for (;; ++received) {
        const auto r = receiver.recv(got, Deadline::after(10s));
        ASSERT_NE(r.status, Status::timed_out)
            << "the receiver hung after the sender died, after " << received;
        if (r.status == Status::closed) break;
        ASSERT_EQ(got,
                  pattern(static_cast<std::size_t>(received) * 37, static_cast<std::uint32_t>(received)));
    }
    EXPECT_EQ(received, 100);
    EXPECT_EQ(child.wait(), -SIGKILL);
}

TEST_P(ChannelTest, ReceiveTimesOutWhenNothingComes) {
    auto [receiver, child] = start([](Sender&) {
        ::pause();  // stays connected and silent until killed
        return 0;
    });
    std::vector<std::byte> got;
    EXPECT_EQ(receiver.recv(got, Deadline::after(50ms)).status, Status::timed_out);
    EXPECT_EQ(receiver.try_recv(got).status, Status::would_block);
    child.kill(SIGKILL);
    (void)child.wait();
}

INSTANTIATE_TEST_SUITE_P(Transports, ChannelTest, ::testing::ValuesIn(test::all_transports()),
                         [](const auto& test_info) { return test_info.param.name; });

TEST(ChannelFdTest, InheritedPipeEndCarriesFramedMessages) {
    Pipe pipe = Pipe::create();
    const int write_fd = pipe.writer.inherit_across_exec();
    auto child = test::spawn([&] {
        pipe.reader.close();
        Sender sender = Sender::open("fd:" + std::to_string(write_fd));
        return sender.send(as_bytes("one")).ok() && sender.send(as_bytes("two")).ok() ? 0 : 1;
    });
    pipe.writer.close();
    Receiver receiver = Receiver::open("fd:" + std::to_string(pipe.reader.release().release()));
    std::vector<std::byte> got;
    ASSERT_EQ(receiver.recv(got, Deadline::after(10s)).status, Status::ok);
    EXPECT_EQ(got.size(), 3u);
    ASSERT_EQ(receiver.recv(got, Deadline::after(10s)).status, Status::ok);
    EXPECT_EQ(receiver.recv(got, Deadline::after(10s)).status, Status::closed);
    EXPECT_EQ(child.wait(), 0);
}

TEST(ChannelSysvIdTest, APrivateQueueIsReachedByItsId) {
    SysvQueue queue = SysvQueue::create(SysvKey::private_key());
    const std::string address = "sysvmq:id=" + std::to_string(queue.id());
    Receiver receiver = Receiver::open(address);
    auto child = test::spawn([&] { return Sender::open(address).send(as_bytes("by id")).ok() ? 0 : 1; });
    std::vector<std::byte> got;
    ASSERT_EQ(receiver.recv(got, Deadline::after(10s)).status, Status::ok);
    EXPECT_EQ(got.size(), 5u);
    EXPECT_EQ(child.wait(), 0);
    EXPECT_THROW((void)Receiver::create(address), Error);
}

// A POSIX message carries its sender's pid, which means nothing in another PID namespace: the
// host has no such process (the sender would be taken for dead, and the receiver would say
// `closed` while it lives), or another one (watched instead of the sender). The sender here is a
// process of a new PID namespace whose pid there is one the host does not use; the receiver must
// wait for its end marker, not call it dead. Needs unshare(CLONE_NEWPID) (root): skipped
// otherwise.
TEST(ChannelPosixQueueTest, ASenderInAnotherPidNamespaceIsNotTakenForAProcessHere) {
    pid_t unused = 0;  // a pid no host process has
    for (pid_t pid = 2; pid < 300 && unused == 0; ++pid)
        if (::kill(pid, 0) != 0 && errno == ESRCH) unused = pid;
    if (unused == 0) GTEST_SKIP() << "every pid below 300 is in use here";
    const std::string address = "posixmq:/" + test::unique_name("ipckit-test");
    Receiver receiver = Receiver::create(address);
    int done[2];
    ASSERT_EQ(::pipe(done), 0);
    // Forks until the process is numbered `unused` in its namespace; that one sends.
    const auto numbered_until_unused = [&]() -> int {
        for (int i = 0; i < 1000; ++i) {
            const pid_t child = ::fork();
            if (child == 0) {
                if (::getpid() != unused) ::_exit(0);
                char byte = 0;
                {
                    Sender tx = Sender::open(address, Deadline::after(10s));
                    if (!tx.send(as_bytes("from a container")).ok()) ::_exit(1);
                    if (::read(done[0], &byte, 1) != 1) ::_exit(2);
                }  // the end marker goes with tx
                ::_exit(0);
            }
            int status = 0;
            if (child < 0 || ::waitpid(child, &status, 0) != child) return 3;
            if (child == unused) return WIFEXITED(status) ? WEXITSTATUS(status) : 4;
        }
        return 5;
    };
    auto container = test::spawn([&] {
        if (::unshare(CLONE_NEWPID) != 0) return 77;
        const pid_t init = ::fork();  // pid 1 of the new namespace: it must outlive the others
        if (init == 0) ::_exit(numbered_until_unused());
        int status = 0;
        if (init < 0 || ::waitpid(init, &status, 0) != init) return 6;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 7;
    });
    std::vector<std::byte> message;
    const IoResult first = receiver.recv(message, Deadline::after(10s));
    if (first.status == Status::timed_out && container.wait() == 77) {
        for (const int fd : done)
            ::close(fd);
        GTEST_SKIP() << "unshare(CLONE_NEWPID) needs root";
    }
    ASSERT_EQ(first.status, Status::ok);
    // The sender lives (and its pid is nobody here): the wait runs to its deadline.
    EXPECT_EQ(receiver.recv(message, Deadline::after(300ms)).status, Status::timed_out);
    (void)!::write(done[1], "d", 1);
    EXPECT_EQ(receiver.recv(message, Deadline::after(10s)).status, Status::closed);
    EXPECT_EQ(container.wait(), 0);
    for (const int fd : done)
        ::close(fd);
}

TEST(ChannelAddressTest, MalformedAddressIsAnErrorQuotingIt) {
    try {
        (void)Receiver::create("fifo");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("address \"fifo\""), std::string::npos);
    }
}

}  // namespace
}  // namespace ipckit
