// POSIX message queues in real processes: names, priorities, blocking and timed waits,
// poll/epoll readiness, limits, permissions, and the owner that unlinks what it created.
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/io.hpp"
#include "ipckit/posix_queue.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

std::string unique_queue_name() {
    return "/" + test::unique_name("ipckit-mq-test");
}

struct Received {
    Status status;
    unsigned priority;
    std::string body;
};

Received receive(const PosixQueue& queue, Deadline deadline = Deadline::immediate()) {
    std::vector<std::byte> buffer(queue.max_message_size());
    const auto r = queue.receive(buffer, deadline);
    return {r.status, r.priority, std::string(reinterpret_cast<const char*>(buffer.data()), r.bytes)};
}

bool name_exists(const std::string& name) {
    const mqd_t fd = ::mq_open(name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ::mq_close(fd);
    return true;
}

void wait_until_sleeping(pid_t pid) {
    for (int i = 0; i < 2000; ++i) {
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        std::getline(stat, line);
        const auto paren = line.rfind(')');
        if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'S') return;
        std::this_thread::sleep_for(1ms);
    }
}

void expect_bad_name(std::string_view name, std::string_view fragment) {
    for (int form = 0; form < 3; ++form) {
        try {
            if (form == 0) (void)PosixQueue::create(name);
            if (form == 1) (void)PosixQueue::open(name);
            if (form == 2) PosixQueue::unlink(name);
            ADD_FAILURE() << "\"" << name << "\" was accepted (form " << form << ")";
        } catch (const Error& e) {
            const std::string what = e.what();
            EXPECT_EQ(e.code(), std::errc::invalid_argument) << what;
            EXPECT_NE(what.find("\"" + std::string(name) + "\""), std::string::npos) << what;
            EXPECT_NE(what.find(fragment), std::string::npos) << what;
        }
    }
}

TEST(PosixQueueTest, BadNamesAreRefusedQuotingTheName) {
    expect_bad_name("", "empty");
    expect_bad_name("jobs", "must start with '/'");
    expect_bad_name("/", "nothing after");
    expect_bad_name("/a/b", "only the first");
    expect_bad_name("//a", "only the first");
    expect_bad_name("/.", "not queue names");
    expect_bad_name("/..", "not queue names");
    expect_bad_name("/" + std::string(256, 'x'), "NAME_MAX");
    EXPECT_NO_THROW(PosixQueue::check_name("/" + std::string(255, 'x')));
}

TEST(PosixQueueTest, ReceivesHighestPriorityFirstAndFifoWithinOne) {
    const auto name = unique_queue_name();
    auto queue = PosixQueue::create(name, {.max_messages = 8, .max_message_size = 64});
    auto sender = test::spawn([&] {
        const auto peer = PosixQueue::open(name, PosixQueue::Access::write);
        const std::vector<std::pair<unsigned, std::string>> messages = {
            {1, "low"},   {5, "high"}, {3, "mid"},
            {5, "high2"}, {0, "zero"}, {PosixQueue::max_priority(), "top"}};
        for (const auto& [priority, body] : messages)
            if (!peer.send(as_bytes(body), priority).ok()) return 1;
        return 0;
    });
    ASSERT_EQ(sender.wait(), 0);
    EXPECT_EQ(queue.message_count(), 6u);
    const std::vector<std::pair<unsigned, std::string>> expected = {
        {PosixQueue::max_priority(), "top"}, {5, "high"}, {5, "high2"}, {3, "mid"}, {1, "low"}, {0, "zero"}};
    for (const auto& [priority, body] : expected) {
        const auto r = receive(queue);
        EXPECT_EQ(r.status, Status::ok);
        EXPECT_EQ(r.body, body);
        EXPECT_EQ(r.priority, priority);
    }
    EXPECT_EQ(receive(queue).status, Status::would_block);
    EXPECT_THROW((void)queue.send(as_bytes("x"), PosixQueue::max_priority() + 1), Error);
}

TEST(PosixQueueTest, BlockingReceiveIsWokenBySenderInAnotherProcess) {
    const auto name = unique_queue_name();
    auto queue = PosixQueue::create(name);
    auto receiver = test::spawn([&] {
        const auto peer = PosixQueue::open(name, PosixQueue::Access::read);
        const auto r = receive(peer, Deadline::never());
        return r.status == Status::ok && r.body == "wake" && r.priority == 2 ? 0 : 1;
    });
    wait_until_sleeping(receiver.pid());
    ASSERT_TRUE(queue.send(as_bytes("wake"), 2).ok());
    EXPECT_EQ(receiver.wait(), 0);
}

TEST(PosixQueueTest, TimedReceiveIsWokenBySenderInAnotherProcess) {
    const auto name = unique_queue_name();
    auto queue = PosixQueue::create(name);
    auto receiver = test::spawn([&] { return receive(queue, Deadline::after(30s)).body == "late" ? 0 : 1; });
    wait_until_sleeping(receiver.pid());
    ASSERT_TRUE(queue.send(as_bytes("late")).ok());
    EXPECT_EQ(receiver.wait(), 0);
}

// `wake_fd` ends an untimed wait with timed_out once it polls readable, here a process's pidfd
// at its death; a message already there is taken first.
TEST(PosixQueueTest, AWaitEndsWhenItsWakeDescriptorPollsReadable) {
    auto queue = PosixQueue::create(unique_queue_name());
    auto sleeper = test::spawn([] {
        ::pause();
        return 0;
    });
    const Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, sleeper.pid(), 0)));
    ASSERT_TRUE(pidfd) << "pidfd_open: " << std::strerror(errno);
    std::vector<std::byte> buffer(queue.max_message_size());
    ASSERT_TRUE(queue.send(as_bytes("first")).ok());
    EXPECT_EQ(queue.receive(buffer, Deadline::never(), pidfd.get()).status, Status::ok);
    auto waiter = test::spawn([&] {
        return queue.receive(buffer, Deadline::never(), pidfd.get()).status == Status::timed_out ? 0 : 1;
    });
    wait_until_sleeping(waiter.pid());
    sleeper.kill(SIGKILL);
    (void)sleeper.wait();
    EXPECT_EQ(waiter.wait(30s), 0);
    EXPECT_EQ(queue.message_count(), 0u);
}

TEST(PosixQueueTest, NonBlockingCallsReportWouldBlockWithoutChangingTheDescriptor) {
    auto queue = PosixQueue::create(unique_queue_name(), {.max_messages = 1, .max_message_size = 16});
    EXPECT_EQ(receive(queue).status, Status::would_block);
    ASSERT_TRUE(queue.send(as_bytes("one"), 0, Deadline::immediate()).ok());
    const auto full = queue.send(as_bytes("two"), 0, Deadline::immediate());
    EXPECT_EQ(full.status, Status::would_block);
    EXPECT_EQ(full.bytes, 0u);
    EXPECT_FALSE(queue.fd().nonblocking());
    EXPECT_EQ(queue.message_count(), 1u);
}

TEST(PosixQueueTest, TimedCallsTimeOut) {
    auto queue = PosixQueue::create(unique_queue_name(), {.max_messages = 1, .max_message_size = 16});
    EXPECT_EQ(receive(queue, Deadline::after(30ms)).status, Status::timed_out);
    ASSERT_TRUE(queue.send(as_bytes("one")).ok());
    EXPECT_EQ(queue.send(as_bytes("two"), 0, Deadline::after(30ms)).status, Status::timed_out);
}

TEST(PosixQueueTest, BlockedSendIsReleasedByAReceiverInAnotherProcess) {
    const auto name = unique_queue_name();
    auto queue = PosixQueue::create(name, {.max_messages = 1, .max_message_size = 16});
    ASSERT_TRUE(queue.send(as_bytes("first")).ok());
    auto sender =
        test::spawn([&] { return queue.send(as_bytes("second"), 0, Deadline::after(30s)).ok() ? 0 : 1; });
    wait_until_sleeping(sender.pid());
    EXPECT_EQ(receive(queue).body, "first");
    EXPECT_EQ(sender.wait(), 0);
    EXPECT_EQ(receive(queue, Deadline::after(30s)).body, "second");
}

TEST(PosixQueueTest, DescriptorIsReadyForPollAndEpoll) {
    const auto name = unique_queue_name();
    auto queue = PosixQueue::create(name, {.max_messages = 1, .max_message_size = 16});
    pollfd pfd{queue.native_handle(), POLLIN | POLLOUT, 0};
    ASSERT_EQ(::poll(&pfd, 1, 0), 1);
    EXPECT_EQ(pfd.revents, POLLOUT);  // empty: room, nothing to read

    Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
    ASSERT_TRUE(epoll.valid());
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = queue.native_handle();
    ASSERT_EQ(::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, queue.native_handle(), &event), 0);
    epoll_event ready{};
    EXPECT_EQ(::epoll_wait(epoll.get(), &ready, 1, 0), 0);

    auto sender = test::spawn([&] { return PosixQueue::open(name).send(as_bytes("ping")).ok() ? 0 : 1; });
    ASSERT_EQ(sender.wait(), 0);
    ASSERT_EQ(::epoll_wait(epoll.get(), &ready, 1, 10000), 1);
    EXPECT_EQ(ready.data.fd, queue.native_handle());
    EXPECT_TRUE(ready.events & EPOLLIN);
    pfd.revents = 0;
    ASSERT_EQ(::poll(&pfd, 1, 0), 1);
    EXPECT_EQ(pfd.revents, POLLIN);  // full: something to read, no room
    EXPECT_EQ(receive(queue).body, "ping");
}

TEST(PosixQueueTest, MessageOverTheQueuesSizeIsAnErrorNamingTheLimit) {
    auto queue = PosixQueue::create(unique_queue_name(), {.max_messages = 2, .max_message_size = 32});
    const std::vector<std::byte> big(33);
    for (const auto deadline : {Deadline::never(), Deadline::immediate(), Deadline::after(1s)}) {
        try {
            (void)queue.send(big, 0, deadline);
            ADD_FAILURE() << "an oversize message was accepted";
        } catch (const Error& e) {
            const std::string what = e.what();
            EXPECT_EQ(e.code(), std::errc::message_size);
            EXPECT_NE(what.find("max_message_size = 32"), std::string::npos) << what;
            EXPECT_NE(what.find("fs.mqueue.msgsize_max"), std::string::npos) << what;
            EXPECT_NE(what.find(queue.name()), std::string::npos) << what;
        }
    }
    EXPECT_EQ(queue.message_count(), 0u);
    EXPECT_TRUE(queue.send(std::span(big).first(32)).ok());
}

TEST(PosixQueueTest, BufferSmallerThanTheMessageSizeIsAnErrorAndTheMessageStays) {
    auto queue = PosixQueue::create(unique_queue_name(), {.max_messages = 2, .max_message_size = 64});
    ASSERT_TRUE(queue.send(as_bytes("short"), 4).ok());
    std::array<std::byte, 10> small{};
    try {
        (void)queue.receive(small);
        ADD_FAILURE() << "received into a buffer under max_message_size";
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_EQ(e.code(), std::errc::message_size);
        EXPECT_NE(what.find("10-byte buffer"), std::string::npos) << what;
        EXPECT_NE(what.find("max_message_size = 64"), std::string::npos) << what;
    }
    EXPECT_EQ(queue.message_count(), 1u);
    const auto r = receive(queue);
    EXPECT_EQ(r.body, "short");
    EXPECT_EQ(r.priority, 4u);
}

TEST(PosixQueueTest, AttributesAreKeptAndDefaultsFilledIn) {
    auto queue = PosixQueue::create(unique_queue_name(), {.max_messages = 3, .max_message_size = 128});
    EXPECT_EQ(queue.attributes().max_messages, 3);
    EXPECT_EQ(queue.attributes().max_message_size, 128);
    EXPECT_EQ(queue.max_message_size(), 128u);
    const auto limits = PosixQueue::limits();
    auto defaults = PosixQueue::create(unique_queue_name());
    EXPECT_EQ(defaults.attributes().max_messages, limits.msg_default);
    EXPECT_EQ(defaults.attributes().max_message_size, limits.msgsize_default);
    auto half = PosixQueue::create(unique_queue_name(), {.max_messages = 2});
    EXPECT_EQ(half.attributes().max_messages, 2);
    EXPECT_EQ(half.attributes().max_message_size, limits.msgsize_default);
    EXPECT_THROW((void)PosixQueue::create(unique_queue_name(), {.max_messages = -1}), Error);
    EXPECT_THROW((void)PosixQueue::create(unique_queue_name(), {}, 02600), Error);
}

TEST(PosixQueueTest, CreateIsExclusiveAndTheOwnerUnlinks) {
    const auto name = unique_queue_name();
    {
        auto queue = PosixQueue::create(name);
        EXPECT_TRUE(queue.owns());
        EXPECT_FALSE(queue.fd().inheritable());  // close-on-exec
        try {
            (void)PosixQueue::create(name);
            ADD_FAILURE() << "a second create of the same name succeeded";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::file_exists);
            EXPECT_EQ(std::string(e.what()), "mq_open(" + name + "): File exists");
        }
        { auto opened = PosixQueue::open(name); }
        EXPECT_TRUE(name_exists(name));
        auto child = test::spawn([&] {
            PosixQueue copy = std::move(queue);  // the child's copy of the owner, destroyed here
            return 0;
        });
        ASSERT_EQ(child.wait(), 0);
        EXPECT_TRUE(name_exists(name));
    }
    EXPECT_FALSE(name_exists(name));
}

TEST(PosixQueueTest, OpeningAMissingQueueNamesIt) {
    const auto name = unique_queue_name();
    try {
        (void)PosixQueue::open(name);
        FAIL() << "opened a missing queue";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
        EXPECT_EQ(std::string(e.what()), "mq_open(" + name + "): No such file or directory");
    }
    EXPECT_THROW(PosixQueue::unlink(name), Error);
}

TEST(PosixQueueTest, UnlinkRemovesTheNameButOpenDescriptorsKeepWorking) {
    const auto name = unique_queue_name();
    auto queue = PosixQueue::create(name);
    auto other = PosixQueue::open(name);
    queue.unlink();
    EXPECT_FALSE(queue.owns());
    EXPECT_FALSE(name_exists(name));
    ASSERT_TRUE(other.send(as_bytes("after unlink")).ok());
    EXPECT_EQ(receive(queue).body, "after unlink");
    EXPECT_NO_THROW(queue.unlink());        // already gone is not an error for the object
    auto again = PosixQueue::create(name);  // the name is free again
    again.keep();
    PosixQueue::unlink(name);
}

// Root passes every permission check, so the check is seen from a child that gives up root.
TEST(PosixQueueTest, ForeignQueueWithoutPermissionIsRefused) {
    const auto name = unique_queue_name();
    if (::geteuid() == 0) {
        auto queue = PosixQueue::create(name);
        auto child = test::spawn([&] {
            if (::setgid(65534) != 0 || ::setuid(65534) != 0) return 2;
            try {
                (void)PosixQueue::open(name);
                return 1;
            } catch (const Error& e) {
                if (e.code() != std::errc::permission_denied) return 3;
                return std::string(e.what()) == "mq_open(" + name + "): Permission denied" ? 0 : 4;
            }
        });
        EXPECT_EQ(child.wait(), 0);
    } else {
        auto queue = PosixQueue::create(name, {}, 0400);
        EXPECT_THROW((void)PosixQueue::open(name, PosixQueue::Access::write), Error);
        EXPECT_NO_THROW((void)PosixQueue::open(name, PosixQueue::Access::read));
    }
}

// Limits. An unprivileged creator is held to fs.mqueue.msg_max and msgsize_max; root only to
// the kernel's hard limits. The queue-count limit is checked in a private IPC namespace so
// the machine's own queues and limits are not touched.
TEST(PosixQueueTest, AttributesOverTheLimitsAreErrorsNamingThem) {
    const auto limits = PosixQueue::limits();
    ASSERT_GT(limits.msg_max, 0);
    const auto check = [](long messages, long size, std::string_view fragment) -> int {
        try {
            (void)PosixQueue::create(unique_queue_name(),
                                     {.max_messages = messages, .max_message_size = size});
            return 1;
        } catch (const Error& e) {
            if (e.code() != std::errc::invalid_argument) return 2;
            return std::string(e.what()).find(fragment) != std::string::npos ? 0 : 3;
        }
    };
    if (::geteuid() == 0) {
        EXPECT_EQ(check(65537, 16, "hard limit 65536"), 0);
        EXPECT_EQ(check(1, 16L * 1024 * 1024 + 1, "hard limit 16777216"), 0);
        auto child = test::spawn([&] {
            if (::setgid(65534) != 0 || ::setuid(65534) != 0) return 20;
            if (const int r = check(
                    limits.msg_max + 1, 16,
                    "fs.mqueue.msg_max = " + std::to_string(limits.msg_max) +
                        "; raise it with sysctl fs.mqueue.msg_max=" + std::to_string(limits.msg_max + 1)))
                return 10 + r;
            return check(1, limits.msgsize_max + 1,
                         "fs.mqueue.msgsize_max = " + std::to_string(limits.msgsize_max));
        });
        EXPECT_EQ(child.wait(), 0);
    } else {
        EXPECT_EQ(check(limits.msg_max + 1, 16, "fs.mqueue.msg_max"), 0);
    }
}

TEST(PosixQueueTest, TooManyQueuesIsAnErrorNamingQueuesMax) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to create an IPC namespace and set its queues_max";
    auto child = test::spawn([] {
        if (::unshare(CLONE_NEWIPC) != 0) return 77;
        std::ofstream("/proc/sys/fs/mqueue/queues_max") << 1;
        // CAP_SYS_RESOURCE ignores queues_max: give up root to see the limit.
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) return 2;
        auto first = PosixQueue::create(unique_queue_name(), {.max_messages = 1, .max_message_size = 8});
        try {
            (void)PosixQueue::create(unique_queue_name(), {.max_messages = 1, .max_message_size = 8});
            return 1;
        } catch (const Error& e) {
            if (e.code() != std::errc::no_space_on_device) return 3;
            return std::string(e.what()).find("fs.mqueue.queues_max = 1") != std::string::npos ? 0 : 4;
        }
    });
    const int code = child.wait();
    if (code == 77) GTEST_SKIP() << "unshare(CLONE_NEWIPC) is not permitted here";
    EXPECT_EQ(code, 0);
}

TEST(PosixQueueTest, QueueMemoryOverRlimitMsgqueueIsAnErrorNamingIt) {
    auto child = test::spawn([] {
        const rlimit tiny{1024, 1024};
        if (::setrlimit(RLIMIT_MSGQUEUE, &tiny) != 0) return 2;
        try {
            (void)PosixQueue::create(unique_queue_name(), {.max_messages = 4, .max_message_size = 4096});
            return 1;
        } catch (const Error& e) {
            if (e.code() != std::errc::too_many_files_open) return 3;
            return std::string(e.what()).find("RLIMIT_MSGQUEUE = 1024") != std::string::npos ? 0 : 4;
        }
    });
    EXPECT_EQ(child.wait(), 0);
}

}  // namespace
}  // namespace ipckit
