// The shared-memory ring's ends taken over (layout version 2): a new producer or consumer resumes
// where a dead one left, live holders are refused, closed ends are reclaimed.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/ring.hpp"
#include "rings/ring_layout.hpp"
#include "rings/shared_region.hpp"
#include "support/process.hpp"
#include "support/ring_messages.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;
using namespace test::ring;  // SharedRegion, make_message, is_message, error_of (support/ring_messages.hpp)
namespace layout = detail::ring;

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

// ---- the abstract name a memfd region is served on (rings/shared_region.hpp) ----

struct Handshake {
    std::atomic<std::uint32_t> created;  // the parent made the memory
    std::atomic<std::uint32_t> holding;  // the child holds the memory
    std::atomic<std::uint32_t> go;       // the child may let go of it
};

// Bounded: a word that never turns is a failure, not a hang.
bool eventually(const std::atomic<std::uint32_t>& word) {
    for (int i = 0; i < 10'000 && word.load() == 0; ++i)
        std::this_thread::sleep_for(1ms);
    return word.load() != 0;
}

bool refused_as_in_use(const std::string& name, const std::string& object) {
    try {
        (void)detail::SharedRegion::create(
            name, 4096, [](std::span<std::byte>) {}, object);
        return false;
    } catch (const Error& e) {
        return e.code() == std::errc::address_in_use;
    }
}

// A holder that serves the name and closes hands its listening socket to another holder: the
// name is never free, not even while that holder is stopped, so a creator the moment after is
// refused instead of making new memory that the holders would never see. Before the hand-over
// it was free until the other holder's thread bound it again, and such a creator made new
// memory (a service's successor did, 5 runs in 350 of ServiceFaultsTest's kill test).
TEST(SharedRegionTest, AServingHolderThatClosesHandsTheNameOverAndItIsNeverFree) {
    const std::string name = test::unique_name("ipckit-handover");
    const std::string object = "shm:@" + name;
    SharedRegion shared(4096);
    for (int round = 0; round < 10; ++round) {
        auto& handshake = *::new (shared.span().data()) Handshake{};
        // Forked before the name is bound: a child would hold a copy of the listening socket.
        auto child = test::spawn([&] {
            if (!eventually(handshake.created)) return 5;
            detail::SharedRegion held = detail::SharedRegion::open(name, Deadline::after(5s), object);
            if (held.bytes()[0] != std::byte(round)) return 2;
            handshake.holding.store(1);
            if (!eventually(handshake.go)) return 3;
            return held.serving() && !held.superseded() ? 0 : 4;
        });
        std::optional<detail::SharedRegion> creator;
        creator.emplace(detail::SharedRegion::create(
            name, 4096, [&](std::span<std::byte> bytes) { bytes[0] = std::byte(round); }, object));
        handshake.created.store(1);
        ASSERT_TRUE(eventually(handshake.holding)) << "round " << round;
        // Stopped, the child cannot bind the name as it used to: only a hand-over keeps it taken.
        ASSERT_TRUE(child.stop());
        creator.reset();  // the name goes to the child
        EXPECT_TRUE(refused_as_in_use(name, object)) << "round " << round << ": the name was free";
        child.kill(SIGCONT);
        std::optional<detail::SharedRegion> again;
        again.emplace(detail::SharedRegion::open(name, Deadline::after(5s), object));
        EXPECT_EQ(again->bytes()[0], std::byte(round)) << "round " << round << ": other memory";
        handshake.go.store(1);
        EXPECT_EQ(child.wait(), 0) << "round " << round;  // and the name comes back here
        EXPECT_TRUE(refused_as_in_use(name, object)) << "round " << round << ": the name was free";
        again.reset();  // the last holder: the name and the memory go
        EXPECT_FALSE(refused_as_in_use(name, object)) << "round " << round << ": the name stayed";
    }
}

}  // namespace
}  // namespace ipckit
