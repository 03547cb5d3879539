// Resource exhaustion: a full channel, a System V queue at its byte capacity (msgmnb), /dev/shm
// full, the descriptor limit. Each is an expected outcome (would_block, timed_out) or a clear
// error naming the call, never a crash, and nothing already sent is lost.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/sysv_key.hpp"
#include "ipckit/sysv_queue.hpp"
#include "support/numbered.hpp"
#include "support/process.hpp"
#include "support/transports.hpp"

namespace ipckit {
namespace {

// Records of the channels these tests create (and of the creators they kill) stay out of the
// user's registry.
[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;

// More than any channel's default buffer holds in messages of this size.
constexpr std::uint64_t kMostMessages = 200'000;
constexpr std::size_t kPayload = 512;

struct Shared {
    std::atomic<std::uint64_t> sent;  // try_sends that returned ok before the first would_block
    std::atomic<int> full;            // the sender saw would_block
    std::atomic<int> drained;         // the receiver took everything
    char text[512];                   // an error message from a child
};

Shared& shared_in(const Mapping& region) {
    return *::new (region.bytes().data()) Shared{};
}

// Receives `count` messages numbered from `first`: whole, in order, nothing skipped.
void expect_stream(Receiver& receiver, std::uint64_t first, std::uint64_t count) {
    test::SequenceCheck check;
    check.next = first;
    std::vector<std::byte> message;
    for (std::uint64_t i = 0; i < count; ++i) {
        const IoResult r = receiver.recv(message, Deadline::after(10s));
        ASSERT_EQ(r.status, Status::ok) << "message " << first + i << " of " << first + count;
        check.take(message);
    }
    EXPECT_EQ(check.torn, 0u);
    EXPECT_EQ(check.duplicated, 0u);
    EXPECT_EQ(check.skipped, 0u);
    EXPECT_EQ(check.next, first + count);
}

// ---- a full channel -------------------------------------------------------------------------

class FaultsFullChannelTest : public ::testing::TestWithParam<test::TransportCase> {};

TEST_P(FaultsFullChannelTest, TrySendOnAFullChannelWouldBlockAndNothingIsLostOnceDrained) {
    test::TempDir dir;
    const std::string address = GetParam().address(dir);
    auto region = Mapping::anonymous_shared(4096);
    Shared& shared = shared_in(region);
    Receiver receiver = Receiver::create(address);
    auto sender = test::spawn([&] {
        Sender tx = Sender::open(address, Deadline::after(10s));
        // The first send may wait for the connection; the rest only try.
        if (!tx.send(test::numbered_message(0, kPayload), Deadline::after(10s)).ok()) return 1;
        std::uint64_t sequence = 1;
        for (; sequence < kMostMessages; ++sequence) {
            const IoResult r = tx.try_send(test::numbered_message(sequence, kPayload));
            if (r.status == Status::would_block) break;
            if (!r.ok()) return 2;
        }
        shared.sent.store(sequence);
        shared.full.store(sequence < kMostMessages ? 1 : -1);
        for (int i = 0; i < 30000 && shared.drained.load() == 0; ++i)
            std::this_thread::sleep_for(1ms);
        // Room again: the message refused before goes now.
        return tx.send(test::numbered_message(sequence, kPayload), Deadline::after(10s)).ok() ? 0 : 3;
    });
    for (int i = 0; i < 30000 && shared.full.load() == 0; ++i)
        std::this_thread::sleep_for(1ms);
    ASSERT_EQ(shared.full.load(), 1) << "try_send never said would_block after " << shared.sent.load();
    const std::uint64_t sent = shared.sent.load();
    expect_stream(receiver, 0, sent);
    std::vector<std::byte> extra;
    EXPECT_EQ(receiver.try_recv(extra).status, Status::would_block) << "a message no send returned ok for";
    shared.drained.store(1);
    expect_stream(receiver, sent, 1);
    EXPECT_EQ(sender.wait(30s), 0);
}

INSTANTIATE_TEST_SUITE_P(Transports, FaultsFullChannelTest, ::testing::ValuesIn(test::all_transports()),
                         [](const auto& test_info) { return test_info.param.name; });

// ---- System V queue capacity ----------------------------------------------------------------

TEST(FaultsSysvQueueTest, ByteCapacityReachedIsWouldBlockOrTimeoutNotAnErrorAndLosesNothing) {
    const std::string address = "sysvmq:" + test::hex_key(test::random_sysv_key());
    Receiver receiver = Receiver::create(address);
    // A small msg_qbytes (the per-queue form of kernel.msgmnb), so it is reached quickly.
    constexpr std::size_t kCapacity = 4096;
    SysvQueue::open(SysvKey::parse(address.substr(7))).set_capacity(kCapacity);
    Sender sender = Sender::open(address);
    std::uint64_t sent = 0;
    for (; sent < 1000; ++sent) {
        const IoResult r = sender.try_send(test::numbered_message(sent, 300));
        if (r.status == Status::would_block) break;
        ASSERT_EQ(r.status, Status::ok);
    }
    ASSERT_LT(sent, 1000u) << "msg_qbytes of " << kCapacity << " never reached";
    EXPECT_LE(sent * (test::kNumberedHeader + 300), kCapacity);
    // A blocking send with a deadline waits and says timed_out: the queue is full, not broken.
    EXPECT_EQ(sender.send(test::numbered_message(sent, 300), Deadline::after(100ms)).status,
              Status::timed_out);
    expect_stream(receiver, 0, sent);
    ASSERT_EQ(sender.send(test::numbered_message(sent, 300), Deadline::after(10s)).status, Status::ok);
    expect_stream(receiver, sent, 1);
}

// ---- /dev/shm full --------------------------------------------------------------------------

// Exit codes of the child that mounts a small /dev/shm.
enum { kClearError = 0, kCannotMount = 77, kNoError = 3, kWrongError = 4 };

TEST(FaultsShmFullTest, ARingLargerThanFreeDevShmIsAClearErrorNotACrash) {
    if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs over /dev/shm needs root";
    auto region = Mapping::anonymous_shared(4096);
    Shared& shared = shared_in(region);
    const std::string address = "shm:/" + test::unique_name("ipckit-full") + "?capacity=4MiB";
    auto child = test::spawn([&] {
        // A private mount namespace: the small tmpfs is seen by this process only and goes
        // away with it.
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m") != 0) {
            std::snprintf(shared.text, sizeof shared.text, "%s", std::strerror(errno));
            return static_cast<int>(kCannotMount);
        }
        try {
            Receiver receiver = Receiver::create(address);
            // Created anyway (tmpfs allots pages when they are first touched): fill the ring.
            // Touching a page tmpfs cannot supply raises SIGBUS, which ends this process.
            Sender sender = Sender::open(address);
            const std::vector<std::byte> chunk(64 << 10, std::byte{1});
            while (sender.try_send(chunk).ok()) {
            }
            return static_cast<int>(kNoError);
        } catch (const Error& e) {
            std::snprintf(shared.text, sizeof shared.text, "%s", e.what());
            return e.code() == std::errc::no_space_on_device ? static_cast<int>(kClearError)
                                                             : static_cast<int>(kWrongError);
        }
    });
    const int status = child.wait(30s);
    if (status == kCannotMount) GTEST_SKIP() << "cannot mount a private tmpfs over /dev/shm: " << shared.text;
    EXPECT_NE(status, -SIGBUS)
        << "creating " << address
        << " on a 1 MiB /dev/shm succeeded and its first use beyond 1 MiB raised SIGBUS:"
           " creation must reserve the pages (posix_fallocate) and fail with ENOSPC";
    EXPECT_NE(status, static_cast<int>(kNoError)) << "a 4 MiB ring fitted a 1 MiB /dev/shm";
    EXPECT_EQ(status, static_cast<int>(kClearError)) << shared.text;
    if (status == kClearError) {
        EXPECT_NE(std::string(shared.text).find("ipckit-full"), std::string::npos)
            << "the error names the object: " << shared.text;
    }
}

// ---- the descriptor limit -------------------------------------------------------------------

// UBSan's vptr check (-fsanitize=vptr, part of -fsanitize=undefined: the asan and ubsan
// builds), on meeting an object of a type it has not cached, first makes sure the object's vtable
// can be read by writing it into a pipe (sanitizer_common's IsAccessibleMemoryRange). The
// library constructs its Error at the moment no descriptor is left, so pipe() fails with EMFILE
// and the check reports the valid Error as "member access within address … which does not point
// to an object of type 'system_error' … invalid vptr" (the constructor's member initialiser in
// <system_error>), and aborts. Two descriptors spared would let it pass, but the Error is made
// exactly when none are. Linked in when the runtime's handler is.
extern "C" [[gnu::weak]] void __ubsan_handle_dynamic_type_cache_miss(void*, void*, void*);

TEST(FaultsDescriptorLimitTest, CreatingPastTheLimitIsAClearErrorAndAnOpenChannelKeepsDelivering) {
    if (&__ubsan_handle_dynamic_type_cache_miss != nullptr) {
        GTEST_SKIP() << "UBSan's vptr check needs a pipe (two descriptors) to check the Error made when "
                        "none is left, and reports it as an invalid vptr: see this test's comment";
    }
    auto region = Mapping::anonymous_shared(4096);
    Shared& shared = shared_in(region);
    const std::string address = "unix:@" + test::unique_name("ipckit-emfile");
    constexpr std::uint64_t kStream = 100;
    auto child = test::spawn([&] {
        Receiver receiver = Receiver::create(address);
        auto sender = test::spawn([&] {
            Sender tx = Sender::open(address, Deadline::after(10s));
            for (std::uint64_t i = 0; i < kStream; ++i) {
                if (!tx.send(test::numbered_message(i, 1000), Deadline::after(10s)).ok()) return 1;
            }
            for (;;)
                ::pause();
        });
        // The connection exists (and its first messages arrived) before the limit is reached.
        test::SequenceCheck check;
        std::vector<std::byte> message;
        for (int i = 0; i < 10; ++i) {
            if (!receiver.recv(message, Deadline::after(10s)).ok()) return 10;
            check.take(message);
        }
        std::size_t open_now = 0;
        for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
            ++open_now;
        const rlimit low{open_now + 8, open_now + 8};
        if (::setrlimit(RLIMIT_NOFILE, &low) != 0) return 11;
        std::vector<Receiver> more;
        bool refused = false;
        for (int i = 0; i < 100 && !refused; ++i) {
            try {
                more.push_back(Receiver::create("unix:@" + test::unique_name("ipckit-emfile")));
            } catch (const Error& e) {
                std::snprintf(shared.text, sizeof shared.text, "%s", e.what());
                if (e.code() != std::errc::too_many_files_open) return 12;
                refused = true;
            }
        }
        if (!refused) return 13;
        // What was sent on the channel that was already open still arrives, whole and in order.
        while (check.received < kStream) {
            if (!receiver.recv(message, Deadline::after(10s)).ok()) return 14;
            check.take(message);
        }
        sender.kill(SIGKILL);
        (void)sender.wait(10s);
        return check.next == kStream && check.torn == 0 && check.duplicated == 0 && check.skipped == 0 ? 0
                                                                                                       : 15;
    });
    EXPECT_EQ(child.wait(60s), 0) << shared.text;
    const std::string what = shared.text;
    EXPECT_NE(what.find("Too many open files"), std::string::npos) << what;
    EXPECT_NE(what.find("ipckit-emfile"), std::string::npos) << "the error names the object: " << what;
    EXPECT_NE(what.find('('), std::string::npos) << "the error names the call: " << what;
}

}  // namespace
}  // namespace ipckit
