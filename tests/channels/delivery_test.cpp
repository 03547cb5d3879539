// Delivery and crash recovery as DESIGN.md says, through the channel API in real processes:
// queues that keep what nobody took, receivers told what was waiting, shm:@NAME rings that
// vanish with their last holder, and a truncated shm:/ ring that is an Error, not SIGBUS.
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/pipe.hpp"
#include "ipckit/posix_queue.hpp"
#include "ipckit/sysv_key.hpp"
#include "ipckit/sysv_queue.hpp"
#include "support/process.hpp"
#include "support/transports.hpp"

namespace ipckit {
namespace {

[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string text(const std::vector<std::byte>& bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Removes a queue a test left on purpose, whichever kind it is.
void remove_queue(const std::string& address) {
    if (address.starts_with("posixmq:")) {
        PosixQueue::unlink(address.substr(8));
    } else {
        SysvQueue::open(SysvKey::parse(address.substr(7))).remove();
    }
}

class QueueDeliveryTest : public ::testing::TestWithParam<std::string> {
protected:
    std::string address() const {
        return GetParam() == "posixmq" ? "posixmq:/" + test::unique_name("ipckit-test")
                                       : "sysvmq:" + test::hex_key(test::random_sysv_key());
    }
};

TEST_P(QueueDeliveryTest, ACreatorLeavingMessagesKeepsTheQueueAndSaysHowMany) {
    const std::string where = address();
    auto sender = test::spawn([&] {
        Sender tx = Sender::create(where);
        for (const char* m : {"a", "b", "c"})
            if (!tx.send(as_bytes(m)).ok()) return 1;
        const SenderClose report = tx.close();
        return report.stored == 3 && !report.undelivered ? 0 : 2;
    });
    ASSERT_EQ(sender.wait(30s), 0);
    // The creator is gone; its messages are not.
    Receiver rx = Receiver::open(where);
    EXPECT_EQ(rx.waiting_at_open(), 3u);
    std::vector<std::byte> message;
    for (const char* m : {"a", "b", "c"}) {
        ASSERT_EQ(rx.recv(message, Deadline::after(10s)).status, Status::ok);
        EXPECT_EQ(text(message), m);
    }
    // Drained, and its sender dead: nothing more will come.
    EXPECT_EQ(rx.recv(message, Deadline::after(10s)).status, Status::closed);
    remove_queue(where);
}

TEST_P(QueueDeliveryTest, AnEmptyQueueIsRemovedWithItsCreator) {
    const std::string where = address();
    {
        Sender tx = Sender::create(where);
        Receiver rx = Receiver::open(where);
        EXPECT_EQ(rx.waiting_at_open(), 0u);
        ASSERT_TRUE(tx.send(as_bytes("x")).ok());
        std::vector<std::byte> message;
        ASSERT_EQ(rx.recv(message, Deadline::after(10s)).status, Status::ok);
        const SenderClose report = tx.close();
        EXPECT_EQ(report.stored, 0u);
        EXPECT_EQ(tx.close().stored, 0u);  // a second close reports nothing
    }
    EXPECT_THROW((void)Receiver::open(where), Error) << where << " was left behind";
}

INSTANTIATE_TEST_SUITE_P(Queues, QueueDeliveryTest, ::testing::Values("posixmq", "sysvmq"),
                         [](const auto& param_info) { return param_info.param; });

TEST(QueueRemovalTest, ASystemVReceiverWhoseQueueIsRemovedGetsAnErrorNamingIt) {
    const std::string where = "sysvmq:" + test::hex_key(test::random_sysv_key());
    Receiver rx = Receiver::create(where);
    auto remover = test::spawn([&] {
        std::this_thread::sleep_for(100ms);
        SysvQueue::open(SysvKey::parse(where.substr(7))).remove();
        return 0;
    });
    std::vector<std::byte> message;
    try {
        (void)rx.recv(message, Deadline::after(20s));
        ADD_FAILURE() << "a removed queue ended like a sender's clean close";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::identifier_removed);
        EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
    }
    EXPECT_EQ(remover.wait(30s), 0);
}

// ---- shm:@NAME: nothing to leak -----------------------------------------------------------

// Every trace of `name` this machine could hold: a /dev/shm file, a registry record, a
// descriptor or a mapping in any process, a bound abstract socket.
std::vector<std::string> traces_of(const std::string& name) {
    std::vector<std::string> found;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/dev/shm", ec))
        if (entry.path().filename().string().find(name) != std::string::npos) found.push_back(entry.path());
    if (const char* registry = std::getenv("IPCKIT_REGISTRY_DIR")) {
        for (const auto& entry : fs::recursive_directory_iterator(registry, ec)) {
            std::ifstream in(entry.path());
            const std::string content((std::istreambuf_iterator<char>(in)), {});
            if (entry.path().string().find(name) != std::string::npos ||
                content.find(name) != std::string::npos)
                found.push_back(entry.path());
        }
    }
    for (const auto& process : fs::directory_iterator("/proc", ec)) {
        const std::string pid = process.path().filename();
        if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
        for (const auto& fd : fs::directory_iterator(process.path() / "fd", ec)) {
            const auto target = fs::read_symlink(fd.path(), ec);
            if (!ec && target.string().find(name) != std::string::npos) found.push_back(fd.path());
        }
        std::ifstream maps(process.path() / "maps");
        for (std::string line; std::getline(maps, line);)
            if (line.find(name) != std::string::npos) found.push_back(pid + " maps " + line);
    }
    std::ifstream sockets("/proc/net/unix");
    for (std::string line; std::getline(sockets, line);)
        if (line.find("@" + name) != std::string::npos) found.push_back("socket " + line);
    return found;
}

TEST(SharedRegionTest, KillingEveryHolderOfAMemfdRingLeavesNothingAnywhere) {
    const std::string name = test::unique_name("ipckit-test");
    const std::string address = "shm:@" + name;
    Pipe ready = Pipe::create();
    auto receiver = test::spawn([&] {
        Receiver rx = Receiver::create(address);
        std::vector<std::byte> message;
        if (rx.recv(message, Deadline::after(20s)).status != Status::ok) return 1;
        (void)ready.writer.write_all(as_bytes("r"));
        ::pause();
        return 0;
    });
    auto sender = test::spawn([&] {
        Sender tx = Sender::open(address, Deadline::after(20s));
        if (!tx.send(as_bytes("hello")).ok()) return 1;
        (void)ready.writer.write_all(as_bytes("s"));
        ::pause();
        return 0;
    });
    std::array<std::byte, 2> got{};
    ASSERT_EQ(ready.reader.read_exact(got, Deadline::after(30s)).status, Status::ok);
    // While both live, the ring is there to be found: the search can fail.
    EXPECT_FALSE(traces_of(name).empty());
    receiver.kill(SIGKILL);
    sender.kill(SIGKILL);
    EXPECT_EQ(receiver.wait(), -SIGKILL);
    EXPECT_EQ(sender.wait(), -SIGKILL);
    const auto left = traces_of(name);
    EXPECT_TRUE(left.empty()) << left.front();
    // And the name is free for a fresh pair at once.
    Receiver rx = Receiver::create(address);
    Sender tx = Sender::open(address, Deadline::after(5s));
    ASSERT_TRUE(tx.send(as_bytes("again")).ok());
    std::vector<std::byte> message;
    ASSERT_EQ(rx.recv(message, Deadline::after(5s)).status, Status::ok);
    EXPECT_EQ(text(message), "again");
}

TEST(SharedRegionTest, AnotherServerOfTheSameNameIsRefused) {
    const std::string address = "shm:@" + test::unique_name("ipckit-test");
    Receiver first = Receiver::create(address);
    try {
        (void)Receiver::create(address);
        ADD_FAILURE() << "two creators of one shm:@NAME";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::address_in_use) << e.what();
    }
    EXPECT_THROW((void)Sender::create(address + "?keep=1"), Error);
}

// ---- shm:/NAME truncated under live peers ---------------------------------------------------

// The words a futex call of process `pid` waits on, from its /proc/PID/syscall arguments:
// futex's first argument; futex_waitv's first argument points at `count` struct futex_waitv
// {u64 val; u64 uaddr; u32 flags; u32 reserved}, read from /proc/PID/mem.
std::vector<std::uint64_t> futex_words(pid_t pid, long number, std::uint64_t first, std::uint64_t count) {
    if (number == SYS_futex) return {first};
    std::vector<std::uint64_t> words;
    std::ifstream mem("/proc/" + std::to_string(pid) + "/mem", std::ios::binary);
    mem.seekg(static_cast<std::streamoff>(first));
    for (std::uint64_t i = 0; i < std::min<std::uint64_t>(count, 128); ++i) {
        std::uint64_t entry[3] = {};
        if (!mem.read(reinterpret_cast<char*>(entry), sizeof entry)) break;
        words.push_back(entry[1]);
    }
    return words;
}

// Whether process `pid` (its main thread) sleeps in a futex (or futex_waitv) on a word of a
// mapping whose path names `name`: /proc/PID/syscall gives the call a blocked thread is in and
// its arguments ("running" when it is in none), /proc/PID/maps where the words lie. That is a
// ring call waiting, seen in the kernel, not guessed from how long the call has had.
bool sleeps_on_a_futex_in(pid_t pid, const std::string& name) {
    std::ifstream call("/proc/" + std::to_string(pid) + "/syscall");
    long number = -1;
    std::string first, second;
    if (!(call >> number >> first >> second) || (number != SYS_futex && number != SYS_futex_waitv))
        return false;
    const auto words =
        futex_words(pid, number, std::stoull(first, nullptr, 16), std::stoull(second, nullptr, 16));
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    for (std::string line; std::getline(maps, line);) {
        if (line.find(name) == std::string::npos) continue;
        unsigned long long start = 0, end = 0;
        char dash = 0;
        std::istringstream range(line);
        range >> std::hex >> start >> dash >> end;
        for (const auto word : words)
            if (word >= start && word < end) return true;
    }
    return false;
}

bool wait_until_sleeping_in(pid_t pid, const std::string& name) {
    for (int i = 0; i < 30'000; ++i) {
        if (sleeps_on_a_futex_in(pid, name)) return true;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}

// Exit codes of a child whose one call was in progress when the file was truncated.
enum { kErrorNamingIt = 0, kReturned = 1, kOtherError = 2, kFillFailed = 3 };

int ended_by_truncation(const std::string& address, const std::function<void()>& call) {
    try {
        call();
        return kReturned;  // returned as though the region were still there
    } catch (const Error& e) {
        const std::string what = e.what();
        if (what.find(address) != std::string::npos && what.find("truncated") != std::string::npos)
            return kErrorNamingIt;
        std::fprintf(stderr, "%s\n", what.c_str());
        return kOtherError;
    }
}

void expect_truncated_error(const std::function<void()>& call, const std::string& address) {
    try {
        call();
        ADD_FAILURE() << "a call on " << address << " after its truncation returned";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(address), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
}

// What `truncate -s 0 /dev/shm/NAME` does, without a program to start: the cut comes at once
// after the sleep was seen.
void truncate_shm(const std::string& name) {
    ASSERT_EQ(::truncate(("/dev/shm/" + name).c_str(), 0), 0) << std::strerror(errno);
}

// The call in progress has no deadline, and the cut itself wakes no futex (the words are in the
// pages cut away): only the guard's watch of the file (BusGuard, inotify) can end it, with the
// Error. Were the watch gone, the call would sleep on and the child's bounded wait fail.

// The receiver is inside recv, asleep on the empty ring, when the file is cut to 0 bytes: that
// very call ends with the Error, no signal; the live sender's next send gets it too.
TEST(TruncatedRingTest, TruncatingTheFileUnderAWaitingRecvEndsThatCallWithAnErrorNotSigbus) {
    const std::string name = test::unique_name("ipckit-test");
    const std::string address = "shm:/" + name;
    Pipe created = Pipe::create();
    auto receiver = test::spawn([&] {
        Receiver rx = Receiver::create(address);
        (void)created.writer.write_all(as_bytes("c"));
        std::vector<std::byte> message;
        return ended_by_truncation(address, [&] { (void)rx.recv(message, Deadline::never()); });
    });
    std::array<std::byte, 1> got{};
    ASSERT_EQ(created.reader.read_exact(got, Deadline::after(30s)).status, Status::ok);
    Sender tx = Sender::open(address, Deadline::after(10s));
    ASSERT_TRUE(wait_until_sleeping_in(receiver.pid(), name)) << "the receiver never waited in recv";
    truncate_shm(name);
    EXPECT_EQ(receiver.wait(30s), kErrorNamingIt) << "the recv in progress (-N: killed by signal N)";
    const std::vector<std::byte> big(64 * 1024, std::byte{7});
    expect_truncated_error([&] { (void)tx.send(big, Deadline::after(10s)); }, address);
}

// The sender is inside send, asleep on the full ring, when the file is cut: that call ends with
// the Error, no signal; the live receiver's next recv gets it too.
TEST(TruncatedRingTest, TruncatingTheFileUnderAWaitingSendEndsThatCallWithAnErrorNotSigbus) {
    const std::string name = test::unique_name("ipckit-test");
    const std::string address = "shm:/" + name;
    Receiver rx = Receiver::create(address);
    auto sender = test::spawn([&] {
        Sender tx = Sender::open(address, Deadline::after(10s));
        const std::vector<std::byte> big(64 * 1024, std::byte{7});
        int sent = 0;
        while (sent < 10'000 && tx.try_send(big).ok())
            ++sent;
        if (sent == 0 || sent == 10'000) return static_cast<int>(kFillFailed);
        return ended_by_truncation(address, [&] { (void)tx.send(big, Deadline::never()); });
    });
    ASSERT_TRUE(wait_until_sleeping_in(sender.pid(), name)) << "the sender never waited in send";
    truncate_shm(name);
    EXPECT_EQ(sender.wait(30s), kErrorNamingIt) << "the send in progress (-N: killed by signal N)";
    std::vector<std::byte> message;
    expect_truncated_error([&] { (void)rx.recv(message, Deadline::after(10s)); }, address);
}

// ---- Idle ends sleep until something happens -----------------------------------------------

// Context switches of every thread of `pid`, voluntary and not: a thread asleep in the kernel
// makes none until it is woken.
long context_switches(pid_t pid) {
    long total = 0;
    for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
        std::ifstream status(task.path() / "status");
        for (std::string line; std::getline(status, line);) {
            if (line.starts_with("voluntary_ctxt_switches:") ||
                line.starts_with("nonvoluntary_ctxt_switches:"))
                total += std::stol(line.substr(line.find(':') + 1));
        }
    }
    return total;
}

// Whether the main thread of `pid` is blocked in one of `calls` (/proc/PID/syscall).
bool blocked_in(pid_t pid, std::initializer_list<long> calls) {
    std::ifstream call("/proc/" + std::to_string(pid) + "/syscall");
    long number = -1;
    return (call >> number) && std::find(calls.begin(), calls.end(), number) != calls.end();
}

// An idle receiver (after a first message, so it knows its sender) and a sender waiting for room
// beside a receiver that does not read: each, once asleep, stays asleep while nothing happens.
// Before, an idle sysvmq: end woke ~580 times a second (it polled msgrcv), a posixmq: receiver 20
// times (50 ms slices to look at its sender's pid) and an shm:/ end once a second (its truncation
// check). The window is longer than any of those periods; the test
// counts wake-ups, it does not time anything. Then one message (or the reader's close) ends each.
TEST(IdleEndTest, IdleReceiversAndSendersWaitingForRoomMakeNoWakeUps) {
    const std::string n = test::unique_name("ipckit-idle");
    const std::vector<std::string> receivers = {"shm:/" + n + "-r",
                                                "shm:@" + n + "-r",
                                                "sysvshm:" + test::hex_key(test::random_sysv_key()),
                                                "shm:/" + n + "-l?senders=2",
                                                "sysvmq:" + test::hex_key(test::random_sysv_key()),
                                                "posixmq:/" + n + "-r"};
    const std::vector<std::string> senders = {"shm:/" + n + "-s?capacity=64KiB",
                                              "sysvmq:" + test::hex_key(test::random_sysv_key())};
    const std::initializer_list<long> sleeps = {SYS_futex,  SYS_futex_waitv, SYS_msgrcv,
                                                SYS_msgsnd, SYS_poll,        SYS_ppoll};
    std::vector<test::Child> children;
    std::vector<Sender> feeding;
    for (const auto& address : receivers) {
        Pipe created = Pipe::create();
        children.push_back(test::spawn([&] {
            Receiver rx = Receiver::create(address);
            (void)created.writer.write_all(as_bytes("c"));
            std::vector<std::byte> message;
            for (int i = 0; i < 2; ++i)
                if (!rx.recv(message, Deadline::after(60s)).ok()) return 1;
            return 0;
        }));
        std::array<std::byte, 1> got{};
        ASSERT_EQ(created.reader.read_exact(got, Deadline::after(30s)).status, Status::ok) << address;
        feeding.push_back(Sender::open(address, Deadline::after(10s)));
        ASSERT_TRUE(feeding.back().send(as_bytes("first"), Deadline::after(10s)).ok()) << address;
    }
    std::vector<Receiver> stalled;
    for (const auto& address : senders) {
        stalled.push_back(Receiver::create(address));
        children.push_back(test::spawn([&] {
            Sender tx = Sender::open(address, Deadline::after(10s));
            const std::vector<std::byte> block(1024, std::byte{1});
            for (;;) {
                const IoResult r = tx.send(block, Deadline::after(60s));
                if (!r.ok()) return r.status == Status::closed ? 0 : 1;
            }
        }));
        std::vector<std::byte> message;  // the receiver is known to the sender once it took one
        ASSERT_TRUE(stalled.back().recv(message, Deadline::after(10s)).ok()) << address;
    }
    for (std::size_t i = 0; i < children.size(); ++i) {
        bool asleep = false;
        for (int tries = 0; tries < 30'000 && !asleep; ++tries) {
            asleep = blocked_in(children[i].pid(), sleeps);
            if (!asleep) std::this_thread::sleep_for(1ms);
        }
        ASSERT_TRUE(asleep) << "child " << i << " never slept";
    }
    // Settled: a helper thread may still be on its way to sleep (the waker that a System V wait
    // just registered with) when the waiting thread is seen in its call.
    for (auto& child : children) {
        for (int tries = 0; tries < 50; ++tries) {
            const long first = context_switches(child.pid());
            std::this_thread::sleep_for(100ms);
            if (context_switches(child.pid()) == first) break;
        }
    }
    std::vector<long> before;
    for (auto& child : children)
        before.push_back(context_switches(child.pid()));
    std::this_thread::sleep_for(1500ms);
    for (std::size_t i = 0; i < children.size(); ++i) {
        const std::string& address =
            i < receivers.size() ? receivers[i] : "sender on " + senders[i - receivers.size()];
        EXPECT_EQ(context_switches(children[i].pid()), before[i]) << address << " woke while idle";
    }
    for (auto& tx : feeding)
        EXPECT_TRUE(tx.send(as_bytes("second"), Deadline::after(10s)).ok());
    stalled.clear();  // the reader goes: each sender's send ends with `closed`
    for (std::size_t i = 0; i < children.size(); ++i)
        EXPECT_EQ(children[i].wait(30s), 0) << "child " << i;
}

}  // namespace
}  // namespace ipckit
