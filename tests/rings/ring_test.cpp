// The shared-memory ring, in real processes over real shared memory: a MAP_SHARED anonymous
// mapping made before fork() is the same physical pages in parent and child. One test runs the
// two sides as threads in one process, for the thread sanitizer.
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
#include "support/shared_memory.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;
namespace layout = detail::ring;

// A ring's region in shared memory (tests/support/shared_memory.hpp).
class SharedRegion : public test::SharedMemory {
public:
    using SharedMemory::SharedMemory;
    [[nodiscard]] layout::RingHeader& header() const { return at<layout::RingHeader>(); }
    [[nodiscard]] std::byte* data() const { return base() + layout::kHeaderSize; }
};

std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
    x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
    return x ^ (x >> 31);
}

// Message `seq` of `size` bytes: contents depend on both, so a lost, repeated, reordered, torn or
// truncated message cannot pass for the expected one.
void fill_message(std::span<std::byte> out, std::uint64_t seq) {
    std::uint64_t word = mix(seq);
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (i % 8 == 0) word = mix(word + i);
        out[i] = static_cast<std::byte>(word >> ((i % 8) * 8));
    }
}

std::vector<std::byte> make_message(std::uint64_t seq, std::size_t size) {
    std::vector<std::byte> m(size);
    fill_message(m, seq);
    return m;
}

bool is_message(std::span<const std::byte> got, std::uint64_t seq, std::size_t size) {
    if (got.size() != size) return false;
    const auto want = make_message(seq, size);
    return size == 0 || std::memcmp(got.data(), want.data(), size) == 0;
}

// Sizes for the random-size tests: mostly small, some up to the ring's limit.
class SizeStream {
public:
    SizeStream(std::uint64_t seed, std::size_t max) : rng_(seed), max_(max) {}
    std::size_t next() {
        const auto r = rng_();
        if (r % 64 == 0) return static_cast<std::size_t>((r >> 8) % (max_ + 1));
        return static_cast<std::size_t>((r >> 8) % 257);
    }

private:
    std::mt19937_64 rng_;
    std::size_t max_;
};

template <typename F>
std::error_code error_of(F&& f, std::string* message = nullptr) {
    try {
        f();
    } catch (const Error& e) {
        if (message) *message = e.what();
        return e.code();
    }
    return {};
}

// ---- format and attach ----

TEST(RingTest, FormatPicksTheLargestPowerOfTwoThatFits) {
    SharedRegion region(layout::kHeaderSize + 3000);
    EXPECT_EQ(Ring::format(region.span()), 2048u);
    auto tx = RingProducer::attach(region.span());
    EXPECT_EQ(tx.capacity(), 2048u);
    EXPECT_EQ(tx.max_message_size(), 1024u - 16u);
    EXPECT_EQ(Ring::region_size(2048), layout::kHeaderSize + 2048);
}

TEST(RingTest, FormatRejectsBadRegionsAndCapacities) {
    SharedRegion region(8192);
    std::string message;
    EXPECT_EQ(error_of([&] { Ring::format(region.span().first(100)); }, &message),
              std::errc::invalid_argument);
    EXPECT_NE(message.find("too small"), std::string::npos) << message;
    EXPECT_EQ(error_of([&] { Ring::format(region.span().subspan(8)); }, &message),
              std::errc::invalid_argument);
    EXPECT_NE(message.find("aligned"), std::string::npos) << message;
    EXPECT_EQ(error_of([&] { Ring::format(region.span(), {.capacity = 1000}); }, &message),
              std::errc::invalid_argument);
    EXPECT_NE(message.find("power of two"), std::string::npos) << message;
    EXPECT_EQ(error_of([&] { Ring::format(region.span(), {.capacity = 8192}); }, &message),
              std::errc::invalid_argument);
    EXPECT_NE(message.find("8192"), std::string::npos) << message;
}

TEST(RingTest, OneProducerAndOneConsumerPerRing) {
    SharedRegion region(4096);
    Ring::format(region.span());
    auto tx = RingProducer::attach(region.span());
    auto rx = RingConsumer::attach(region.span());
    std::string message;
    EXPECT_EQ(error_of([&] { (void)RingProducer::attach(region.span()); }, &message),
              std::errc::device_or_resource_busy);
    EXPECT_NE(message.find("ring producer is held by pid " + std::to_string(::getpid()) + " (alive)"),
              std::string::npos)
        << message;
    EXPECT_EQ(error_of([&] { (void)RingConsumer::attach(region.span()); }),
              std::errc::device_or_resource_busy);
}

// ---- basic behaviour in one process ----

TEST(RingTest, MessagesKeepTheirBoundariesAndOrder) {
    SharedRegion region(Ring::region_size(4096));
    Ring::format(region.span(), {.capacity = 4096});
    auto tx = RingProducer::attach(region.span());
    auto rx = RingConsumer::attach(region.span());
    for (std::size_t size : {0u, 1u, 7u, 8u, 9u, 100u, 2032u}) {
        ASSERT_TRUE(tx.try_send(make_message(size, size)).ok());
    }
    std::vector<std::byte> got;
    for (std::size_t size : {0u, 1u, 7u, 8u, 9u, 100u, 2032u}) {
        const IoResult r = rx.try_recv(got);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r.bytes, size);
        EXPECT_TRUE(is_message(got, size, size));
    }
    EXPECT_EQ(rx.try_recv(got).status, Status::would_block);
}

// stats=latency: every record carries its commit time after the commit word (8 bytes more, so the
// largest message is 8 bytes smaller), copies and loans alike, across padding and laps; the
// consumer adds one wait per record consumed to its histogram. Without the flag it stays zero.
TEST(RingTest, LatencyRecordsCarryTheirCommitTimeAndFillTheHistogram) {
    for (const bool latency : {true, false}) {
        SharedRegion region(Ring::region_size(4096));
        Ring::format(region.span(), {.capacity = 4096, .latency = latency});
        EXPECT_EQ(region.header().control.flags, latency ? 1u : 0u);
        auto tx = RingProducer::attach(region.span());
        auto rx = RingConsumer::attach(region.span());
        const std::size_t largest = Ring::max_message_size(4096, latency);
        EXPECT_EQ(largest, latency ? 2024u : 2032u);
        EXPECT_EQ(tx.max_message_size(), largest);
        EXPECT_THROW((void)tx.try_send(make_message(0, largest + 1)), Error);
        std::vector<std::byte> got;
        constexpr std::uint64_t kMessages = 3000;
        for (std::uint64_t seq = 0; seq < kMessages; ++seq) {
            const std::size_t size = seq % 97 == 0 ? largest : (seq * 37) % 301;
            if (seq % 2 == 0) {
                ASSERT_TRUE(tx.try_send(make_message(seq, size)).ok());
            } else {
                const Loan loan = tx.loan(size, Deadline::immediate());
                ASSERT_TRUE(loan.ok());
                fill_message(loan.buffer, seq);
                tx.commit(size);
            }
            if (seq % 3 == 0) {
                const RecordView view = rx.read(Deadline::immediate());
                ASSERT_TRUE(view.ok());
                EXPECT_TRUE(is_message(view.message, seq, size)) << seq;
                rx.release();
            } else {
                ASSERT_TRUE(rx.try_recv(got).ok());
                EXPECT_TRUE(is_message(got, seq, size)) << seq;
            }
        }
        std::uint64_t counted = 0;
        for (const auto& bucket : region.header().latency.buckets)
            counted += bucket.load();
        EXPECT_EQ(counted, latency ? kMessages : 0u);
    }
}

TEST(RingTest, EmptyRingWouldBlockAndTimesOutInEveryWaitMode) {
    for (WaitMode mode : {WaitMode::spin, WaitMode::block, WaitMode::adaptive}) {
        SharedRegion region(4096);
        Ring::format(region.span());
        auto tx = RingProducer::attach(region.span(), mode);
        auto rx = RingConsumer::attach(region.span(), mode);
        std::vector<std::byte> got;
        EXPECT_EQ(rx.try_recv(got).status, Status::would_block);
        EXPECT_EQ(rx.recv(got, Deadline::after(20ms)).status, Status::timed_out);
        EXPECT_EQ(rx.read(Deadline::immediate()).status, Status::would_block);
    }
}

TEST(RingTest, FullRingWouldBlockThenAcceptsOnceDrained) {
    for (WaitMode mode : {WaitMode::spin, WaitMode::block, WaitMode::adaptive}) {
        SharedRegion region(Ring::region_size(1024));
        Ring::format(region.span(), {.capacity = 1024});
        auto tx = RingProducer::attach(region.span(), mode);
        auto rx = RingConsumer::attach(region.span(), mode);
        // A 64-byte record (an 8-byte commit word and 56 bytes): 16 fill the ring to the last
        // byte, since the end mark after a record needs no room of its own when the ring is full.
        const auto message = make_message(1, 56);
        int sent = 0;
        while (tx.try_send(message).ok())
            ++sent;
        EXPECT_EQ(sent, 16);
        EXPECT_EQ(tx.try_send(make_message(2, 0)).status, Status::would_block);  // not even an empty one
        EXPECT_EQ(tx.send(message, Deadline::after(20ms)).status, Status::timed_out);
        EXPECT_EQ(tx.loan(8, Deadline::immediate()).status, Status::would_block);
        std::vector<std::byte> got;
        // Freeing one record makes room for exactly one more of the same size.
        ASSERT_TRUE(rx.try_recv(got).ok());
        EXPECT_TRUE(tx.try_send(message).ok());
        EXPECT_EQ(tx.try_send(message).status, Status::would_block);
        // Two freed: one 64-byte record and one of 48 bytes fit, then 16 bytes are left.
        ASSERT_TRUE(rx.try_recv(got).ok());
        ASSERT_TRUE(rx.try_recv(got).ok());
        EXPECT_TRUE(tx.try_send(message).ok());
        EXPECT_TRUE(tx.try_send(make_message(3, 40)).ok());
        EXPECT_EQ(tx.try_send(message).status, Status::would_block);
        ASSERT_TRUE(rx.try_recv(got).ok());
        EXPECT_TRUE(tx.try_send(message).ok());
        // Everything arrives whole and in order after the ring was full at every step.
        std::size_t drained = 0;
        while (rx.try_recv(got).ok())
            ++drained;
        EXPECT_EQ(drained, 16u);
    }
}

TEST(RingTest, MessageOverTheLimitIsAnErrorThatSaysTheLimit) {
    SharedRegion region(Ring::region_size(1024));
    Ring::format(region.span(), {.capacity = 1024});
    auto tx = RingProducer::attach(region.span());
    auto rx = RingConsumer::attach(region.span());
    std::string message;
    const auto big = make_message(0, tx.max_message_size() + 1);
    EXPECT_EQ(error_of([&] { (void)tx.try_send(big); }, &message), std::errc::message_size);
    EXPECT_NE(message.find("limit of 496 bytes"), std::string::npos) << message;
    EXPECT_EQ(error_of([&] { (void)tx.loan(497); }), std::errc::message_size);
    // The largest message goes through, whatever the offset.
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(tx.try_send(make_message(i, 496)).ok());
        std::vector<std::byte> got;
        ASSERT_TRUE(rx.try_recv(got).ok());
        EXPECT_TRUE(is_message(got, i, 496));
        ASSERT_TRUE(tx.try_send(make_message(i, 24)).ok());
        ASSERT_TRUE(rx.try_recv(got).ok());
    }
}

TEST(RingTest, MessageLargerThanTheBufferIsAnErrorAndStaysQueued) {
    SharedRegion region(4096);
    Ring::format(region.span());
    auto tx = RingProducer::attach(region.span());
    auto rx = RingConsumer::attach(region.span());
    ASSERT_TRUE(tx.try_send(make_message(9, 300)).ok());
    std::vector<std::byte> small(100);
    std::string message;
    EXPECT_EQ(error_of([&] { (void)rx.try_recv(std::span(small)); }, &message), std::errc::message_size);
    EXPECT_NE(message.find("300 bytes"), std::string::npos) << message;
    EXPECT_NE(message.find("100 bytes"), std::string::npos) << message;
    std::vector<std::byte> large(1000);
    const IoResult r = rx.try_recv(std::span(large));
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(is_message(std::span(large).first(r.bytes), 9, 300));
}

// A record never wraps: for every 8-byte offset the producer cursor can stand at, and every
// record size, the ring pads to the end when needed and the messages come out whole.
TEST(RingTest, WrapAroundAtEveryOffsetClass) {
    constexpr std::size_t kCapacity = 256;
    SharedRegion region(Ring::region_size(kCapacity));
    std::uint64_t seq = 0;
    std::vector<std::byte> got;
    // The producer runs up to two records ahead of the consumer, so a padding record is written
    // both into an empty ring and behind queued data; two laps cover every position a size leads to.
    for (std::size_t start = 0; start < kCapacity; start += layout::kRecordAlignment) {
        for (std::size_t size = 0; size <= Ring::max_message_size(kCapacity); ++size) {
            Ring::format(region.span(), {.capacity = kCapacity});
            auto tx = RingProducer::attach(region.span());
            auto rx = RingConsumer::attach(region.span());
            for (std::size_t at = 0; at < start; at += 8) {
                ASSERT_TRUE(tx.try_send({}).ok());
                ASSERT_TRUE(rx.try_recv(got).ok());
            }
            std::uint64_t next_expected = seq;
            for (std::size_t i = 0; i < 2 * kCapacity / layout::record_size(size) + 2; ++i) {
                const auto message = make_message(seq, size);
                IoResult sent = tx.try_send(message);
                if (sent.status == Status::would_block) {
                    // Full (records near half the ring, plus padding): make room and retry.
                    ASSERT_TRUE(rx.try_recv(got).ok());
                    ASSERT_TRUE(is_message(got, next_expected++, size))
                        << "start " << start << " size " << size;
                    sent = tx.try_send(message);
                }
                ASSERT_TRUE(sent.ok()) << "start " << start << " size " << size;
                ++seq;
                if (seq - next_expected < 2) continue;
                ASSERT_TRUE(rx.try_recv(got).ok());
                ASSERT_TRUE(is_message(got, next_expected++, size)) << "start " << start << " size " << size;
            }
            while (rx.try_recv(got).ok()) {
                ASSERT_TRUE(is_message(got, next_expected++, size));
            }
            EXPECT_EQ(next_expected, seq);
        }
    }
}

TEST(RingTest, LoanAndReadAreInPlaceInTheSharedRegion) {
    SharedRegion region(Ring::region_size(1024));
    Ring::format(region.span(), {.capacity = 1024});
    auto tx = RingProducer::attach(region.span());
    auto rx = RingConsumer::attach(region.span());
    const std::byte* begin = region.data();
    const std::byte* end = region.data() + 1024;
    for (std::uint64_t seq = 0; seq < 100; ++seq) {
        const std::size_t size = 20 + seq % 200;
        const Loan loan = tx.loan(size + 50);
        ASSERT_TRUE(loan.ok());
        ASSERT_GE(loan.buffer.data(), begin);
        ASSERT_LE(loan.buffer.data() + loan.buffer.size(), end);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(loan.buffer.data()) % 8, 0u);
        fill_message(loan.buffer.first(size), seq);
        tx.commit(size);  // less than loaned: only `size` bytes are the message
        const RecordView view = rx.read(Deadline::immediate());
        ASSERT_TRUE(view.ok());
        EXPECT_EQ(view.message.data(), loan.buffer.data());  // the very bytes the producer wrote
        EXPECT_TRUE(is_message(view.message, seq, size));
        // Until release, the record is held: reading again gives the same one.
        EXPECT_EQ(rx.read(Deadline::immediate()).message.data(), view.message.data());
        rx.release();
    }
    EXPECT_EQ(error_of([&] { tx.commit(1); }), std::errc::invalid_argument);
    EXPECT_EQ(error_of([&] { rx.release(); }), std::errc::invalid_argument);
    ASSERT_TRUE(tx.loan(10).ok());
    EXPECT_EQ(error_of([&] { tx.commit(11); }), std::errc::invalid_argument);
}

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

// ---- takeover (layout version 2) ----

std::size_t stream_size(std::uint64_t seq) {
    return static_cast<std::size_t>(mix(seq) % 300);
}

// Bookkeeping the test's processes share, in its own mapping.
struct Progress {
    std::atomic<std::uint64_t> next;  // the next message a consumer expects (or a producer sends)
    std::atomic<std::uint32_t> took_over;
    std::atomic<std::uint32_t> failures;
};

// Consumers are SIGKILLed (by themselves, so the test knows exactly what each had consumed) at
// random points of a stream that a live producer keeps writing: after a record was consumed, or
// while holding a record from read(). Each new consumer takes the dead one's end over and must
// get every committed record exactly once, in order; a record held but not released comes again.
TEST(RingTest, ConsumerKilledMidStreamNextConsumerGetsEveryRecordOnce) {
    constexpr std::uint64_t kCount = 20'000;
    SharedRegion region(Ring::region_size(4096));
    SharedRegion shared(4096);
    Ring::format(region.span(), {.capacity = 4096});
    auto& progress = *::new (shared.span().data()) Progress{};
    auto producer = test::spawn([&] {
        auto tx = RingProducer::attach(region.span());
        std::vector<std::byte> message;
        for (std::uint64_t seq = 0; seq < kCount;) {
            message.resize(stream_size(seq));
            fill_message(message, seq);
            const IoResult r = tx.send(message, Deadline::after(30s));
            if (r.ok()) {
                ++seq;
            } else if (r.status == Status::closed) {
                std::this_thread::sleep_for(1ms);  // full, consumer dead: its successor will come
            } else {
                return 2;
            }
        }
        return tx.drain(Deadline::after(30s)) == Status::ok ? 0 : 3;
    });
    std::mt19937_64 rng(11);
    int kills = 0;
    for (int round = 0; progress.next.load() < kCount; ++round) {
        ASSERT_LT(round, 100);
        const std::uint64_t stop_after = 1 + rng() % 3000;
        const bool die_holding = rng() % 2 == 0;
        auto consumer = test::spawn([&] {
            auto rx =
                RingConsumer::attach(region.span(), round % 2 == 0 ? WaitMode::adaptive : WaitMode::spin);
            if (rx.took_over()) progress.took_over.fetch_add(1);
            std::vector<std::byte> got;
            for (std::uint64_t n = 0;; ++n) {
                const std::uint64_t seq = progress.next.load();
                if (seq == kCount) return 0;
                if (n == stop_after && die_holding) {
                    const RecordView view = rx.read(Deadline::after(30s));
                    if (!view.ok() || !is_message(view.message, seq, stream_size(seq))) return 4;
                    ::kill(::getpid(), SIGKILL);  // holding it: the next consumer gets it again
                }
                if (!rx.recv(got, Deadline::after(30s)).ok()) return 5;
                if (!is_message(got, seq, stream_size(seq))) return 6;
                progress.next.store(seq + 1);
                if (n == stop_after) ::kill(::getpid(), SIGKILL);
            }
        });
        const int status = consumer.wait(60s);
        if (status == -SIGKILL) {
            ++kills;
        } else {
            ASSERT_EQ(status, 0) << "consumer of round " << round << " at message " << progress.next.load();
        }
    }
    EXPECT_EQ(producer.wait(60s), 0);
    EXPECT_EQ(progress.next.load(), kCount);
    EXPECT_GT(kills, 3);
    EXPECT_EQ(progress.took_over.load(), static_cast<std::uint32_t>(kills));
}

// The producer SIGKILLs itself with a loan filled but not committed, at random points; each new
// producer takes the end over and continues. The consumer (this process) must see every
// committed message once, in order, and never the poisoned loan.
TEST(RingTest, ProducerKilledMidLoanNeverDeliversItAndTheNextProducerContinues) {
    constexpr std::uint64_t kCount = 20'000;
    SharedRegion region(Ring::region_size(4096));
    SharedRegion shared(4096);
    Ring::format(region.span(), {.capacity = 4096});
    auto& progress = *::new (shared.span().data()) Progress{};
    auto rx = RingConsumer::attach(region.span());
    std::mt19937_64 rng(5);
    std::vector<std::byte> got;
    std::uint64_t seq = 0;
    int kills = 0;
    for (int round = 0; seq < kCount; ++round) {
        ASSERT_LT(round, 100);
        const std::uint64_t stop_after = 1 + rng() % 3000;
        const auto epoch = layout::OwnerWord::unpack(region.header().producer_end.owner.load()).epoch;
        auto producer = test::spawn([&] {
            auto tx =
                RingProducer::attach(region.span(), round % 2 == 0 ? WaitMode::adaptive : WaitMode::block);
            std::vector<std::byte> message;
            for (std::uint64_t n = 0;; ++n) {
                const std::uint64_t next = progress.next.load();
                if (next == kCount) return tx.drain(Deadline::after(30s)) == Status::ok ? 0 : 3;
                if (n == stop_after) {
                    const Loan loan = tx.loan(stream_size(next), Deadline::after(30s));
                    if (!loan.ok()) return 2;
                    std::memset(loan.buffer.data(), 0xee, loan.buffer.size());
                    ::kill(::getpid(), SIGKILL);
                }
                message.resize(stream_size(next));
                fill_message(message, next);
                if (n % 2 == 0) {
                    if (!tx.send(message, Deadline::after(30s)).ok()) return 4;
                } else {
                    const Loan loan = tx.loan(message.size(), Deadline::after(30s));
                    if (!loan.ok()) return 5;
                    std::memcpy(loan.buffer.data(), message.data(), message.size());
                    tx.commit(message.size());
                }
                progress.next.store(next + 1);
            }
        });
        // Until the new producer has claimed its end, the old one's death (or close) still shows.
        for (int i = 0; i < 10'000 &&
                        layout::OwnerWord::unpack(region.header().producer_end.owner.load()).epoch == epoch;
             ++i)
            std::this_thread::sleep_for(1ms);
        // Take what this producer commits until it is gone (dead, or done and drained).
        for (;;) {
            const IoResult r = rx.recv(got, Deadline::after(30s));
            if (r.status == Status::closed) break;
            ASSERT_TRUE(r.ok()) << to_string(r.status) << " at message " << seq;
            ASSERT_TRUE(is_message(got, seq, stream_size(seq)))
                << "message " << seq << " (round " << round << ")";
            ++seq;
        }
        const int status = producer.wait(60s);
        if (status == -SIGKILL) {
            ++kills;
        } else {
            ASSERT_EQ(status, 0);
        }
        // A message counted as sent by the dead producer came through; nothing else did.
        ASSERT_EQ(seq, progress.next.load());
        EXPECT_EQ(rx.try_recv(got).status, Status::closed);
    }
    EXPECT_EQ(seq, kCount);
    EXPECT_GT(kills, 3);
}

// A producer that died after storing a commit word but before its cursor store: simulated by
// writing the record by hand. The next producer continues after it, whether or not the consumer
// has consumed it yet (then the consumer cursor leads the stored producer cursor).
TEST(RingTest, ProducerDeadBetweenCommitWordAndCursorStoreLosesNothing) {
    for (bool consumed_first : {false, true}) {
        SharedRegion region(Ring::region_size(1024));
        Ring::format(region.span(), {.capacity = 1024});
        auto rx = RingConsumer::attach(region.span());
        std::vector<std::byte> got;
        {
            auto tx = RingProducer::attach(region.span());
            ASSERT_TRUE(tx.try_send(make_message(0, 20)).ok());
            ASSERT_TRUE(tx.try_send(make_message(1, 30)).ok());
        }
        // What the dead producer would have done for message 2 before it died.
        const std::uint64_t at = region.header().producer.position.load();
        const auto body = make_message(2, 40);
        const std::uint64_t end = at + layout::record_size(40);
        const std::uint64_t mark = layout::invalid_word(end),
                            word = layout::commit_word(40, layout::data_stamp(at));
        std::memcpy(region.data() + end, &mark, 8);
        std::memcpy(region.data() + at + 8, body.data(), body.size());
        std::memcpy(region.data() + at, &word, 8);
        for (std::uint64_t seq = 0; consumed_first && seq < 3; ++seq) {
            ASSERT_TRUE(rx.try_recv(got).ok());
            ASSERT_TRUE(is_message(got, seq, 20 + 10 * seq));
        }
        auto tx = RingProducer::attach(region.span());
        EXPECT_EQ(region.header().producer.position.load(), end);  // repaired
        ASSERT_TRUE(tx.try_send(make_message(3, 50)).ok());
        for (std::uint64_t seq = consumed_first ? 3 : 0; seq < 4; ++seq) {
            ASSERT_TRUE(rx.try_recv(got).ok()) << seq;
            EXPECT_TRUE(is_message(got, seq, 20 + 10 * seq)) << seq;
        }
        EXPECT_EQ(rx.try_recv(got).status, Status::would_block);
    }
}

TEST(RingTest, LiveHoldersAreRefusedWithTheirPid) {
    SharedRegion region(4096);
    Ring::format(region.span());
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    auto holder = test::spawn([&] {
        auto tx = RingProducer::attach(region.span());
        auto rx = RingConsumer::attach(region.span());
        (void)!::write(ready[1], "x", 1);
        ::pause();
        return 0;
    });
    char c;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ::close(ready[0]);
    ::close(ready[1]);
    std::string message;
    EXPECT_EQ(error_of([&] { (void)RingConsumer::attach(region.span()); }, &message),
              std::errc::device_or_resource_busy);
    EXPECT_NE(message.find("ring consumer is held by pid " + std::to_string(holder.pid()) + " (alive)"),
              std::string::npos)
        << message;
    EXPECT_EQ(error_of([&] { (void)RingProducer::attach(region.span()); }, &message),
              std::errc::device_or_resource_busy);
    EXPECT_NE(message.find("ring producer is held by pid " + std::to_string(holder.pid())), std::string::npos)
        << message;
    holder.kill(SIGKILL);
    EXPECT_EQ(holder.wait(), -SIGKILL);
    // Dead now: both ends are taken over.
    auto rx = RingConsumer::attach(region.span());
    EXPECT_TRUE(rx.took_over());
    auto tx = RingProducer::attach(region.span());
}

TEST(RingTest, RacingNewConsumersOneWins) {
    SharedRegion region(4096);
    SharedRegion shared(4096);
    Ring::format(region.span());
    struct Race {
        std::atomic<int> go, done, winners, losers;
    };
    auto& race = *::new (shared.span().data()) Race{};
    {
        auto dead = test::spawn([&] {
            auto rx = RingConsumer::attach(region.span());
            ::kill(::getpid(), SIGKILL);
            return 0;
        });
        ASSERT_EQ(dead.wait(), -SIGKILL);
    }
    constexpr int kRacers = 6;
    std::vector<test::Child> racers;
    for (int i = 0; i < kRacers; ++i) {
        racers.push_back(test::spawn([&] {
            while (race.go.load() == 0)
                std::this_thread::yield();
            try {
                auto rx = RingConsumer::attach(region.span());
                race.winners.fetch_add(1);
                while (race.done.load() == 0)
                    std::this_thread::sleep_for(1ms);
                return rx.took_over() ? 0 : 3;
            } catch (const Error& e) {
                race.losers.fetch_add(1);
                return e.code() == std::errc::device_or_resource_busy ? 0 : 2;
            }
        }));
    }
    race.go.store(1);
    for (int i = 0; i < 10'000 && race.winners.load() + race.losers.load() < kRacers; ++i)
        std::this_thread::sleep_for(1ms);
    race.done.store(1);
    for (auto& r : racers)
        EXPECT_EQ(r.wait(), 0);
    EXPECT_EQ(race.winners.load(), 1);
    EXPECT_EQ(race.losers.load(), kRacers - 1);
}

TEST(RingTest, AnOlderVersionRegionIsRefusedWithAClearError) {
    SharedRegion region(4096);
    Ring::format(region.span());
    region.header().control.version = 2;  // the magic is the same in every version
    std::string message;
    EXPECT_EQ(error_of([&] { (void)RingConsumer::attach(region.span()); }, &message),
              std::errc::protocol_error);
    EXPECT_NE(message.find("ring header: version 2, this ipckit reads version 3"), std::string::npos)
        << message;
    EXPECT_EQ(error_of([&] { (void)RingProducer::attach(region.span()); }), std::errc::protocol_error);
}

// A cleanly closed end is reclaimable: a new consumer resumes where the old one stopped (a read
// record it did not release comes again), a new producer continues after the last record.
TEST(RingTest, ClosedEndsAreReclaimed) {
    SharedRegion region(Ring::region_size(1024));
    Ring::format(region.span(), {.capacity = 1024});
    std::vector<std::byte> got;
    {
        auto tx = RingProducer::attach(region.span());
        for (std::uint64_t seq = 0; seq < 5; ++seq)
            ASSERT_TRUE(tx.try_send(make_message(seq, 30)).ok());
    }
    {
        auto rx = RingConsumer::attach(region.span());
        EXPECT_FALSE(rx.took_over());
        EXPECT_EQ(rx.pending_at_attach(), 5u);
        ASSERT_TRUE(rx.try_recv(got).ok());
        ASSERT_TRUE(rx.read(Deadline::immediate()).ok());  // message 1, not released
    }
    // A producer that attaches after the consumer closed sends for the next consumer (as if none
    // had attached yet); one attached when the consumer closes gets `closed` (see above).
    auto tx = RingProducer::attach(region.span());
    ASSERT_TRUE(tx.try_send(make_message(5, 30)).ok());
    EXPECT_FALSE(tx.consumer_present());
    auto rx = RingConsumer::attach(region.span());
    EXPECT_TRUE(tx.consumer_present());
    EXPECT_EQ(rx.pending_at_attach(), 5u);
    for (std::uint64_t seq = 1; seq < 6; ++seq) {
        ASSERT_TRUE(rx.try_recv(got).ok());
        EXPECT_TRUE(is_message(got, seq, 30)) << seq;
    }
    EXPECT_EQ(rx.try_recv(got).status, Status::would_block);
    // Many laps of close and reclaim, both ends: the positions and stamps keep going.
    tx.close();
    for (std::uint64_t seq = 6; seq < 400; ++seq) {
        auto p = RingProducer::attach(region.span());
        ASSERT_TRUE(p.try_send(make_message(seq, seq % 200)).ok());
        if (seq % 3 == 0) {
            rx.close();
            rx = RingConsumer::attach(region.span());  // a moved-in end, the old one closed
            EXPECT_EQ(rx.pending_at_attach(), 1u);
        }
        ASSERT_TRUE(rx.try_recv(got).ok());
        ASSERT_TRUE(is_message(got, seq, seq % 200)) << seq;
    }
}

// The channel layer's questions: is a consumer there, wait for one, wait until drained; and the
// lanes' cheap peek and wait words.
TEST(RingTest, PresenceWaitForConsumerDrainAndPeek) {
    SharedRegion region(Ring::region_size(1024));
    Ring::format(region.span(), {.capacity = 1024});
    auto tx = RingProducer::attach(region.span(), WaitMode::block);
    EXPECT_FALSE(tx.consumer_present());
    EXPECT_EQ(tx.wait_for_consumer(Deadline::after(20ms)), Status::timed_out);
    ASSERT_TRUE(tx.try_send(make_message(0, 10)).ok());
    EXPECT_EQ(tx.drain(Deadline::after(20ms)), Status::timed_out);  // nobody attached yet: waits
    auto consumer = test::spawn([&] {
        std::this_thread::sleep_for(50ms);
        auto rx = RingConsumer::attach(region.span());
        if (rx.pending_at_attach() != 3) return 2;
        std::vector<std::byte> got;
        for (int i = 0; i < 3; ++i)
            if (!rx.recv(got, Deadline::after(10s)).ok()) return 3;
        ::pause();
        return 0;
    });
    ASSERT_TRUE(tx.try_send(make_message(1, 10)).ok());
    ASSERT_TRUE(tx.try_send(make_message(2, 10)).ok());
    EXPECT_EQ(tx.wait_for_consumer(Deadline::after(10s)), Status::ok);
    EXPECT_TRUE(tx.consumer_present());
    EXPECT_EQ(tx.drain(Deadline::after(10s)), Status::ok);
    ASSERT_TRUE(tx.try_send(make_message(3, 10)).ok());  // never taken: the consumer dies
    consumer.kill(SIGKILL);
    EXPECT_EQ(consumer.wait(), -SIGKILL);
    EXPECT_EQ(tx.drain(Deadline::after(10s)), Status::closed);
    EXPECT_FALSE(tx.consumer_present());

    auto rx = RingConsumer::attach(region.span());
    EXPECT_TRUE(rx.took_over());
    EXPECT_EQ(rx.pending_at_attach(), 1u);
    EXPECT_TRUE(rx.has_data());
    std::vector<std::byte> got;
    ASSERT_TRUE(rx.try_recv(got).ok());
    EXPECT_TRUE(is_message(got, 3, 10));
    EXPECT_FALSE(rx.has_data());
    // Across a padding record: the peek looks past it.
    for (int i = 0; i < 30; ++i) {
        ASSERT_TRUE(tx.try_send(make_message(i, 20)).ok());
        ASSERT_TRUE(rx.try_recv(got).ok());
        EXPECT_FALSE(rx.has_data());
    }
    EXPECT_EQ(tx.drain(Deadline::immediate()), Status::ok);
}

// ---- untrusted memory ----

TEST(RingTest, CorruptHeaderIsAnErrorThatSaysWhat) {
    SharedRegion region(Ring::region_size(1024));
    std::string message;
    auto attach_error = [&] {
        return error_of([&] { (void)RingConsumer::attach(region.span()); }, &message);
    };

    EXPECT_EQ(attach_error(), std::errc::protocol_error);  // never formatted: all zero
    EXPECT_NE(message.find("magic"), std::string::npos) << message;

    Ring::format(region.span(), {.capacity = 1024});
    region.header().control.magic.store(0x1234);
    EXPECT_EQ(attach_error(), std::errc::protocol_error);
    EXPECT_NE(message.find("bad magic 0x1234"), std::string::npos) << message;

    Ring::format(region.span(), {.capacity = 1024});
    region.header().control.version = 7;
    EXPECT_EQ(attach_error(), std::errc::protocol_error);
    EXPECT_NE(message.find("version 7"), std::string::npos) << message;

    Ring::format(region.span(), {.capacity = 1024});
    region.header().control.capacity = 4096;
    EXPECT_EQ(attach_error(), std::errc::protocol_error);
    EXPECT_NE(message.find("capacity 4096 needs a region of 6144 bytes, but the region has 3072"),
              std::string::npos)
        << message;

    Ring::format(region.span(), {.capacity = 1024});
    region.header().control.capacity = 1000;
    EXPECT_EQ(attach_error(), std::errc::protocol_error);
    EXPECT_NE(message.find("power of two"), std::string::npos) << message;

    Ring::format(region.span(), {.capacity = 1024});
    region.header().control.header_size = 64;
    EXPECT_EQ(attach_error(), std::errc::protocol_error);
    EXPECT_NE(message.find("layout"), std::string::npos) << message;

    Ring::format(region.span(), {.capacity = 1024});
    region.header().consumer_end.owner.store(std::uint64_t{9} << 32);
    EXPECT_EQ(attach_error(), std::errc::protocol_error);
    EXPECT_NE(message.find("state 9"), std::string::npos) << message;

    Ring::format(region.span(), {.capacity = 1024});
    region.header().control.kind = layout::Kind::topic;
    EXPECT_EQ(attach_error(), std::errc::protocol_error);
    EXPECT_NE(message.find("kind 3 is not a 1:1 ring"), std::string::npos) << message;

    // The consumer cursor may lead the stored producer cursor by one publication (a producer that
    // died between its commit word and its cursor store), never by more than the ring holds.
    for (auto [head, tail] : {std::pair<std::uint64_t, std::uint64_t>{8, 2048}, {2048, 0}, {12, 0}}) {
        Ring::format(region.span(), {.capacity = 1024});
        region.header().producer.position.store(head);
        region.header().consumer.position.store(tail);
        EXPECT_EQ(attach_error(), std::errc::protocol_error);
        EXPECT_NE(message.find("cursors corrupt"), std::string::npos) << message;
    }
}

// Version 2: the consumer polls commit words, not the producer cursor; a producer cursor that is
// corrupt is found by whoever attaches next (a takeover walks from it).
TEST(RingTest, CorruptProducerCursorIsAnErrorForTheNextAttach) {
    SharedRegion region(Ring::region_size(1024));
    for (std::uint64_t bad : {std::uint64_t{2048}, std::uint64_t{13}, ~std::uint64_t{0}}) {
        Ring::format(region.span(), {.capacity = 1024});
        {
            auto tx = RingProducer::attach(region.span());
            auto rx = RingConsumer::attach(region.span());
            ASSERT_TRUE(tx.try_send(make_message(0, 10)).ok());
            std::vector<std::byte> got;
            ASSERT_TRUE(rx.try_recv(got).ok());
        }
        region.header().producer.position.store(bad);
        std::string message;
        EXPECT_EQ(error_of([&] { (void)RingProducer::attach(region.span()); }, &message),
                  std::errc::protocol_error);
        EXPECT_NE(message.find("cursors corrupt"), std::string::npos) << message;
        EXPECT_EQ(error_of([&] { (void)RingConsumer::attach(region.span()); }), std::errc::protocol_error);
        // A failed attach leaves the end free: the next one with sane cursors gets it.
        region.header().producer.position.store(24);
        EXPECT_NO_THROW((void)RingProducer::attach(region.span()));
    }
}

TEST(RingTest, CorruptConsumerCursorIsAnErrorForTheProducer) {
    SharedRegion region(Ring::region_size(1024));
    for (std::uint64_t bad : {std::uint64_t{4096}, std::uint64_t{3}, std::uint64_t{0}}) {
        Ring::format(region.span(), {.capacity = 1024});
        auto tx = RingProducer::attach(region.span());
        auto rx = RingConsumer::attach(region.span());
        std::vector<std::byte> got;
        for (int i = 0; i < 3; ++i) {
            ASSERT_TRUE(tx.try_send(make_message(0, 100)).ok());
            ASSERT_TRUE(rx.try_recv(got).ok());
        }
        while (tx.try_send(make_message(0, 100)).ok()) {
        }
        // The ring is full, so the producer must read the consumer's cursor: ahead of the
        // producer, misaligned, or moved backwards, it is an error.
        region.header().consumer.position.store(bad);
        std::string message;
        EXPECT_EQ(error_of([&] { (void)tx.try_send(make_message(0, 100)); }, &message),
                  std::errc::protocol_error);
        EXPECT_NE(message.find("consumer cursor corrupt"), std::string::npos) << message;
    }
}

TEST(RingTest, CorruptCommitWordsAreErrorsThatSayWhat) {
    SharedRegion region(Ring::region_size(1024));
    struct Case {
        const char* what;
        std::uint64_t word;
    };
    for (const Case& c : {
             Case{"neither a record stamped for this position", layout::commit_word(10, 0xdeadbeef)},
             Case{"exceeds the ring's limit of 496", layout::commit_word(600, layout::data_stamp(0))},
             Case{"padding of 64 bytes, but the end of the ring is 1024",
                  layout::commit_word(64, layout::padding_stamp(0))},
             // A word committed for the same offset one lap later (or earlier) is not this record.
             Case{"neither a record stamped", layout::commit_word(10, layout::data_stamp(1024))},
             Case{"exceeds the ring's limit", layout::commit_word(0xffffffff, layout::data_stamp(0))},
             Case{"neither a record stamped", 0x1234567800000010},
         }) {
        Ring::format(region.span(), {.capacity = 1024});
        auto tx = RingProducer::attach(region.span());
        auto rx = RingConsumer::attach(region.span());
        ASSERT_TRUE(tx.try_send(make_message(0, 100)).ok());  // a 112-byte record at offset 0
        std::memcpy(region.data(), &c.word, sizeof c.word);
        std::string message;
        std::vector<std::byte> got;
        EXPECT_EQ(error_of([&] { (void)rx.try_recv(got); }, &message), std::errc::bad_message) << c.what;
        EXPECT_NE(message.find(c.what), std::string::npos) << message;
        EXPECT_EQ(error_of([&] { (void)rx.read(Deadline::immediate()); }), std::errc::bad_message);
        EXPECT_TRUE(rx.has_data());  // recv would not wait: it reports the corruption
    }
    // A record that would cross the end of the ring: the consumer stands at offset 1016.
    Ring::format(region.span(), {.capacity = 1024});
    auto tx = RingProducer::attach(region.span());
    auto rx = RingConsumer::attach(region.span());
    std::vector<std::byte> got;
    for (int i = 0; i < 127; ++i) {  // 127 empty records of 8 bytes
        ASSERT_TRUE(tx.try_send({}).ok());
        ASSERT_TRUE(rx.try_recv(got).ok());
    }
    ASSERT_TRUE(tx.try_send({}).ok());
    const std::uint64_t forged = layout::commit_word(100, layout::data_stamp(1016));
    std::memcpy(region.data() + 1016, &forged, sizeof forged);
    std::string message;
    EXPECT_EQ(error_of([&] { (void)rx.try_recv(got); }, &message), std::errc::bad_message);
    EXPECT_NE(message.find("crosses the end of the ring"), std::string::npos) << message;
    // A forged end mark is "nothing yet", never a record.
    const std::uint64_t mark = layout::invalid_word(1016);
    std::memcpy(region.data() + 1016, &mark, sizeof mark);
    EXPECT_EQ(rx.try_recv(got).status, Status::would_block);
    EXPECT_FALSE(rx.has_data());
}

// A hostile producer writes random values into the cursors and records: whatever it writes, the
// consumer returns a status or throws an Error, and never reads outside the region (the
// sanitizer build checks the last part).
TEST(RingTest, RandomGarbageInSharedMemoryNeverCrashesTheConsumer) {
    SharedRegion region(Ring::region_size(512));
    std::mt19937_64 rng(7);
    int errors = 0;
    for (int round = 0; round < 20'000; ++round) {
        Ring::format(region.span(), {.capacity = 512});
        auto tx = RingProducer::attach(region.span());
        auto rx = RingConsumer::attach(region.span());
        for (int i = 0; i < 3; ++i)
            (void)tx.try_send(make_message(i, rng() % 100));
        // Corrupt a few random bytes of the data area, or the producer cursor.
        const int hits = 1 + static_cast<int>(rng() % 4);
        for (int h = 0; h < hits; ++h) {
            if (rng() % 4 == 0) {
                const std::uint64_t v = rng() % 3 == 0 ? rng() : rng() % 2048;
                region.header().producer.position.store(v);
            } else {
                region.data()[rng() % 512] = static_cast<std::byte>(rng());
            }
        }
        std::vector<std::byte> got;
        try {
            for (int i = 0; i < 8; ++i) {
                if (i % 2 == 0) {
                    if (!rx.try_recv(got).ok()) break;
                } else {
                    const RecordView v = rx.read(Deadline::immediate());
                    if (!v.ok()) break;
                    ASSERT_GE(v.message.data(), region.data());
                    ASSERT_LE(v.message.data() + v.message.size(), region.data() + 512);
                    rx.release();
                }
            }
        } catch (const Error& e) {
            ++errors;
            EXPECT_TRUE(e.code() == std::errc::bad_message || e.code() == std::errc::protocol_error)
                << e.what();
        }
    }
    EXPECT_GT(errors, 0);  // the corruption was noticed, not just survived
}

// ---- threads (for the thread sanitizer) ----

TEST(RingTest, ProducerAndConsumerAsThreadsOverOneRegion) {
    for (WaitMode mode : {WaitMode::adaptive, WaitMode::block}) {
        SharedRegion region(Ring::region_size(2048));
        Ring::format(region.span(), {.capacity = 2048});
        constexpr std::uint64_t kCount = 50'000;
        std::atomic<int> producer_failures{0};
        std::thread producer([&] {
            auto tx = RingProducer::attach(region.span(), mode);
            SizeStream sizes(3, tx.max_message_size());
            std::vector<std::byte> message;
            for (std::uint64_t seq = 0; seq < kCount; ++seq) {
                const std::size_t size = sizes.next();
                if (seq % 2 == 0) {
                    const Loan loan = tx.loan(size, Deadline::after(30s));
                    if (!loan.ok()) {
                        ++producer_failures;
                        return;
                    }
                    fill_message(loan.buffer, seq);
                    tx.commit(size);
                } else {
                    message.resize(size);
                    fill_message(message, seq);
                    if (!tx.send(message, Deadline::after(30s)).ok()) {
                        ++producer_failures;
                        return;
                    }
                }
            }
        });
        auto rx = RingConsumer::attach(region.span(), mode);
        SizeStream sizes(3, rx.max_message_size());
        std::vector<std::byte> got;
        std::uint64_t seq = 0;
        for (; seq < kCount; ++seq) {
            const std::size_t size = sizes.next();
            if (seq % 3 == 0) {
                const RecordView view = rx.read(Deadline::after(30s));
                if (!view.ok() || !is_message(view.message, seq, size)) break;
                rx.release();
            } else if (!rx.recv(got, Deadline::after(30s)).ok() || !is_message(got, seq, size)) {
                break;
            }
        }
        producer.join();
        EXPECT_EQ(seq, kCount);
        EXPECT_EQ(producer_failures.load(), 0);
        // The producer thread's RingProducer was destroyed: closed.
        EXPECT_EQ(rx.recv(got, Deadline::after(10s)).status, Status::closed);
    }
}

}  // namespace
}  // namespace ipckit
