// The shared-memory ring in one process: messages, their limits, wrap-around and the zero-copy
// paths; one test runs the two sides as threads, for the thread sanitizer. The other ring tests:
// ring_format_test (format, attach, untrusted memory), ring_processes_test (across processes:
// wait modes, close, a peer killed), ring_takeover_test (a dead end taken over).
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

// A record of 4 MiB or more into an empty ring goes back to offset 0 when it fits before the
// current offset, so a ping-pong of large messages reuses memory still in the caches; with data
// queued, or a record that does not fit before the offset, it goes on where it is.
TEST(RingTest, ALargeRecordIntoAnEmptyRingGoesBackToTheStart) {
    constexpr std::size_t kCapacity = 32u << 20;
    constexpr std::size_t kLarge = 4u << 20;
    SharedRegion region(Ring::region_size(kCapacity));
    Ring::format(region.span(), {.capacity = kCapacity});
    auto tx = RingProducer::attach(region.span());
    auto rx = RingConsumer::attach(region.span());
    std::uint64_t seq = 0;
    auto send_and_read = [&](std::size_t size) {
        const Loan loan = tx.loan(size);
        EXPECT_TRUE(loan.ok());
        fill_message(loan.buffer, seq);
        tx.commit(size);
        const RecordView view = rx.read(Deadline::immediate());
        EXPECT_TRUE(view.ok());
        EXPECT_TRUE(is_message(view.message, seq++, size));
        const std::byte* at = view.message.data();
        rx.release();
        return at;
    };
    const std::byte* start = send_and_read(100);  // the first record is at offset 0
    // Empty, but 4 MiB do not fit before offset 112: the record follows the small one.
    EXPECT_EQ(send_and_read(kLarge), start + layout::record_size(100));
    // Empty, and it fits before the offset: back to the start, and again.
    EXPECT_EQ(send_and_read(kLarge), start);
    EXPECT_EQ(send_and_read(kLarge), start);
    // A small record goes on where the ring is.
    EXPECT_EQ(send_and_read(100), start + layout::record_size(kLarge));
    // With a record queued the producer never jumps over it: the next one follows it.
    ASSERT_TRUE(tx.try_send(make_message(seq, 10)).ok());
    const Loan loan = tx.loan(kLarge);
    ASSERT_TRUE(loan.ok());
    EXPECT_NE(loan.buffer.data(), start);
    fill_message(loan.buffer, seq + 1);
    tx.commit(kLarge);
    std::vector<std::byte> got;
    ASSERT_TRUE(rx.try_recv(got).ok());
    EXPECT_TRUE(is_message(got, seq, 10));
    ASSERT_TRUE(rx.try_recv(got).ok());
    EXPECT_TRUE(is_message(got, seq + 1, kLarge));
    // A consumer that attaches afresh walks the padding the rewinds left, and finds nothing.
    rx.close();
    auto successor = RingConsumer::attach(region.span());
    EXPECT_EQ(successor.pending_at_attach(), 0u);
    EXPECT_EQ(successor.try_recv(got).status, Status::would_block);
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
