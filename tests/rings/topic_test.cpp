// The shared-memory topic in real processes: a MAP_SHARED anonymous mapping made before fork()
// is the same physical pages in the publisher and every subscriber.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/topic.hpp"
#include "rings/topic_layout.hpp"
#include "support/process.hpp"
#include "support/shared_memory.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;
namespace layout = detail::topic;

// A topic's region in shared memory (tests/support/shared_memory.hpp).
class SharedRegion : public test::SharedMemory {
public:
    using SharedMemory::SharedMemory;
    [[nodiscard]] layout::TopicHeader& header() const { return at<layout::TopicHeader>(); }
};

std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
    x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
    return x ^ (x >> 31);
}

// Message `seq`: 8 bytes of seq, then bytes that depend on it, of a length that depends on it, so
// a lost, repeated, reordered, torn or truncated message cannot pass for the expected one.
std::vector<std::byte> message(std::uint64_t seq, std::size_t max = 300) {
    std::vector<std::byte> m(8 + mix(seq) % (max - 8));
    std::memcpy(m.data(), &seq, 8);
    for (std::size_t i = 8; i < m.size(); ++i)
        m[i] = static_cast<std::byte>(mix(seq + i));
    return m;
}

// The sequence number a message carries, or ~0 if it is not a whole, untorn message.
std::uint64_t check(const std::vector<std::byte>& m, std::size_t max = 300) {
    if (m.size() < 8) return ~std::uint64_t{0};
    std::uint64_t seq = 0;
    std::memcpy(&seq, m.data(), 8);
    return m == message(seq, max) ? seq : ~std::uint64_t{0};
}

void wait_for_subscribers(const TopicPublisher& pub, std::uint32_t n) {
    for (int i = 0; i < 10000 && pub.subscribers() < n; ++i)
        std::this_thread::sleep_for(1ms);
    ASSERT_EQ(pub.subscribers(), n);
}

// A child that receives until closed and checks it got first..last, whole and in order.
int receive_all(std::span<std::byte> region, std::uint64_t first, std::uint64_t last, WaitMode mode) {
    auto sub = TopicSubscriber::attach(region, mode);
    std::vector<std::byte> m;
    std::uint64_t want = first;
    for (;;) {
        const auto r = sub.recv(m, Deadline::after(30s));
        if (r.status == Status::closed) break;
        if (!r.ok()) return 2;
        if (check(m) != want || sub.sequence() != want || sub.missed() != 0) return 3;
        ++want;
    }
    return want == last + 1 ? 0 : 4;
}

TEST(TopicTest, FormatRejectsOptionsOutOfRange) {
    SharedRegion region(1 << 16);
    EXPECT_THROW(Topic::format(region.span(), {.subscribers = 0}), Error);
    EXPECT_THROW(Topic::format(region.span(), {.subscribers = 5000}), Error);
    EXPECT_THROW(Topic::format(region.span(), {.history = 65}), Error);
    EXPECT_THROW(Topic::format(region.span(), {.capacity = 1000}), Error);
    EXPECT_THROW(Topic::format(region.span(), {.capacity = 1 << 20}), Error);
    EXPECT_EQ(Topic::format(region.span(), {.capacity = 4096}), 4096u);
    EXPECT_EQ(Topic::format(region.span()), 32768u);  // the largest power of two that fits
}

TEST(TopicTest, EverySubscriberReceivesEverythingUnderBlock) {
    for (const WaitMode mode : {WaitMode::adaptive, WaitMode::block}) {
        SharedRegion region(Topic::region_size(4096, 8));
        Topic::format(region.span(), {.capacity = 4096, .subscribers = 8});
        constexpr std::uint64_t kCount = 20000;
        std::vector<test::Child> children;
        for (int i = 0; i < 4; ++i) {
            children.push_back(test::spawn([&] { return receive_all(region.span(), 0, kCount - 1, mode); }));
        }
        auto pub = TopicPublisher::attach(region.span(), mode);
        wait_for_subscribers(pub, 4);
        for (std::uint64_t seq = 0; seq < kCount; ++seq) {
            ASSERT_TRUE(pub.send(message(seq), Deadline::after(30s)).ok()) << seq;
        }
        pub.close();
        for (auto& child : children)
            EXPECT_EQ(child.wait(), 0);
    }
}

TEST(TopicTest, LoanedRecordsAreReadInPlace) {
    SharedRegion region(Topic::region_size(1024, 2));
    Topic::format(region.span(), {.capacity = 1024, .subscribers = 2});
    auto child = test::spawn([&] {
        auto sub = TopicSubscriber::attach(region.span());
        for (std::uint64_t seq = 0; seq < 1000; ++seq) {
            const auto view = sub.read(Deadline::after(30s));
            if (!view.ok()) return 2;
            std::vector<std::byte> m(view.message.begin(), view.message.end());
            if (check(m, 200) != seq) return 3;
            sub.release();
        }
        return 0;
    });
    auto pub = TopicPublisher::attach(region.span());
    wait_for_subscribers(pub, 1);
    for (std::uint64_t seq = 0; seq < 1000; ++seq) {
        const auto m = message(seq, 200);
        auto loan = pub.loan(400, Deadline::after(30s));
        ASSERT_TRUE(loan.ok());
        std::memcpy(loan.buffer.data(), m.data(), m.size());
        pub.commit(m.size());
    }
    EXPECT_EQ(child.wait(), 0);
}

TEST(TopicTest, DroppedMessagesAreCountedAndNeverTorn) {
    SharedRegion region(Topic::region_size(4096, 4));
    Topic::format(region.span(), {.capacity = 4096, .subscribers = 4, .overflow = Overflow::drop});
    constexpr std::uint64_t kCount = 50000;
    auto slow = test::spawn([&] {
        auto sub = TopicSubscriber::attach(region.span(), WaitMode::block);
        std::vector<std::byte> m;
        std::uint64_t got = 0;
        std::uint64_t last = 0;
        for (;;) {
            const auto r = sub.recv(m, Deadline::after(30s));
            if (r.status == Status::closed) break;
            if (!r.ok()) return 2;
            const std::uint64_t seq = check(m);
            if (seq != sub.sequence()) return 3;  // torn or mislabelled
            if (got != 0 && seq != last + 1 + sub.missed()) return 4;
            last = seq;
            ++got;
            if (got % 64 == 0) std::this_thread::sleep_for(1ms);  // deliberately slow
        }
        std::fprintf(stderr, "slow subscriber: got %llu, missed %llu\n", static_cast<unsigned long long>(got),
                     static_cast<unsigned long long>(sub.missed_total()));
        if (sub.missed_total() == 0) return 5;  // the test did not exercise dropping
        return got + sub.missed_total() == kCount && last == kCount - 1 ? 0 : 6;
    });
    auto pub = TopicPublisher::attach(region.span());
    wait_for_subscribers(pub, 1);
    for (std::uint64_t seq = 0; seq < kCount; ++seq) {
        ASSERT_TRUE(pub.try_send(message(seq)).ok()) << seq;  // drop never waits
    }
    pub.close();
    EXPECT_EQ(slow.wait(), 0);
}

TEST(TopicTest, ReadInPlaceIsRefusedUnderDrop) {
    SharedRegion region(Topic::region_size(4096, 1));
    Topic::format(region.span(), {.capacity = 4096, .subscribers = 1, .overflow = Overflow::drop});
    auto sub = TopicSubscriber::attach(region.span());
    EXPECT_THROW((void)sub.read(Deadline::immediate()), Error);
}

TEST(TopicTest, LateSubscriberGetsHistoryThenNewMessages) {
    SharedRegion region(Topic::region_size(4096, 2));
    Topic::format(region.span(), {.capacity = 4096, .subscribers = 2, .history = 4});
    auto pub = TopicPublisher::attach(region.span());
    for (std::uint64_t seq = 0; seq < 10; ++seq)
        ASSERT_TRUE(pub.send(message(seq)).ok());  // nobody listens
    auto child = test::spawn([&] {
        auto sub = TopicSubscriber::attach(region.span());
        std::vector<std::byte> m;
        for (std::uint64_t seq = 6; seq < 12; ++seq) {
            if (!sub.recv(m, Deadline::after(30s)).ok() || check(m) != seq) return 2;
        }
        return 0;
    });
    wait_for_subscribers(pub, 1);
    for (std::uint64_t seq = 10; seq < 12; ++seq)
        ASSERT_TRUE(pub.send(message(seq)).ok());
    EXPECT_EQ(child.wait(), 0);
}

TEST(TopicTest, SubscriberWithoutHistorySeesOnlyWhatFollowsItsJoin) {
    SharedRegion region(Topic::region_size(4096, 2));
    Topic::format(region.span(), {.capacity = 4096, .subscribers = 2});
    auto pub = TopicPublisher::attach(region.span());
    for (std::uint64_t seq = 0; seq < 5; ++seq)
        ASSERT_TRUE(pub.send(message(seq)).ok());
    auto sub = TopicSubscriber::attach(region.span());
    std::vector<std::byte> m;
    EXPECT_EQ(sub.recv(m, Deadline::immediate()).status, Status::would_block);
    ASSERT_TRUE(pub.send(message(5)).ok());
    ASSERT_TRUE(sub.recv(m, Deadline::after(5s)).ok());
    EXPECT_EQ(check(m), 5u);
    EXPECT_EQ(sub.missed(), 0u);
}

// A subscriber that creates the topic (TopicSubscriber::create) holds its slot before the header
// says "topic": a publisher that attaches the moment it can counts it, and its first message
// arrives. Format-then-attach left a window where such a publisher published to nobody (a
// recording bridge lost a whole sender that way). Many rounds, since the window was short.
TEST(TopicTest, ACreatingSubscriberIsCountedByAPublisherThatAttachesTheMomentItCan) {
    for (int round = 0; round < 40; ++round) {
        SharedRegion region(Topic::region_size(4096, 2));
        auto publisher = test::spawn([&] {
            for (;;) {
                try {
                    auto pub = TopicPublisher::attach(region.span());
                    if (pub.subscribers() != 1) return 5;
                    return pub.send(message(1)).ok() ? 0 : 6;
                } catch (const Error& e) {
                    if (e.code() != std::errc::protocol_error) return 7;  // not formatted yet
                    sched_yield();
                }
            }
        });
        std::this_thread::sleep_for(std::chrono::microseconds(100 * (round % 8)));
        auto sub = TopicSubscriber::create(region.span(), {.capacity = 4096, .subscribers = 2});
        EXPECT_EQ(sub.slot(), 0u);
        ASSERT_EQ(publisher.wait(), 0) << "round " << round << ": the publisher did not count the creator";
        std::vector<std::byte> m;
        ASSERT_TRUE(sub.recv(m, Deadline::after(30s)).ok()) << "round " << round;
        EXPECT_EQ(check(m), 1u);
    }
}

TEST(TopicTest, KilledSubscriberFreesItsSlotAndNeverStallsThePublisher) {
    SharedRegion region(Topic::region_size(1024, 2));
    Topic::format(region.span(), {.capacity = 1024, .subscribers = 2});
    constexpr std::uint64_t kCount = 5000;  // many laps of a 1 KiB area
    auto stuck = test::spawn([&] {
        auto sub = TopicSubscriber::attach(region.span());
        std::vector<std::byte> m;
        (void)sub.recv(m, Deadline::after(30s));
        ::pause();  // holds its cursor until killed
        return 0;
    });
    auto live = test::spawn([&] { return receive_all(region.span(), 0, kCount - 1, WaitMode::adaptive); });
    auto pub = TopicPublisher::attach(region.span());
    wait_for_subscribers(pub, 2);
    bool killed = false;
    for (std::uint64_t seq = 0; seq < kCount; ++seq) {
        auto r = pub.send(message(seq), killed ? Deadline::after(30s) : Deadline::after(100ms));
        if (!killed && r.status == Status::timed_out) {
            // Held back by `stuck`, which is alive: kill it mid-stream, and the publisher goes on.
            stuck.kill(SIGKILL);
            EXPECT_EQ(stuck.wait(), -SIGKILL);
            killed = true;
            r = pub.send(message(seq), Deadline::after(30s));
        }
        ASSERT_TRUE(r.ok()) << seq;
    }
    EXPECT_TRUE(killed) << "the stuck subscriber never held the publisher back";
    pub.close();
    EXPECT_EQ(live.wait(), 0);
    // The dead subscriber's slot is free again: two can attach.
    auto a = TopicSubscriber::attach(region.span());
    auto b = TopicSubscriber::attach(region.span());
    EXPECT_TRUE(a.took_over() || b.took_over());
}

TEST(TopicTest, KilledPublisherIsClosedToSubscribersAndANewOneTakesOver) {
    SharedRegion region(Topic::region_size(4096, 4));
    Topic::format(region.span(), {.capacity = 4096, .subscribers = 4});
    auto sub = TopicSubscriber::attach(region.span());
    auto writer = test::spawn([&] {
        auto pub = TopicPublisher::attach(region.span());
        for (std::uint64_t seq = 0; seq < 100; ++seq) {
            if (!pub.send(message(seq), Deadline::after(30s)).ok()) return 2;
        }
        ::raise(SIGKILL);  // dies holding the publisher end
        return 0;
    });
    std::vector<std::byte> m;
    for (std::uint64_t seq = 0; seq < 100; ++seq) {
        ASSERT_TRUE(sub.recv(m, Deadline::after(30s)).ok());
        ASSERT_EQ(check(m), seq);
    }
    EXPECT_EQ(writer.wait(), -SIGKILL);
    EXPECT_EQ(sub.recv(m, Deadline::after(30s)).status, Status::closed);
    auto pub = TopicPublisher::attach(region.span());
    EXPECT_TRUE(pub.took_over());
    EXPECT_EQ(pub.sequence(), 100u);
    ASSERT_TRUE(pub.send(message(100)).ok());
    ASSERT_TRUE(sub.recv(m, Deadline::after(5s)).ok());
    EXPECT_EQ(check(m), 100u);
    EXPECT_EQ(sub.missed(), 0u);
}

TEST(TopicTest, SubscribersBeyondTheSlotsAreRefusedUntilOneLeaves) {
    SharedRegion region(Topic::region_size(1024, 2));
    Topic::format(region.span(), {.capacity = 1024, .subscribers = 2});
    auto a = TopicSubscriber::attach(region.span());
    auto b = TopicSubscriber::attach(region.span());
    try {
        (void)TopicSubscriber::attach(region.span());
        FAIL() << "a third subscriber attached to two slots";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::device_or_resource_busy);
        EXPECT_NE(std::string(e.what()).find("all 2 subscriber slots"), std::string::npos) << e.what();
    }
    a.close();
    auto c = TopicSubscriber::attach(region.span());
    EXPECT_EQ(c.slot(), 0u);
}

// A move hands an end over (the moved-from one holds nothing and closes nothing); assigning over
// an end closes it first, so its slot is free and its subscribers see `closed`.
TEST(TopicTest, MovesHandTheEndOverAndAssigningOverAnEndClosesIt) {
    SharedRegion region(Topic::region_size(1024, 2));
    Topic::format(region.span(), {.capacity = 1024, .subscribers = 2});
    SharedRegion other(Topic::region_size(1024, 2));  // outlives the ends below
    Topic::format(other.span(), {.capacity = 1024, .subscribers = 2});
    auto a = TopicSubscriber::attach(region.span());
    auto b = TopicSubscriber::attach(region.span());
    TopicSubscriber moved = std::move(a);
    EXPECT_THROW((void)TopicSubscriber::attach(region.span()), Error);  // both slots still held
    EXPECT_THROW(a.release(), Error);                                   // a holds nothing now
    a.close();                                                          // and closes nothing
    EXPECT_THROW((void)TopicSubscriber::attach(region.span()), Error);
    moved = std::move(b);  // closes slot 0, takes slot 1
    EXPECT_EQ(moved.slot(), 1u);
    auto c = TopicSubscriber::attach(region.span());
    EXPECT_EQ(c.slot(), 0u);

    auto pub = TopicPublisher::attach(region.span());
    auto loan = pub.loan(8);
    ASSERT_TRUE(loan.ok());
    TopicPublisher holder = std::move(pub);
    EXPECT_THROW(pub.commit(8), Error);  // the loan went with the end
    std::memset(loan.buffer.data(), 7, 8);
    holder.commit(8);
    std::vector<std::byte> m;
    ASSERT_TRUE(moved.recv(m, Deadline::after(30s)).ok());
    EXPECT_EQ(m, std::vector<std::byte>(8, std::byte{7}));
    // Assigning another topic's publisher over it closes this topic's end: its subscribers drain
    // what it published, then see `closed`.
    holder = TopicPublisher::attach(other.span());
    ASSERT_TRUE(c.recv(m, Deadline::after(30s)).ok());
    EXPECT_EQ(c.recv(m, Deadline::after(30s)).status, Status::closed);
    EXPECT_EQ(moved.recv(m, Deadline::after(30s)).status, Status::closed);
    auto next = TopicPublisher::attach(region.span());
    EXPECT_FALSE(next.took_over());  // the end was closed, not left to a takeover
}

TEST(TopicTest, HostileHeaderIsRefusedWithAClearError) {
    SharedRegion region(Topic::region_size(1024, 2));
    auto expect_refused = [&](auto corrupt, const char* what) {
        Topic::format(region.span(), {.capacity = 1024, .subscribers = 2});
        corrupt(region.header());
        try {
            (void)TopicSubscriber::attach(region.span());
            ADD_FAILURE() << what << ": attached";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::protocol_error) << what << ": " << e.what();
        }
        EXPECT_THROW((void)TopicPublisher::attach(region.span()), Error) << what;
    };
    expect_refused([](layout::TopicHeader& h) { h.control.magic = 1; }, "magic");
    expect_refused([](layout::TopicHeader& h) { h.control.version = 1; }, "version");
    expect_refused([](layout::TopicHeader& h) { h.control.kind = detail::region::Kind::ring; }, "kind");
    expect_refused([](layout::TopicHeader& h) { h.control.kind_words[layout::kSlotsWord] = 9999; }, "slots");
    expect_refused([](layout::TopicHeader& h) { h.control.kind_words[layout::kSlotsWord] = 3; }, "size");
    expect_refused([](layout::TopicHeader& h) { h.control.kind_words[layout::kHistoryWord] = 65; },
                   "history");
    expect_refused([](layout::TopicHeader& h) { h.control.kind_words[layout::kOverflowWord] = 7; },
                   "overflow");
    expect_refused([](layout::TopicHeader& h) { h.control.capacity = 1u << 20; }, "capacity");
    expect_refused([](layout::TopicHeader& h) { h.publisher.committed = 4; }, "committed");
    expect_refused([](layout::TopicHeader& h) { h.oldest.position = 64; }, "oldest");
    // A slot whose owner state is not one the protocol knows is a corrupt region, not a free slot.
    Topic::format(region.span(), {.capacity = 1024, .subscribers = 2});
    layout::slots(&region.header())[0].end.owner = std::uint64_t{9} << 32;
    EXPECT_THROW((void)TopicSubscriber::attach(region.span()), Error);
}

TEST(TopicTest, HostileRecordIsAnErrorNotACrash) {
    SharedRegion region(Topic::region_size(1024, 2));
    Topic::format(region.span(), {.capacity = 1024, .subscribers = 2});
    auto pub = TopicPublisher::attach(region.span());
    auto sub = TopicSubscriber::attach(region.span());
    ASSERT_TRUE(pub.send(message(0)).ok());
    // A length far beyond the area, with a stamp that says "committed here".
    auto* data = region.span().data() + layout::header_size(2);
    reinterpret_cast<std::atomic<std::uint64_t>*>(data)->store(
        detail::region::commit_word(0x7fffffff, detail::region::data_stamp(0)));
    std::vector<std::byte> m;
    try {
        (void)sub.recv(m, Deadline::immediate());
        FAIL() << "a corrupt record was delivered";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::bad_message) << e.what();
    }
    // A hostile cursor in a slot holds nothing back (it is clamped), and a garbage commit word
    // where the publisher must overwrite is reported, not followed.
    sub.close();
    auto hostile = TopicSubscriber::attach(region.span());
    layout::slots(&region.header())[hostile.slot()].cursor.position = ~std::uint64_t{0};
    EXPECT_THROW(
        {
            for (int i = 0; i < 100; ++i)
                (void)pub.try_send(message(static_cast<std::uint64_t>(i)));
        },
        Error);
}

TEST(TopicTest, OversizedMessageIsRefusedAndNothingIsLost) {
    SharedRegion region(Topic::region_size(1024, 1));
    Topic::format(region.span(), {.capacity = 1024, .subscribers = 1});
    auto pub = TopicPublisher::attach(region.span());
    auto sub = TopicSubscriber::attach(region.span());
    EXPECT_EQ(pub.max_message_size(), 1024u / 2 - 24);
    std::vector<std::byte> big(pub.max_message_size() + 1);
    EXPECT_THROW((void)pub.send(big), Error);
    big.pop_back();
    ASSERT_TRUE(pub.send(big).ok());
    std::array<std::byte, 16> small{};
    EXPECT_THROW((void)sub.recv(small, Deadline::immediate()), Error);
    std::vector<std::byte> m;
    ASSERT_TRUE(sub.recv(m, Deadline::immediate()).ok());
    EXPECT_EQ(m.size(), big.size());
}

}  // namespace
}  // namespace ipckit
