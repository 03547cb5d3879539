// System V message queues in real processes: type selectors, blocking and timed waits,
// removal, limits, permissions, and the owner that removes what it created.
#include <sched.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "ipckit/process.hpp"
#include "ipckit/sysv_queue.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

// A queue under a fresh explicit key that nobody else uses; the owner removes it.
SysvQueue create_unique(mode_t mode = 0600) {
    static std::mt19937 random(std::random_device{}());
    for (int attempt = 0;; ++attempt) {
        const auto key = SysvKey::explicit_key(static_cast<key_t>(0x1c000000u | (random() & 0xffffffu)));
        try {
            return SysvQueue::create(key, mode);
        } catch (const Error& e) {
            if (e.code() != std::errc::file_exists || attempt > 100) throw;
        }
    }
}

std::string text_of(std::span<const std::byte> bytes) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

struct Received {
    Status status;
    long type;
    std::string body;
};

Received receive(const SysvQueue& queue, TypeSelector selector, Deadline deadline = Deadline::immediate()) {
    std::array<std::byte, 8192> buffer{};
    const auto r = queue.receive(selector, buffer, deadline);
    return {r.status, r.type, text_of(std::span(buffer).first(r.bytes))};
}

// True once process `pid` sleeps in the kernel (state S), so a test can act on a waiter that
// is really waiting. Bounded; the outcome of the tests does not depend on it, only what they cover.
void wait_until_sleeping(pid_t pid) {
    for (int i = 0; i < 2000; ++i) {
        const auto stat = read_process_stat(pid);
        if (stat && stat->state == 'S') return;
        std::this_thread::sleep_for(1ms);
    }
}

bool queue_id_exists(int id) {
    msqid_ds ds{};
    return ::msgctl(id, IPC_STAT, &ds) == 0;
}

TEST(TypeSelectorTest, MapsToMsgrcvArguments) {
    EXPECT_EQ(TypeSelector::any().msgtyp(), 0);
    EXPECT_EQ(TypeSelector::exactly(4).msgtyp(), 4);
    EXPECT_EQ(TypeSelector::lowest_up_to(4).msgtyp(), -4);
    EXPECT_EQ(TypeSelector::except(4).msgtyp(), 4);
    EXPECT_TRUE(TypeSelector::except(4).is_except());
    EXPECT_EQ(TypeSelector::from_msgtyp(-3), TypeSelector::lowest_up_to(3));
    EXPECT_EQ(TypeSelector::from_msgtyp(0), TypeSelector::any());
    EXPECT_EQ(TypeSelector::lowest_up_to(3).to_string(), "lowest type <= 3");
    EXPECT_EQ(TypeSelector::except(3).to_string(), "any type but 3");
    EXPECT_THROW((void)TypeSelector::exactly(0), Error);
    EXPECT_THROW((void)TypeSelector::lowest_up_to(-1), Error);
    EXPECT_THROW((void)TypeSelector::except(0), Error);
}

TEST(SysvQueueTest, EverySelectorFormPicksTheRightMessage) {
    auto queue = create_unique();
    // Another process fills the queue; this one reads it selectively after it is gone.
    auto sender = test::spawn([&] {
        const auto peer = SysvQueue::open(queue.key());
        const std::vector<std::pair<long, std::string>> messages = {{3, "a"}, {1, "b"}, {2, "c"},
                                                                    {1, "d"}, {5, "e"}, {2, "f"}};
        for (const auto& [type, body] : messages)
            if (!peer.send(type, as_bytes(body)).ok()) return 1;
        return 0;
    });
    ASSERT_EQ(sender.wait(), 0);
    ASSERT_EQ(queue.stat().messages, 6u);

    auto r = receive(queue, TypeSelector::exactly(2));
    EXPECT_EQ(r.body, "c");
    EXPECT_EQ(r.type, 2);
    r = receive(queue, TypeSelector::except(3));  // first message whose type is not 3
    EXPECT_EQ(r.body, "b");
    EXPECT_EQ(r.type, 1);
    r = receive(queue, TypeSelector::lowest_up_to(4));  // lowest type <= 4 is 1
    EXPECT_EQ(r.body, "d");
    r = receive(queue, TypeSelector::any());  // plain FIFO: the oldest
    EXPECT_EQ(r.body, "a");
    EXPECT_EQ(r.type, 3);
    EXPECT_EQ(receive(queue, TypeSelector::exactly(4)).status, Status::would_block);
    EXPECT_EQ(receive(queue, TypeSelector::lowest_up_to(1)).status, Status::would_block);
    r = receive(queue, TypeSelector::from_msgtyp(-10));  // lowest type <= 10 is now 2
    EXPECT_EQ(r.body, "f");
    EXPECT_EQ(r.type, 2);
    EXPECT_EQ(receive(queue, TypeSelector::except(5)).status, Status::would_block);
    r = receive(queue, TypeSelector::any());
    EXPECT_EQ(r.body, "e");
    EXPECT_EQ(r.type, 5);
    EXPECT_EQ(receive(queue, TypeSelector::any()).status, Status::would_block);
}

TEST(SysvQueueTest, MessageBoundariesAreKeptAndEmptyMessagesCount) {
    auto queue = create_unique();
    ASSERT_TRUE(queue.send(1, as_bytes("one")).ok());
    ASSERT_TRUE(queue.send(1, {}).ok());
    ASSERT_TRUE(queue.send(1, as_bytes("three")).ok());
    EXPECT_EQ(queue.stat().bytes, 8u);
    EXPECT_EQ(receive(queue, TypeSelector::any()).body, "one");
    const auto empty = receive(queue, TypeSelector::any());
    EXPECT_EQ(empty.status, Status::ok);
    EXPECT_EQ(empty.body, "");
    EXPECT_EQ(receive(queue, TypeSelector::any()).body, "three");
    EXPECT_EQ(queue.stat().messages, 0u);  // a message is gone once read
}

TEST(SysvQueueTest, BlockingReceiveIsWokenBySenderInAnotherProcess) {
    auto queue = create_unique();
    auto receiver = test::spawn([&] {
        const auto peer = SysvQueue::open(queue.key());
        // Waits for type 2 only: the type-1 message sent first must not end this wait.
        const auto r = receive(peer, TypeSelector::exactly(2), Deadline::never());
        return r.status == Status::ok && r.body == "wanted" && r.type == 2 ? 0 : 1;
    });
    wait_until_sleeping(receiver.pid());
    ASSERT_TRUE(queue.send(1, as_bytes("other")).ok());
    ASSERT_TRUE(queue.send(2, as_bytes("wanted")).ok());
    EXPECT_EQ(receiver.wait(), 0);
    EXPECT_EQ(receive(queue, TypeSelector::any()).body, "other");
}

TEST(SysvQueueTest, TimedReceiveIsWokenBySenderInAnotherProcess) {
    auto queue = create_unique();
    auto receiver = test::spawn([&] {
        const auto r = receive(queue, TypeSelector::any(), Deadline::after(30s));
        return r.status == Status::ok && r.body == "late" ? 0 : 1;
    });
    wait_until_sleeping(receiver.pid());  // the receiver is in its back-off sleeps
    ASSERT_TRUE(queue.send(7, as_bytes("late")).ok());
    EXPECT_EQ(receiver.wait(), 0);
}

// A timed wait blocks in msgrcv and is interrupted at its deadline by ipckit's waker thread
// (SIGRTMAX-3); `wake_fd` ends it early: here the pidfd of a process that exits.
TEST(SysvQueueTest, AWakeDescriptorEndsATimedWaitWhenItPollsReadable) {
    auto queue = create_unique();
    auto peer = test::spawn([] {
        std::this_thread::sleep_for(100ms);
        return 0;
    });
    ProcessWatch watch(*ProcessRef::of(peer.pid()));
    ASSERT_GE(watch.fd(), 0);
    std::array<std::byte, 16> buffer{};
    const auto r = queue.receive(TypeSelector::any(), buffer, Deadline::never(),
                                 SysvQueue::Truncation::refused, watch.fd());
    EXPECT_EQ(r.status, Status::timed_out);  // never() would have slept for ever
    EXPECT_EQ(peer.wait(), 0);
    queue.set_capacity(4);
    ASSERT_TRUE(queue.send(1, as_bytes("full")).ok());
    EXPECT_EQ(queue.send(1, as_bytes("more"), Deadline::never(), watch.fd()).status, Status::timed_out);
}

// A program that handles SIGRTMAX-3 itself keeps it: ipckit's timed waits poll instead, still end
// at their deadline and still take a message, and the program's handler never runs for them.
TEST(SysvQueueTest, AProgramsOwnHandlerOfTheWakeSignalIsLeftAlone) {
    auto queue = create_unique();
    auto child = test::spawn([&] {
        static std::atomic<int> handled{0};
        struct sigaction action {};
        action.sa_handler = [](int) { handled.fetch_add(1); };
        sigemptyset(&action.sa_mask);
        if (::sigaction(SIGRTMAX - 3, &action, nullptr) != 0) return 2;
        if (receive(queue, TypeSelector::any(), Deadline::after(50ms)).status != Status::timed_out) return 3;
        const auto r = receive(queue, TypeSelector::any(), Deadline::after(30s));
        return r.status == Status::ok && r.body == "late" && handled.load() == 0 ? 0 : 1;
    });
    std::this_thread::sleep_for(200ms);  // the child is in its second, polling wait
    ASSERT_TRUE(queue.send(7, as_bytes("late")).ok());
    EXPECT_EQ(child.wait(), 0);
}

TEST(SysvQueueTest, NonBlockingCallsReportWouldBlock) {
    auto queue = create_unique();
    EXPECT_EQ(receive(queue, TypeSelector::any()).status, Status::would_block);
    queue.set_capacity(10);
    ASSERT_TRUE(queue.send(1, as_bytes("0123456789"), Deadline::immediate()).ok());
    const auto full = queue.send(1, as_bytes("x"), Deadline::immediate());
    EXPECT_EQ(full.status, Status::would_block);
    EXPECT_EQ(full.bytes, 0u);
    EXPECT_EQ(queue.stat().messages, 1u);
}

TEST(SysvQueueTest, TimedCallsTimeOut) {
    auto queue = create_unique();
    EXPECT_EQ(receive(queue, TypeSelector::any(), Deadline::after(30ms)).status, Status::timed_out);
    queue.set_capacity(4);
    ASSERT_TRUE(queue.send(1, as_bytes("full")).ok());
    EXPECT_EQ(queue.send(1, as_bytes("more"), Deadline::after(30ms)).status, Status::timed_out);
}

TEST(SysvQueueTest, BlockedSendIsReleasedByAReceiverInAnotherProcess) {
    auto queue = create_unique();
    queue.set_capacity(4);
    ASSERT_TRUE(queue.send(1, as_bytes("full")).ok());
    auto sender =
        test::spawn([&] { return queue.send(1, as_bytes("next"), Deadline::never()).ok() ? 0 : 1; });
    wait_until_sleeping(sender.pid());
    EXPECT_EQ(receive(queue, TypeSelector::any()).body, "full");
    EXPECT_EQ(sender.wait(), 0);
    EXPECT_EQ(receive(queue, TypeSelector::any(), Deadline::after(30s)).body, "next");
}

TEST(SysvQueueTest, RemovalEndsABlockedReceiveWithClosed) {
    auto queue = create_unique();
    auto receiver = test::spawn([&] {
        const auto peer = SysvQueue::open(queue.key());
        return receive(peer, TypeSelector::any(), Deadline::never()).status == Status::closed ? 0 : 1;
    });
    wait_until_sleeping(receiver.pid());
    queue.remove();
    EXPECT_EQ(receiver.wait(), 0);
    EXPECT_FALSE(queue.owns());
}

TEST(SysvQueueTest, RemovalEndsATimedReceiveWithClosed) {
    auto queue = create_unique();
    auto receiver = test::spawn([&] {
        return receive(queue, TypeSelector::any(), Deadline::after(30s)).status == Status::closed ? 0 : 1;
    });
    wait_until_sleeping(receiver.pid());
    queue.remove();
    EXPECT_EQ(receiver.wait(), 0);
}

TEST(SysvQueueTest, RemovalEndsABlockedSendWithClosed) {
    auto queue = create_unique();
    queue.set_capacity(4);
    ASSERT_TRUE(queue.send(1, as_bytes("full")).ok());
    auto sender =
        test::spawn([&] { return queue.send(1, as_bytes("more")).status == Status::closed ? 0 : 1; });
    wait_until_sleeping(sender.pid());
    queue.remove();
    EXPECT_EQ(sender.wait(), 0);
}

TEST(SysvQueueTest, SendingToARemovedQueueGivesClosed) {
    auto queue = create_unique();
    auto other = SysvQueue::open(queue.key());
    queue.remove();
    EXPECT_EQ(other.send(1, as_bytes("x")).status, Status::closed);
    EXPECT_EQ(other.send(1, as_bytes("x"), Deadline::after(10ms)).status, Status::closed);
    EXPECT_EQ(receive(other, TypeSelector::any(), Deadline::immediate()).status, Status::closed);
    EXPECT_EQ(receive(other, TypeSelector::any(), Deadline::never()).status, Status::closed);
    EXPECT_NO_THROW(other.remove());  // already gone is not an error
}

TEST(SysvQueueTest, MessageOverMsgmaxIsAnErrorNamingTheLimit) {
    auto queue = create_unique();
    const std::size_t msgmax = SysvQueue::max_message_size();
    std::ifstream proc("/proc/sys/kernel/msgmax");
    std::size_t from_proc = 0;
    proc >> from_proc;
    EXPECT_EQ(msgmax, from_proc);
    const std::vector<std::byte> big(msgmax + 1);
    for (const auto deadline : {Deadline::never(), Deadline::immediate(), Deadline::after(1s)}) {
        try {
            (void)queue.send(1, big, deadline);
            ADD_FAILURE() << "a message over kernel.msgmax was accepted";
        } catch (const Error& e) {
            const std::string what = e.what();
            EXPECT_EQ(e.code(), std::errc::message_size);
            EXPECT_NE(what.find("kernel.msgmax = " + std::to_string(msgmax)), std::string::npos) << what;
            EXPECT_NE(what.find("sysctl kernel.msgmax=" + std::to_string(msgmax + 1)), std::string::npos)
                << what;
            EXPECT_NE(what.find(queue.name()), std::string::npos) << what;
        }
    }
    EXPECT_TRUE(queue.send(1, std::span(big).first(msgmax)).ok());
    EXPECT_EQ(queue.stat().bytes, msgmax);
}

TEST(SysvQueueTest, MessageOverTheQueueCapacityIsAnErrorNotAHang) {
    auto queue = create_unique();
    queue.set_capacity(100);
    const std::vector<std::byte> body(200);
    for (const auto deadline : {Deadline::never(), Deadline::immediate()}) {
        try {
            (void)queue.send(1, body, deadline);
            ADD_FAILURE() << "a message over msg_qbytes was accepted";
        } catch (const Error& e) {
            const std::string what = e.what();
            EXPECT_EQ(e.code(), std::errc::message_size);
            EXPECT_NE(what.find("at most 100 bytes"), std::string::npos) << what;
            EXPECT_NE(what.find("kernel.msgmnb"), std::string::npos) << what;
        }
    }
}

TEST(SysvQueueTest, BufferTooSmallIsAnErrorAndTheMessageStays) {
    auto queue = create_unique();
    ASSERT_TRUE(queue.send(4, as_bytes("a message of 28 bytes total")).ok());
    std::array<std::byte, 10> small{};
    try {
        (void)queue.receive(TypeSelector::exactly(4), small);
        ADD_FAILURE() << "a message was cut to fit";
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_EQ(e.code(), std::errc::message_size);
        EXPECT_NE(what.find("10-byte buffer"), std::string::npos) << what;
        EXPECT_NE(what.find("stays in the queue"), std::string::npos) << what;
    }
    EXPECT_EQ(queue.stat().messages, 1u);
    EXPECT_EQ(receive(queue, TypeSelector::any()).body, "a message of 28 bytes total");
}

TEST(SysvQueueTest, TruncationOnlyWhenAskedFor) {
    auto queue = create_unique();
    ASSERT_TRUE(queue.send(4, as_bytes("0123456789abcdef")).ok());
    std::array<std::byte, 10> small{};
    const auto r =
        queue.receive(TypeSelector::any(), small, Deadline::immediate(), SysvQueue::Truncation::allowed);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.bytes, 10u);
    EXPECT_EQ(text_of(small), "0123456789");
    EXPECT_EQ(queue.stat().messages, 0u);
}

TEST(SysvQueueTest, CreateIsExclusiveAndTheOwnerRemoves) {
    int id = -1;
    std::optional<SysvKey> key;
    {
        auto queue = create_unique();
        id = queue.id();
        key = queue.key();
        EXPECT_TRUE(queue.owns());
        try {
            (void)SysvQueue::create(*key);
            ADD_FAILURE() << "a second create of the same key succeeded";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::file_exists);
            EXPECT_EQ(std::string(e.what()), "msgget(" + key->to_string() + "): File exists");
        }
        const auto opened = SysvQueue::open(*key);
        EXPECT_EQ(opened.id(), id);
        EXPECT_FALSE(opened.owns());
    }
    EXPECT_FALSE(queue_id_exists(id));
    EXPECT_THROW((void)SysvQueue::open(*key), Error);
}

TEST(SysvQueueTest, OpenedObjectsAndForkedCopiesNeverRemove) {
    auto queue = create_unique();
    { auto opened = SysvQueue::open(queue.key()); }
    auto child = test::spawn([&] {
        SysvQueue copy = std::move(queue);  // the child's copy of the owner, destroyed here
        return 0;
    });
    ASSERT_EQ(child.wait(), 0);
    EXPECT_TRUE(queue_id_exists(queue.id()));
    EXPECT_TRUE(queue.send(1, as_bytes("still here")).ok());
}

TEST(SysvQueueTest, KeepLeavesTheQueueForOthers) {
    int id = -1;
    SysvKey key = SysvKey::private_key();
    {
        auto queue = create_unique();
        id = queue.id();
        key = queue.key();
        queue.keep();
    }
    ASSERT_TRUE(queue_id_exists(id));
    auto reopened = SysvQueue::open(key);
    reopened.remove();
    EXPECT_FALSE(queue_id_exists(id));
}

TEST(SysvQueueTest, OpeningAMissingKeyNamesIt) {
    auto queue = create_unique();
    const auto key = queue.key();
    queue.remove();
    try {
        (void)SysvQueue::open(key);
        FAIL() << "opened a removed key";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
        EXPECT_EQ(std::string(e.what()), "msgget(" + key.to_string() + "): No such file or directory");
    }
}

TEST(SysvQueueTest, PrivateQueueIsReachedByIdFromAnotherProcess) {
    auto queue = SysvQueue::create(SysvKey::private_key());
    EXPECT_TRUE(queue.key().is_private());
    EXPECT_EQ(queue.name(), "queue id " + std::to_string(queue.id()));
    EXPECT_THROW((void)SysvQueue::open(SysvKey::private_key()), Error);
    const int id = queue.id();
    auto child = test::spawn([id] {
        const auto peer = SysvQueue::open_id(id);
        return peer.send(9, as_bytes("by id")).ok() ? 0 : 1;
    });
    ASSERT_EQ(child.wait(), 0);
    EXPECT_EQ(receive(queue, TypeSelector::exactly(9)).body, "by id");
    EXPECT_THROW((void)SysvQueue::open_id(-1), Error);
}

TEST(SysvQueueTest, StatReportsCountsPidsOwnerAndMode) {
    auto queue = create_unique();
    auto child = test::spawn([&] { return queue.send(1, as_bytes("12345")).ok() ? 0 : 1; });
    const pid_t child_pid = child.pid();
    ASSERT_EQ(child.wait(), 0);
    ASSERT_TRUE(queue.send(2, as_bytes("678")).ok());
    auto status = queue.stat();
    EXPECT_EQ(status.messages, 2u);
    EXPECT_EQ(status.bytes, 8u);
    EXPECT_EQ(status.last_sender, ::getpid());
    EXPECT_EQ(status.owner_uid, ::getuid());
    EXPECT_EQ(status.creator_uid, ::geteuid());
    EXPECT_EQ(status.mode, 0600u);
    EXPECT_GT(status.capacity_bytes, 0u);
    auto receiver = test::spawn([&] { return receive(queue, TypeSelector::any()).body == "12345" ? 0 : 1; });
    const pid_t receiver_pid = receiver.pid();
    ASSERT_EQ(receiver.wait(), 0);
    status = queue.stat();
    EXPECT_EQ(status.messages, 1u);
    EXPECT_EQ(status.last_receiver, receiver_pid);
    EXPECT_NE(status.last_receiver, child_pid);
    queue.set_mode(0640);
    EXPECT_EQ(queue.stat().mode, 0640u);
}

TEST(SysvQueueTest, BadArgumentsAreClearErrors) {
    auto queue = create_unique();
    try {
        (void)queue.send(0, as_bytes("x"));
        ADD_FAILURE() << "type 0 was sent";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
        EXPECT_NE(std::string(e.what()).find("start at 1"), std::string::npos) << e.what();
    }
    EXPECT_THROW(queue.set_mode(01777), Error);
    EXPECT_THROW((void)SysvQueue::create(SysvKey::private_key(), 04600), Error);
    EXPECT_EQ(queue.stat().messages, 0u);
}

// Root passes every permission check (CAP_IPC_OWNER), so the check is seen from a child that
// gives up root; a non-root run uses a queue its own owner may not write.
TEST(SysvQueueTest, ForeignQueueWithoutPermissionIsRefusedNamingTheKey) {
    if (::geteuid() == 0) {
        auto queue = create_unique(0600);
        auto child = test::spawn([&] {
            if (::setgid(65534) != 0 || ::setuid(65534) != 0) return 2;
            try {
                (void)SysvQueue::open(queue.key());
                return 1;
            } catch (const Error& e) {
                if (e.code() != std::errc::permission_denied) return 3;
                if (std::string(e.what()) != "msgget(" + queue.key().to_string() + "): Permission denied")
                    return 4;
            }
            try {
                (void)SysvQueue::open_id(queue.id()).send(1, as_bytes("x"));
                return 5;
            } catch (const Error& e) {
                return e.code() == std::errc::permission_denied ? 0 : 6;
            }
        });
        EXPECT_EQ(child.wait(), 0);
    } else {
        auto queue = create_unique(0400);
        try {
            (void)SysvQueue::open(queue.key(), SysvQueue::Access::write);
            ADD_FAILURE() << "opened a read-only queue for writing";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::permission_denied);
        }
        EXPECT_NO_THROW((void)SysvQueue::open(queue.key(), SysvQueue::Access::read));
    }
}

// kernel.msgmni is per IPC namespace: a private namespace with a limit of one queue shows the
// error without touching the machine's queues or limits.
TEST(SysvQueueTest, TooManyQueuesIsAnErrorNamingMsgmni) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to create an IPC namespace and set its kernel.msgmni";
    auto child = test::spawn([] {
        if (::unshare(CLONE_NEWIPC) != 0) return 77;
        std::ofstream("/proc/sys/kernel/msgmni") << 1;
        auto first = SysvQueue::create(SysvKey::private_key());
        try {
            (void)SysvQueue::create(SysvKey::private_key());
            return 1;
        } catch (const Error& e) {
            const std::string what = e.what();
            if (e.code() != std::errc::no_space_on_device) return 2;
            return what.find("kernel.msgmni = 1") != std::string::npos ? 0 : 3;
        }
    });
    const int code = child.wait();
    if (code == 77) GTEST_SKIP() << "unshare(CLONE_NEWIPC) is not permitted here";
    EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace ipckit
