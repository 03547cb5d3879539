// The shared-memory ring across processes over real shared memory (a MAP_SHARED anonymous mapping
// made before fork() is the same physical pages in parent and child): streams in every wait mode,
// a clean close, and a peer killed mid-stream or asleep.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/ring.hpp"
#include "rings/ring_layout.hpp"
#include "support/process.hpp"
#include "support/ring_messages.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;
using namespace test::ring;  // SharedRegion, make_message, is_message, error_of (support/ring_messages.hpp)
namespace layout = detail::ring;

// ---- across processes ----

// The producer runs in a child; the parent consumes and checks every message. Every third
// message goes through loan/commit and every fifth through read/release, so the zero-copy paths
// cross processes too.
void run_random_stream(WaitMode mode, std::uint64_t count, std::size_t capacity) {
    SharedRegion region(Ring::region_size(capacity));
    Ring::format(region.span(), {.capacity = capacity});
    const std::size_t max = Ring::max_message_size(capacity);
    auto producer = test::spawn([&] {
        auto tx = RingProducer::attach(region.span(), mode);
        SizeStream sizes(42, max);
        std::vector<std::byte> message;
        for (std::uint64_t seq = 0; seq < count; ++seq) {
            const std::size_t size = sizes.next();
            if (seq % 3 == 0) {
                const Loan loan = tx.loan(size, Deadline::after(30s));
                if (!loan.ok()) return 2;
                fill_message(loan.buffer, seq);
                tx.commit(size);
            } else {
                message.resize(size);
                fill_message(message, seq);
                if (!tx.send(message, Deadline::after(30s)).ok()) return 3;
            }
        }
        return 0;
    });
    auto rx = RingConsumer::attach(region.span(), mode);
    SizeStream sizes(42, max);
    std::vector<std::byte> got;
    std::uint64_t seq = 0;
    for (; seq < count; ++seq) {
        const std::size_t size = sizes.next();
        if (seq % 5 == 0) {
            const RecordView view = rx.read(Deadline::after(30s));
            ASSERT_TRUE(view.ok()) << "message " << seq << ": " << to_string(view.status);
            ASSERT_TRUE(is_message(view.message, seq, size)) << "message " << seq << " is not intact";
            rx.release();
        } else {
            const IoResult r = rx.recv(got, Deadline::after(30s));
            ASSERT_TRUE(r.ok()) << "message " << seq << ": " << to_string(r.status);
            ASSERT_TRUE(is_message(got, seq, size)) << "message " << seq << " is not intact";
        }
    }
    EXPECT_EQ(producer.wait(60s), 0);
    // The producer's exit closed nothing cleanly (it was a process exit), yet it is noticed.
    EXPECT_EQ(rx.recv(got, Deadline::after(10s)).status, Status::closed);
}

TEST(RingTest, MillionRandomMessagesAcrossProcessesArriveInOrderAndIntact) {
    run_random_stream(WaitMode::adaptive, 1'000'000, 64 * 1024);
}

class RingWaitModeTest : public ::testing::TestWithParam<WaitMode> {};

TEST_P(RingWaitModeTest, StreamAcrossProcessesThroughASmallRing) {
    // A small ring makes both sides wait often, so every path of the mode is taken.
    run_random_stream(GetParam(), 100'000, 1024);
}

TEST_P(RingWaitModeTest, PingPongAcrossProcesses) {
    SharedRegion there(Ring::region_size(4096)), back(Ring::region_size(4096));
    Ring::format(there.span());
    Ring::format(back.span());
    const WaitMode mode = GetParam();
    constexpr int kRounds = 20'000;
    auto echo = test::spawn([&] {
        auto rx = RingConsumer::attach(there.span(), mode);
        auto tx = RingProducer::attach(back.span(), mode);
        std::vector<std::byte> m;
        for (int i = 0; i < kRounds; ++i) {
            if (!rx.recv(m, Deadline::after(30s)).ok()) return 2;
            if (!tx.send(m, Deadline::after(30s)).ok()) return 3;
        }
        return 0;
    });
    auto tx = RingProducer::attach(there.span(), mode);
    auto rx = RingConsumer::attach(back.span(), mode);
    std::vector<std::byte> m;
    for (int i = 0; i < kRounds; ++i) {
        ASSERT_TRUE(tx.send(make_message(i, 64), Deadline::after(30s)).ok());
        ASSERT_TRUE(rx.recv(m, Deadline::after(30s)).ok()) << i;
        ASSERT_TRUE(is_message(m, i, 64));
    }
    EXPECT_EQ(echo.wait(60s), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, RingWaitModeTest,
                         ::testing::Values(WaitMode::spin, WaitMode::block, WaitMode::adaptive),
                         [](const auto& param_info) {
                             switch (param_info.param) {
                                 case WaitMode::spin:
                                     return std::string("Spin");
                                 case WaitMode::block:
                                     return std::string("Block");
                                 case WaitMode::adaptive:
                                     return std::string("Adaptive");
                             }
                             return std::string("Unknown");
                         });

TEST(RingTest, CleanCloseIsSeenAfterEverythingIsDrained) {
    SharedRegion region(4096);
    Ring::format(region.span());
    auto rx = RingConsumer::attach(region.span(), WaitMode::block);
    auto producer = test::spawn([&] {
        auto tx = RingProducer::attach(region.span());
        for (int i = 0; i < 3; ++i)
            if (!tx.send(make_message(i, 10)).ok()) return 2;
        tx.close();
        ::pause();  // stays alive: `closed` must come from close(), not from the death check
        return 0;
    });
    std::vector<std::byte> got;
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(rx.recv(got, Deadline::after(10s)).ok());
        EXPECT_TRUE(is_message(got, i, 10));
    }
    EXPECT_EQ(rx.recv(got, Deadline::after(10s)).status, Status::closed);
    EXPECT_EQ(rx.try_recv(got).status, Status::closed);
    producer.kill(SIGKILL);
    producer.wait();
}

TEST(RingTest, ProducerSeesClosedOnceTheConsumerCloses) {
    SharedRegion region(Ring::region_size(1024));
    Ring::format(region.span(), {.capacity = 1024});
    auto tx = RingProducer::attach(region.span(), WaitMode::block);
    auto consumer = test::spawn([&] {
        auto rx = RingConsumer::attach(region.span());
        std::vector<std::byte> got;
        if (!rx.recv(got, Deadline::after(10s)).ok()) return 2;
        rx.close();
        ::pause();
        return 0;
    });
    ASSERT_TRUE(tx.send(make_message(0, 10)).ok());
    // Fills the ring, then blocks until the close wakes it.
    IoResult r;
    for (int i = 0; i < 1000 && (r = tx.send(make_message(1, 100), Deadline::after(10s))).ok(); ++i) {
    }
    EXPECT_EQ(r.status, Status::closed);
    consumer.kill(SIGKILL);
    consumer.wait();
}

TEST(RingTest, ProducerKilledMidStreamLeavesOnlyWholeMessagesThenClosed) {
    SharedRegion region(Ring::region_size(8192));
    Ring::format(region.span(), {.capacity = 8192});
    auto rx = RingConsumer::attach(region.span());
    auto producer = test::spawn([&] {
        auto tx = RingProducer::attach(region.span());
        std::vector<std::byte> message;
        for (std::uint64_t seq = 0;; ++seq) {
            const std::size_t size = seq % 300;
            if (seq % 2 == 0) {
                message.resize(size);
                fill_message(message, seq);
                if (!tx.send(message).ok()) return 2;
            } else {
                const Loan loan = tx.loan(size);
                if (!loan.ok()) return 3;
                fill_message(loan.buffer, seq);
                tx.commit(size);
            }
        }
    });
    std::vector<std::byte> got;
    std::uint64_t seq = 0;
    for (; seq < 20'000; ++seq) {
        ASSERT_TRUE(rx.recv(got, Deadline::after(10s)).ok());
        ASSERT_TRUE(is_message(got, seq, seq % 300));
    }
    producer.kill(SIGKILL);  // mid-stream: the ring is full or being filled
    // The dead child stays a zombie until reaped below: the death must be seen all the same.
    IoResult r;
    while ((r = rx.recv(got, Deadline::after(10s))).ok()) {
        ASSERT_TRUE(is_message(got, seq, seq % 300)) << "message " << seq << " torn";
        ++seq;
    }
    EXPECT_EQ(r.status, Status::closed);
    EXPECT_EQ(producer.wait(), -SIGKILL);
}

// A producer asleep on a full ring asks to be woken once a quarter of it is free (a full ring
// then costs one sleep per quarter lap, not one per record), and still sends when the consumer
// frees a single record and stops receiving: its next sleep slice finds the room.
TEST(RingTest, ProducerAsleepOnAFullRingAsksForAQuarterAndStillSendsWhenOneRecordIsFreed) {
    SharedRegion region(Ring::region_size(1024));
    Ring::format(region.span(), {.capacity = 1024});
    auto rx = RingConsumer::attach(region.span(), WaitMode::block);
    auto producer = test::spawn([&] {
        auto tx = RingProducer::attach(region.span(), WaitMode::block);
        const auto message = make_message(1, 56);
        while (tx.try_send(message).ok()) {
        }
        return tx.send(message, Deadline::after(30s)).ok() ? 0 : 1;
    });
    auto& wait = region.header().wait;
    for (int i = 0; i < 10'000 && wait.producer_sleepers.load() == 0; ++i)
        std::this_thread::sleep_for(1ms);
    ASSERT_EQ(wait.producer_sleepers.load(), 1u);
    // 16 records of 64 bytes fill the 1024-byte ring: a quarter free is the consumer cursor at 256.
    EXPECT_EQ(wait.space_wanted.load(), 256u);
    std::vector<std::byte> got;
    ASSERT_TRUE(rx.try_recv(got).ok());
    EXPECT_EQ(producer.wait(), 0);
    std::size_t drained = 0;
    while (rx.try_recv(got).ok())
        ++drained;
    EXPECT_EQ(drained, 16u);  // the 15 left and the one sent after the room was freed
}

TEST(RingTest, ConsumerKilledUnblocksAProducerOnAFullRing) {
    SharedRegion region(Ring::region_size(1024));
    Ring::format(region.span(), {.capacity = 1024});
    auto tx = RingProducer::attach(region.span());
    auto consumer = test::spawn([&] {
        auto rx = RingConsumer::attach(region.span());
        ::pause();
        return 0;
    });
    // Fill the ring; the consumer never reads.
    while (tx.try_send(make_message(0, 100)).ok()) {
    }
    // Wait until the consumer has attached, so its death (not its absence) is what is seen.
    auto consumer_state = [&] {
        return layout::OwnerWord::unpack(region.header().consumer_end.owner.load()).state;
    };
    for (int i = 0; i < 10'000 && consumer_state() != layout::EndpointState::attached; ++i)
        std::this_thread::sleep_for(1ms);
    ASSERT_EQ(consumer_state(), layout::EndpointState::attached);
    consumer.kill(SIGKILL);
    EXPECT_EQ(tx.send(make_message(0, 100), Deadline::after(10s)).status, Status::closed);
    EXPECT_EQ(consumer.wait(), -SIGKILL);
}

}  // namespace
}  // namespace ipckit
