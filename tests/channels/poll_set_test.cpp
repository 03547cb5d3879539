// PollSet: waiting on receivers of different transports at once, in real processes.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <thread>

#include "ipckit/channel.hpp"
#include "ipckit/poll_set.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

// Records of the channels these tests create (and of the creators they kill) stay out of the
// user's registry.
[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;

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

    // One sender per transport, each sending once, in an order the receiver cannot guess.
    auto child = test::spawn([&] {
        Sender to_ring = Sender::open(ring, Deadline::after(10s));
        Sender to_queue = Sender::open(queue, Deadline::after(10s));
        Sender to_fifo = Sender::open(fifo, Deadline::after(10s));
        if (!to_ring.send(as_bytes("ring")).ok()) return 1;
        std::this_thread::sleep_for(50ms);
        if (!to_queue.send(as_bytes("queue")).ok()) return 2;
        std::this_thread::sleep_for(50ms);
        if (!to_fifo.send(as_bytes("fifo")).ok()) return 3;
        ::pause();
        return 0;
    });
    std::vector<std::string> order;
    std::vector<std::byte> message;
    while (order.size() < 3) {
        const auto ready = set.wait(Deadline::after(10s));
        ASSERT_FALSE(ready.empty()) << "nothing became ready";
        for (std::size_t i : ready) {
            ASSERT_EQ(set[i].recv(message, Deadline::after(1s)).status, Status::ok) << "receiver " << i;
            order.emplace_back(reinterpret_cast<const char*>(message.data()), message.size());
        }
    }
    EXPECT_EQ(order, (std::vector<std::string>{"ring", "queue", "fifo"}));
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

TEST(PollSetTest, APosixQueueSenderKilledWithoutAnEndMarkerIsReportedWithoutADeadline) {
    const std::string address = "posixmq:/" + test::unique_name("ipckit-test");
    Receiver receiver = Receiver::create(address);
    auto sender = test::spawn([&] {
        Sender tx = Sender::open(address, Deadline::after(10s));
        if (!tx.send(as_bytes("last words")).ok()) return 1;
        ::pause();  // killed here: no end marker ever comes
        return 0;
    });
    std::vector<std::byte> message;
    ASSERT_EQ(receiver.recv(message, Deadline::after(10s)).status, Status::ok);
    sender.kill(SIGKILL);
    (void)sender.wait();
    // wait() without a deadline must come back: in a child, so a hang fails the test instead
    // of stalling it.
    auto waiter = test::spawn([&] {
        PollSet set;
        set.add(receiver);
        const auto ready = set.wait();
        if (ready.size() != 1) return 2;
        return receiver.recv(message, Deadline::after(1s)).status == Status::closed ? 0 : 3;
    });
    EXPECT_EQ(waiter.wait(30s), 0);
}

}  // namespace
}  // namespace ipckit
