// PollSet: waiting on receivers of different transports at once, in real processes.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ipckit/channel.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/io.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/poll_set.hpp"
#include "ipckit/posix_shm.hpp"
#include "rings/ring_layout.hpp"
#include "rings/topic_layout.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

// Records of the channels these tests create (and of the creators they kill) stay out of the
// user's registry.
[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;

// Waits (bounded) until some slot of the topic `name` has its doorbell armed: the subscriber is
// inside PollSet::wait, asleep on its doorbell.
bool doorbell_armed(const std::string& name) {
    for (int attempt = 0; attempt < 5000; ++attempt) {
        auto shm = PosixShm::open(name, Access::read_write);
        auto map = shm.map(Access::read_write);
        auto* header = reinterpret_cast<detail::topic::TopicHeader*>(map.bytes().data());
        for (std::uint32_t i = 0; i < 16; ++i) {
            if (detail::topic::slots(header)[i].cursor.doorbell_armed.load() != 0) return true;
        }
        std::this_thread::sleep_for(2ms);
    }
    return false;
}

TEST(PollSetTest, ATopicReceiverIsWokenByItsDoorbell) {
    const std::string name = "/" + test::unique_name("ipckit-test");
    Receiver topic = Receiver::create("topic:" + name);
    Receiver other = Receiver::create("topic:/" + test::unique_name("ipckit-test"));
    PollSet set;
    set.add(other);
    set.add(topic);
    auto child = test::spawn([&] {
        Sender publisher = Sender::open("topic:" + name, Deadline::after(10s));
        if (!doorbell_armed(name)) return 1;  // publish only once the receiver sleeps on it
        if (!publisher.send(as_bytes("rung")).ok()) return 2;
        ::pause();
        return 0;
    });
    const auto ready = set.wait(Deadline::after(30s));
    ASSERT_EQ(ready, (std::vector<std::size_t>{1}));
    std::vector<std::byte> message;
    ASSERT_TRUE(topic.recv(message, Deadline::immediate()).ok());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(message.data()), message.size()), "rung");
    child.kill(SIGKILL);
    EXPECT_EQ(child.wait(), -SIGKILL);
}

TEST(PollSetTest, ATopicPublishersDeathIsAnEventInTheSet) {
    const std::string name = "/" + test::unique_name("ipckit-test");
    Receiver topic = Receiver::create("topic:" + name);
    PollSet set;
    set.add(topic);
    auto child = test::spawn([&] {
        Sender publisher = Sender::open("topic:" + name, Deadline::after(10s));
        if (!doorbell_armed(name)) return 1;
        ::raise(SIGKILL);  // dies holding the publisher end, ringing nothing
        return 0;
    });
    // The first wait may return because the publisher attached; the set is woken by its pidfd.
    std::vector<std::byte> message;
    IoResult r{};
    for (int i = 0; i < 100; ++i) {
        const auto ready = set.wait(Deadline::after(30s));
        ASSERT_EQ(ready, (std::vector<std::size_t>{0}));
        r = topic.recv(message, Deadline::immediate());
        if (r.status == Status::closed) break;
    }
    EXPECT_EQ(r.status, Status::closed);
    EXPECT_EQ(child.wait(), -SIGKILL);
}

// Waits (bounded) until the ring in shm `name` has its doorbell armed (its receiver sleeps in a
// PollSet).
// `offset`: where the ring starts in the object (a lane of a lanes region is a whole ring).
bool ring_doorbell_armed(const std::string& name, std::size_t offset = 0) {
    for (int attempt = 0; attempt < 5000; ++attempt) {
        auto shm = PosixShm::open(name, Access::read_write);
        auto map = shm.map(Access::read_write);
        const auto* header = reinterpret_cast<const detail::ring::RingHeader*>(map.bytes().data() + offset);
        if (header->doorbell.armed.load() != 0) return true;
        std::this_thread::sleep_for(2ms);
    }
    return false;
}

// A set holding only rings has nothing to poll on a timer: the deadline is the only timeout, so
// a doorbell that did not ring fails the test (the wait returns empty after 30 s).
TEST(PollSetTest, ARingReceiverIsWokenByItsDoorbell) {
    const std::string name = "/" + test::unique_name("ipckit-test");
    Receiver ring = Receiver::create("shm:" + name + "?capacity=64KiB");
    Receiver other = Receiver::create("shm:/" + test::unique_name("ipckit-test") + "?capacity=64KiB");
    PollSet set;
    set.add(other);
    set.add(ring);
    auto child = test::spawn([&] {
        Sender sender = Sender::open("shm:" + name, Deadline::after(10s));
        if (!ring_doorbell_armed(name)) return 1;  // send only once the receiver sleeps on it
        if (!sender.send(as_bytes("rung")).ok()) return 2;
        ::pause();
        return 0;
    });
    const auto ready = set.wait(Deadline::after(30s));
    ASSERT_EQ(ready, (std::vector<std::size_t>{1}));
    std::vector<std::byte> message;
    ASSERT_TRUE(ring.recv(message, Deadline::immediate()).ok());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(message.data()), message.size()), "rung");
    child.kill(SIGKILL);
    EXPECT_EQ(child.wait(), -SIGKILL);
}

TEST(PollSetTest, ARingSendersDeathIsAnEventInTheSet) {
    const std::string name = "/" + test::unique_name("ipckit-test");
    Receiver ring = Receiver::create("shm:" + name + "?capacity=64KiB");
    PollSet set;
    set.add(ring);
    auto child = test::spawn([&] {
        Sender sender = Sender::open("shm:" + name, Deadline::after(10s));
        if (!ring_doorbell_armed(name)) return 1;
        ::raise(SIGKILL);  // dies holding the producer end, ringing nothing
        return 0;
    });
    std::vector<std::byte> message;
    const auto ready = set.wait(Deadline::after(30s));
    ASSERT_EQ(ready, (std::vector<std::size_t>{0}));
    EXPECT_EQ(ring.recv(message, Deadline::immediate()).status, Status::closed);
    EXPECT_EQ(child.wait(), -SIGKILL);
}

// A sender in a PID namespace of its own (as in a container sharing /dev/shm, not the host's
// PIDs) has no pidfd here: its holder word, which the kernel marks at its death in any namespace,
// is turned into an eventfd by the keeper thread. The receiving child's set waits without a
// deadline, so only that can wake it: without it the child's bounded wait fails. For a 1:1 ring
// and for lanes. Needs unshare(CLONE_NEWPID) (root): skipped otherwise.
class PollSetNamespaceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PollSetNamespaceTest, ASenderInAnotherPidNamespaceDyingIsAnEventInTheSet) {
    const std::string name = "/" + test::unique_name("ipckit-test");
    const std::string address = "shm:" + name + "?capacity=64KiB" + GetParam();  // GetParam: "&senders=N"
    const std::size_t ring_offset = GetParam().empty() ? 0 : detail::ring::kLanesHeaderSize;
    int created[2], taken[2], armed[2];
    ASSERT_EQ(::pipe(created), 0);
    ASSERT_EQ(::pipe(taken), 0);
    ASSERT_EQ(::pipe(armed), 0);
    auto receiver = test::spawn([&] {
        Receiver ring = Receiver::create(address);
        PollSet set;
        set.add(ring);
        (void)!::write(created[1], "c", 1);
        std::vector<std::byte> message;
        if (set.wait(Deadline::never()) != std::vector<std::size_t>{0}) return 1;
        if (!ring.recv(message, Deadline::immediate()).ok()) return 2;
        (void)!::write(taken[1], "t", 1);
        if (set.wait(Deadline::never()) != std::vector<std::size_t>{0}) return 3;  // the death
        return ring.recv(message, Deadline::immediate()).status == Status::closed ? 0 : 4;
    });
    char byte = 0;
    ASSERT_EQ(::read(created[0], &byte, 1), 1);
    auto sender = test::spawn([&] {
        if (::unshare(CLONE_NEWPID) != 0) return 77;
        const pid_t inner = ::fork();  // pid 1 of the new namespace
        if (inner == 0) {
            Sender tx = Sender::open(address, Deadline::after(10s));
            if (!tx.send(as_bytes("first")).ok()) ::_exit(1);
            char got = 0;
            if (::read(taken[0], &got, 1) != 1) ::_exit(4);
            // Armed again after the first message was taken: the set watches this sender now.
            if (!ring_doorbell_armed(name, ring_offset)) ::_exit(5);
            (void)!::write(armed[1], "a", 1);
            ::pause();
            ::_exit(2);
        }
        char got = 0;
        if (::read(armed[0], &got, 1) != 1) return 6;
        ::kill(inner, SIGKILL);  // from outside its namespace (its init ignores its own SIGKILL)
        int status = 0;
        ::waitpid(inner, &status, 0);
        return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? 0 : 3;
    });
    const int sent = sender.wait(30s);
    for (const int fd : {created[0], created[1], taken[0], taken[1], armed[0], armed[1]})
        ::close(fd);
    if (sent == 77) {
        receiver.kill(SIGKILL);
        (void)receiver.wait();
        GTEST_SKIP() << "unshare(CLONE_NEWPID) refused (needs root)";
    }
    EXPECT_EQ(sent, 0);
    EXPECT_EQ(receiver.wait(30s), 0) << "the set slept through the sender's death (-9: killed at the bound)";
}

INSTANTIATE_TEST_SUITE_P(Rings, PollSetNamespaceTest, ::testing::Values("", "&senders=2"),
                         [](const auto& param) { return param.param.empty() ? "ring" : "lanes"; });

TEST(PollSetTest, ALanesReceiverIsWokenByALanesDoorbell) {
    const std::string name = "/" + test::unique_name("ipckit-test");
    Receiver lanes = Receiver::create("shm:" + name + "?senders=3&capacity=64KiB");
    PollSet set;
    set.add(lanes);
    auto child = test::spawn([&] {
        Sender sender = Sender::open("shm:" + name + "?senders=3", Deadline::after(10s));
        // It holds lane 0, whose ring starts after the 1024-byte lanes header.
        if (!ring_doorbell_armed(name, detail::ring::kLanesHeaderSize)) return 1;
        if (!sender.send(as_bytes("rung")).ok()) return 2;
        ::pause();
        return 0;
    });
    const auto ready = set.wait(Deadline::after(30s));
    ASSERT_EQ(ready, (std::vector<std::size_t>{0}));
    std::vector<std::byte> message;
    ASSERT_TRUE(lanes.recv(message, Deadline::immediate()).ok());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(message.data()), message.size()), "rung");
    child.kill(SIGKILL);
    EXPECT_EQ(child.wait(), -SIGKILL);
    // The dead sender was the only one: the set reports the receiver, now closed.
    ASSERT_EQ(set.wait(Deadline::after(30s)), (std::vector<std::size_t>{0}));
    EXPECT_EQ(lanes.recv(message, Deadline::immediate()).status, Status::closed);
}

TEST(PollSetTest, ReportsWhichReceiverHasAMessageAcrossTransports) {
    test::TempDir dir;
    const std::string fifo = "fifo:" + dir.file("a.fifo");
    const std::string ring = "shm:/" + test::unique_name("ipckit-test");
    const std::string queue = "sysvmq:0x1e" + std::to_string(::getpid() % 100000);
    Receiver a = Receiver::create(fifo);
    Receiver b = Receiver::create(ring);
    Receiver c = Receiver::create(queue);
    PollSet set;
    set.add(a);
    set.add(b);
    set.add(c);
    EXPECT_TRUE(set.wait(Deadline::after(20ms)).empty());

    // One sender per transport, each sending once, in an order the receiver cannot guess. The
    // child sends the next message only when told to, after the last one was received: the
    // order is set by events, never by how long a sleep lasts on a busy machine.
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    Fd go_read(fds[0]), go_write(fds[1]);
    auto child = test::spawn([&] {
        go_write.reset();
        Sender to_ring = Sender::open(ring, Deadline::after(10s));
        Sender to_queue = Sender::open(queue, Deadline::after(10s));
        Sender to_fifo = Sender::open(fifo, Deadline::after(10s));
        int code = 1;
        for (Sender* sender : {&to_ring, &to_queue, &to_fifo}) {
            std::array<std::byte, 1> go{};
            if (read_exact(go_read.get(), go, Deadline::after(30s), "go pipe").status != Status::ok)
                return 10;
            const std::string text = sender == &to_ring ? "ring" : sender == &to_queue ? "queue" : "fifo";
            if (!sender->send(as_bytes(text)).ok()) return code;
            ++code;
        }
        ::pause();
        return 0;
    });
    go_read.reset();
    std::vector<std::byte> message;
    const std::vector<std::pair<std::size_t, std::string>> expected{{1, "ring"}, {2, "queue"}, {0, "fifo"}};
    for (const auto& [index, text] : expected) {
        ASSERT_TRUE(write_all(go_write.get(), as_bytes("g"), Deadline::after(10s), "go pipe").ok());
        const auto ready = set.wait(Deadline::after(10s));
        ASSERT_EQ(ready, std::vector<std::size_t>{index}) << "waiting for " << text;
        ASSERT_EQ(set[index].recv(message, Deadline::after(1s)).status, Status::ok) << text;
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(message.data()), message.size()), text);
    }
    child.kill(SIGKILL);
    (void)child.wait();
}

TEST(PollSetTest, AClosedPeerCountsAsReady) {
    test::TempDir dir;
    const std::string address = "unix:" + dir.file("s.sock");
    Receiver receiver = Receiver::create(address);
    auto child = test::spawn([&] {
        Sender sender = Sender::open(address, Deadline::after(10s));
        return 0;  // leaves at once
    });
    PollSet set;
    set.add(receiver);
    EXPECT_EQ(child.wait(), 0);
    std::vector<std::byte> message;
    // The first ready report may come before the connection is taken; the wait must end
    // with closed, never hang.
    for (int round = 0; round < 3; ++round) {
        const auto ready = set.wait(Deadline::after(10s));
        ASSERT_EQ(ready.size(), 1u);
        const auto r = receiver.recv(message, Deadline::after(1s));
        if (r.status == Status::closed) return;
    }
    FAIL() << "the closed peer was never reported";
}

// A POSIX queue sender that sent one message is SIGKILLed (no end marker ever comes), before the
// set waits or while it already does. wait() without a deadline must come back with the
// receiver, whose recv then says closed: in a child, so a hang fails the test instead of
// stalling it.
void expect_a_killed_posix_sender_reported(bool while_the_set_waits) {
    const std::string address = "posixmq:/" + test::unique_name("ipckit-test");
    Receiver receiver = Receiver::create(address);
    auto sender = test::spawn([&] {
        Sender tx = Sender::open(address, Deadline::after(10s));
        if (!tx.send(as_bytes("last words")).ok()) return 1;
        ::pause();  // killed here
        return 0;
    });
    std::vector<std::byte> message;
    ASSERT_EQ(receiver.recv(message, Deadline::after(10s)).status, Status::ok);
    if (!while_the_set_waits) {
        sender.kill(SIGKILL);
        (void)sender.wait();
    }
    auto waiter = test::spawn([&] {
        PollSet set;
        set.add(receiver);
        const auto ready = set.wait();
        if (ready.size() != 1) return 2;
        return receiver.recv(message, Deadline::after(1s)).status == Status::closed ? 0 : 3;
    });
    if (while_the_set_waits) {
        // Killed once the waiter sleeps in ppoll (/proc/PID/syscall), or after 10 s regardless.
        for (int tries = 0; tries < 10'000; ++tries) {
            std::ifstream call("/proc/" + std::to_string(waiter.pid()) + "/syscall");
            long number = -1;
            if ((call >> number) && number == SYS_ppoll) break;
            std::this_thread::sleep_for(1ms);
        }
        sender.kill(SIGKILL);
        (void)sender.wait();
    }
    EXPECT_EQ(waiter.wait(30s), 0);
}

TEST(PollSetTest, APosixQueueSenderKilledWithoutAnEndMarkerIsReportedWithoutADeadline) {
    expect_a_killed_posix_sender_reported(false);
}

// The set polls the queue and the sender's pidfd, so the death ends a wait already under way
// (before, the set woke every 50 ms to ask).
TEST(PollSetTest, APosixQueueSenderKilledWhileTheSetWaitsEndsTheWait) {
    expect_a_killed_posix_sender_reported(true);
}

}  // namespace
}  // namespace ipckit
