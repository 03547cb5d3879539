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

#include "ipckit/detail/ring_layout.hpp"
#include "ipckit/error.hpp"
#include "ipckit/ring.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;
namespace layout = detail::ring;

// A region of shared memory, unmapped when the test ends (even when it fails).
class SharedRegion {
public:
    explicit SharedRegion(std::size_t size) : size_(size) {
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw_errno("mmap", "test region");
        base_ = static_cast<std::byte*>(p);
    }
    SharedRegion(const SharedRegion&) = delete;
    SharedRegion& operator=(const SharedRegion&) = delete;
    ~SharedRegion() { ::munmap(base_, size_); }

    [[nodiscard]] std::span<std::byte> span() const { return {base_, size_}; }
    [[nodiscard]] layout::RingHeader& header() const { return *reinterpret_cast<layout::RingHeader*>(base_); }
    [[nodiscard]] std::byte* data() const { return base_ + layout::kHeaderSize; }

private:
    std::byte* base_ = nullptr;
    std::size_t size_ = 0;
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
    EXPECT_EQ(tx.max_message_size(), 1024u - 8u);
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
    EXPECT_NE(message.find("already has a producer (pid " + std::to_string(::getpid())), std::string::npos)
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
    for (std::size_t size : {0u, 1u, 7u, 8u, 9u, 100u, 2040u}) {
        ASSERT_TRUE(tx.try_send(make_message(size, size)).ok());
    }
    std::vector<std::byte> got;
    for (std::size_t size : {0u, 1u, 7u, 8u, 9u, 100u, 2040u}) {
        const IoResult r = rx.try_recv(got);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r.bytes, size);
        EXPECT_TRUE(is_message(got, size, size));
    }
    EXPECT_EQ(rx.try_recv(got).status, Status::would_block);
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
        const auto message = make_message(1, 56);  // a 64-byte record: 16 fill the ring exactly
        int sent = 0;
        while (tx.try_send(message).ok())
            ++sent;
        EXPECT_EQ(sent, 16);
        EXPECT_EQ(tx.try_send(message).status, Status::would_block);
        EXPECT_EQ(tx.send(message, Deadline::after(20ms)).status, Status::timed_out);
        EXPECT_EQ(tx.loan(8, Deadline::immediate()).status, Status::would_block);
        std::vector<std::byte> got;
        ASSERT_TRUE(rx.try_recv(got).ok());
        EXPECT_TRUE(tx.try_send(message).ok());
        EXPECT_EQ(tx.try_send(message).status, Status::would_block);
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
    EXPECT_NE(message.find("limit of 504 bytes"), std::string::npos) << message;
    EXPECT_EQ(error_of([&] { (void)tx.loan(505); }), std::errc::message_size);
    // The largest message goes through, whatever the offset.
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(tx.try_send(make_message(i, 504)).ok());
        std::vector<std::byte> got;
        ASSERT_TRUE(rx.try_recv(got).ok());
        EXPECT_TRUE(is_message(got, i, 504));
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
    for (int i = 0; i < 10'000 && region.header().control.consumer_state.load() != layout::kAttached; ++i)
        std::this_thread::sleep_for(1ms);
    ASSERT_EQ(region.header().control.consumer_state.load(), layout::kAttached);
    consumer.kill(SIGKILL);
    EXPECT_EQ(tx.send(make_message(0, 100), Deadline::after(10s)).status, Status::closed);
    EXPECT_EQ(consumer.wait(), -SIGKILL);
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
    EXPECT_NE(message.find("capacity 4096 needs a region of 4608 bytes, but the region has 1536"),
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
    region.header().control.consumer_state.store(9);
    EXPECT_EQ(attach_error(), std::errc::protocol_error);
    EXPECT_NE(message.find("state 9"), std::string::npos) << message;

    for (auto [head, tail] : {std::pair<std::uint64_t, std::uint64_t>{8, 16}, {2048, 0}, {12, 0}}) {
        Ring::format(region.span(), {.capacity = 1024});
        region.header().producer.position.store(head);
        region.header().consumer.position.store(tail);
        EXPECT_EQ(attach_error(), std::errc::protocol_error);
        EXPECT_NE(message.find("cursors corrupt"), std::string::npos) << message;
    }
}

TEST(RingTest, CorruptProducerCursorIsAnErrorForTheConsumer) {
    SharedRegion region(Ring::region_size(1024));
    for (std::uint64_t bad : {std::uint64_t{2048}, std::uint64_t{13}, ~std::uint64_t{0}}) {
        Ring::format(region.span(), {.capacity = 1024});
        auto tx = RingProducer::attach(region.span());
        auto rx = RingConsumer::attach(region.span());
        ASSERT_TRUE(tx.try_send(make_message(0, 10)).ok());
        std::vector<std::byte> got;
        ASSERT_TRUE(rx.try_recv(got).ok());
        region.header().producer.position.store(bad);
        std::string message;
        EXPECT_EQ(error_of([&] { (void)rx.try_recv(got); }, &message), std::errc::protocol_error);
        EXPECT_NE(message.find("producer cursor corrupt"), std::string::npos) << message;
    }
    // A producer cursor that moves backwards.
    Ring::format(region.span(), {.capacity = 1024});
    auto tx = RingProducer::attach(region.span());
    auto rx = RingConsumer::attach(region.span());
    ASSERT_TRUE(tx.try_send(make_message(0, 10)).ok());
    ASSERT_TRUE(tx.try_send(make_message(1, 10)).ok());
    std::vector<std::byte> got;
    ASSERT_TRUE(rx.try_recv(got).ok());
    ASSERT_TRUE(rx.try_recv(got).ok());
    region.header().producer.position.store(16);
    EXPECT_EQ(error_of([&] { (void)rx.try_recv(got); }), std::errc::protocol_error);
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

TEST(RingTest, CorruptRecordsAreErrorsThatSayWhat) {
    SharedRegion region(Ring::region_size(1024));
    struct Case {
        const char* what;
        std::uint32_t size;
        std::uint32_t tag;
    };
    for (const Case& c :
         {Case{"unknown tag 0xdeadbeef", 10, 0xdeadbeef},
          Case{"exceeds the ring's limit", 600, layout::kDataTag},
          Case{"runs past the 112 bytes the producer published", 200, layout::kDataTag},
          Case{"padding of 64 bytes, but the end of the ring is 1024", 64, layout::kPaddingTag}}) {
        Ring::format(region.span(), {.capacity = 1024});
        auto tx = RingProducer::attach(region.span());
        auto rx = RingConsumer::attach(region.span());
        ASSERT_TRUE(tx.try_send(make_message(0, 100)).ok());  // a 112-byte record at offset 0
        const layout::RecordHeader forged{c.size, c.tag};
        std::memcpy(region.data(), &forged, sizeof forged);
        std::string message;
        std::vector<std::byte> got;
        EXPECT_EQ(error_of([&] { (void)rx.try_recv(got); }, &message), std::errc::bad_message) << c.what;
        EXPECT_NE(message.find(c.what), std::string::npos) << message;
        EXPECT_EQ(error_of([&] { (void)rx.read(Deadline::immediate()); }), std::errc::bad_message);
    }
    // A padding record whose size is right but which the producer never published in full.
    Ring::format(region.span(), {.capacity = 1024});
    auto tx = RingProducer::attach(region.span());
    auto rx = RingConsumer::attach(region.span());
    ASSERT_TRUE(tx.try_send(make_message(0, 100)).ok());
    const layout::RecordHeader forged{1024, layout::kPaddingTag};
    std::memcpy(region.data(), &forged, sizeof forged);
    std::vector<std::byte> got;
    EXPECT_EQ(error_of([&] { (void)rx.try_recv(got); }), std::errc::bad_message);
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
