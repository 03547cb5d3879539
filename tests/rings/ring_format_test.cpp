// The shared-memory ring's format and attach, and what it does with memory it cannot trust: a
// corrupt header, cursor or commit word is an Error that says what, never a crash.
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

}  // namespace
}  // namespace ipckit
