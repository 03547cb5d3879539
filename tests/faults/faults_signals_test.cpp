// Signals during a stream: EINTR in every blocking call neither loses nor duplicates data.
//
// Both peers install a SIGUSR1 handler *without* SA_RESTART, so every blocking system call
// they are in (read, write, poll, msgrcv, mq_timedreceive, futex, accept, connect…) returns
// EINTR when the signal lands. The test process fires SIGUSR1 at both, continuously, while a
// stream of numbered, checksummed messages of random sizes goes from one to the other; half
// the calls wait with a deadline and half without (Deadline::never() blocks in the kernel,
// where an EINTR is easiest to mishandle).
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/mapping.hpp"
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

constexpr std::uint64_t kMessages = 10000;

struct Shared {
    std::atomic<int> receiver_armed;  // its handler is installed: a signal no longer kills it
    std::atomic<int> sender_armed;
    std::atomic<int> created;  // the receiver has created the channel
    std::atomic<int> receiver_done;
    std::atomic<int> sender_done;
    std::atomic<std::uint64_t> receiver_signals;  // handler runs, to prove signals landed
    std::atomic<std::uint64_t> sender_signals;
};

std::atomic<std::uint64_t>* handler_counter = nullptr;

void count_signal(int) {
    if (handler_counter != nullptr) handler_counter->fetch_add(1, std::memory_order_relaxed);
}

// No SA_RESTART: blocking calls fail with EINTR instead of being restarted by the kernel.
void arm(std::atomic<std::uint64_t>& counter, std::atomic<int>& armed) {
    handler_counter = &counter;
    struct sigaction action {};
    action.sa_handler = count_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    ::sigaction(SIGUSR1, &action, nullptr);
    armed.store(1);
}

Deadline alternate(std::uint64_t sequence) {
    return sequence % 2 == 0 ? Deadline::never() : Deadline::after(30s);
}

class FaultsSignalsTest : public ::testing::TestWithParam<test::TransportCase> {};

TEST_P(FaultsSignalsTest, SignalsFiredDuringAStreamNeitherLoseNorDuplicateMessages) {
    test::TempDir dir;
    const std::string address = GetParam().address(dir);
    auto region = Mapping::anonymous_shared(4096);
    auto& shared = *::new (region.bytes().data()) Shared{};

    auto receiver = test::spawn([&] {
        arm(shared.receiver_signals, shared.receiver_armed);
        Receiver rx = Receiver::create(address);
        shared.created.store(1);
        test::SequenceCheck check;
        std::vector<std::byte> message;
        while (check.received < kMessages) {
            const IoResult r = rx.recv(message, alternate(check.received));
            if (!r.ok()) {
                std::fprintf(stderr, "recv ended %d after %llu messages\n", static_cast<int>(r.status),
                             static_cast<unsigned long long>(check.received));
                return 1;
            }
            check.take(message);
        }
        shared.receiver_done.store(1);
        if (check.torn != 0 || check.duplicated != 0 || check.skipped != 0 || check.next != kMessages) {
            std::fprintf(stderr, "torn %llu duplicated %llu skipped %llu next %llu\n",
                         static_cast<unsigned long long>(check.torn),
                         static_cast<unsigned long long>(check.duplicated),
                         static_cast<unsigned long long>(check.skipped),
                         static_cast<unsigned long long>(check.next));
            return 2;
        }
        return 0;
    });
    auto sender = test::spawn([&] {
        arm(shared.sender_signals, shared.sender_armed);
        for (int i = 0; i < 10000 && shared.created.load() == 0; ++i)
            std::this_thread::sleep_for(1ms);
        Sender tx = Sender::open(address, Deadline::after(10s));
        std::mt19937_64 rng(7);
        const std::size_t cap =
            std::min<std::size_t>(tx.max_message_size() - test::kNumberedHeader, 16 << 10);
        for (std::uint64_t sequence = 0; sequence < kMessages; ++sequence) {
            const auto message =
                test::numbered_message(sequence, rng() % 4 == 0 ? rng() % (cap + 1) : rng() % 200);
            const IoResult r = tx.send(message, alternate(sequence));
            if (!r.ok()) {
                std::fprintf(stderr, "send ended %d at message %llu\n", static_cast<int>(r.status),
                             static_cast<unsigned long long>(sequence));
                return 1;
            }
        }
        shared.sender_done.store(1);
        // The receiver may still be reading what this side sent: stay until it is done (a
        // stream's bytes survive the sender, but let every transport end the same way).
        for (int i = 0; i < 60000 && shared.receiver_done.load() == 0; ++i)
            std::this_thread::sleep_for(1ms);
        return 0;
    });

    // Fire until both are done; only at processes whose handler is in place.
    const auto limit = std::chrono::steady_clock::now() + 60s;
    std::uint64_t fired = 0;
    while ((shared.receiver_done.load() == 0 || shared.sender_done.load() == 0) &&
           std::chrono::steady_clock::now() < limit) {
        if (shared.receiver_armed.load() != 0 && shared.receiver_done.load() == 0) {
            ::kill(receiver.pid(), SIGUSR1);
            ++fired;
        }
        if (shared.sender_armed.load() != 0 && shared.sender_done.load() == 0) {
            ::kill(sender.pid(), SIGUSR1);
            ++fired;
        }
        std::this_thread::sleep_for(20us);
    }
    EXPECT_EQ(receiver.wait(30s), 0);
    EXPECT_EQ(sender.wait(30s), 0);
    // The test means something only if signals did land during the stream.
    EXPECT_GT(shared.receiver_signals.load(), 10u) << "fired " << fired;
    EXPECT_GT(shared.sender_signals.load(), 10u) << "fired " << fired;
    std::printf("signals: transport=%s messages=%llu receiver_signals=%llu sender_signals=%llu\n",
                GetParam().name.c_str(), static_cast<unsigned long long>(kMessages),
                static_cast<unsigned long long>(shared.receiver_signals.load()),
                static_cast<unsigned long long>(shared.sender_signals.load()));
}

INSTANTIATE_TEST_SUITE_P(Transports, FaultsSignalsTest, ::testing::ValuesIn(test::all_transports()),
                         [](const auto& test_info) { return test_info.param.name; });

}  // namespace
}  // namespace ipckit
