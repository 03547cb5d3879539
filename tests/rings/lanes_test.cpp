// Lanes (senders=N): many senders, one receiver, each sender in its own forked process over a
// MAP_SHARED anonymous mapping made before fork().
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/lanes.hpp"
#include "rings/ring_layout.hpp"
#include "support/process.hpp"
#include "support/shared_memory.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;
namespace layout = detail::ring;

// A lanes region in shared memory (tests/support/shared_memory.hpp).
class Region : public test::SharedMemory {
public:
    using SharedMemory::SharedMemory;
    // The kind-1 header of lane `i`.
    [[nodiscard]] layout::RingHeader& lane(std::uint32_t i, std::size_t capacity) const {
        return at<layout::RingHeader>(layout::kLanesHeaderSize + i * (layout::kHeaderSize + capacity));
    }
};

struct Message {
    std::uint32_t sender;
    std::uint32_t seq;
};

std::span<const std::byte> bytes_of(const Message& m) {
    return std::as_bytes(std::span(&m, 1));
}

Message parse(const std::vector<std::byte>& got) {
    Message m{};
    EXPECT_EQ(got.size(), sizeof m);
    std::memcpy(&m, got.data(), std::min(got.size(), sizeof m));
    return m;
}

// Waits (bounded) until lane `i`'s producer end is held.
bool wait_attached(const Region& region, std::uint32_t i, std::size_t capacity) {
    for (int n = 0; n < 10'000; ++n) {
        const auto owner = layout::OwnerWord::unpack(region.lane(i, capacity).producer_end.owner.load());
        if (owner.state == layout::EndpointState::attached) return true;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}

TEST(LanesTest, FormatChecksItsArguments) {
    Region region(Lanes::region_size(2, 4096));
    EXPECT_THROW((void)Lanes::format(region.span(), {.lanes = 0}), Error);
    EXPECT_THROW((void)Lanes::format(region.span(), {.lanes = 65}), Error);
    EXPECT_THROW((void)Lanes::format(region.span(), {.lanes = 3, .capacity = 4096}), Error);
    EXPECT_EQ(Lanes::format(region.span(), {.lanes = 2}), 4096u);
    // A lanes region is not a ring, and a ring is not lanes: both say so.
    try {
        (void)RingConsumer::attach(region.span());
        ADD_FAILURE() << "a lanes region attached as a ring";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("lanes region"), std::string::npos) << e.what();
    }
    Region ring(Ring::region_size(4096));
    Ring::format(ring.span());
    try {
        (void)LanesReceiver::attach(ring.span());
        ADD_FAILURE() << "a ring attached as lanes";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("1:1 ring"), std::string::npos) << e.what();
    }
}

// Seen while writing fuzz/lanes_target.cpp: a lane's own ring header may say a smaller capacity
// than the lanes header (it still fits the stride, so the kind-1 attach took it), and the receiver
// then gave lane 0's limit as its max_message_size while the other lanes delivered messages over it.
TEST(LanesTest, ALaneSmallerThanTheLanesHeaderSaysIsRefused) {
    constexpr std::size_t kCapacity = 1024;
    Region region(Lanes::region_size(2, kCapacity));
    Lanes::format(region.span(), {.lanes = 2, .capacity = kCapacity});
    region.lane(0, kCapacity).control.capacity = 64;
    for (const bool receiver : {true, false}) {
        try {
            if (receiver) {
                (void)LanesReceiver::attach(region.span());
            } else {
                (void)LanesSender::attach(region.span());
            }
            ADD_FAILURE() << (receiver ? "the receiver" : "a sender") << " attached to a lane of 64 bytes";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::protocol_error);
            EXPECT_NE(std::string(e.what()).find("lane 0 is a ring of 64 bytes"), std::string::npos)
                << e.what();
        }
    }
    // Refused without keeping an end: once repaired, both attach.
    region.lane(0, kCapacity).control.capacity = kCapacity;
    auto rx = LanesReceiver::attach(region.span());
    EXPECT_EQ(rx.max_message_size(), Ring::max_message_size(kCapacity));
    EXPECT_EQ(LanesSender::attach(region.span()).lane(), 0u);
}

TEST(LanesTest, ThreeSendersEveryMessageInOrderPerSender) {
    constexpr std::size_t kCapacity = 4096;
    constexpr std::uint32_t kPerSender = 2000;
    Region region(Lanes::region_size(3, kCapacity));
    Lanes::format(region.span(), {.lanes = 3, .capacity = kCapacity});
    auto rx = LanesReceiver::attach(region.span());
    std::vector<test::Child> senders;
    for (std::uint32_t id = 0; id < 3; ++id) {
        senders.push_back(test::spawn([&, id] {
            auto tx = LanesSender::attach(region.span());
            for (std::uint32_t seq = 0; seq < kPerSender; ++seq) {
                if (seq % 2 == 0) {
                    if (!tx.send(bytes_of({id, seq}), Deadline::after(30s)).ok()) return 2;
                } else {
                    const Loan loan = tx.loan(sizeof(Message), Deadline::after(30s));
                    if (!loan.ok()) return 3;
                    const Message m{id, seq};
                    std::memcpy(loan.buffer.data(), &m, sizeof m);
                    tx.commit(sizeof m);
                }
            }
            return tx.drain(Deadline::after(30s)) == Status::ok ? 0 : 4;
        }));
    }
    std::map<std::uint32_t, std::uint32_t> next;
    std::vector<std::byte> got;
    std::size_t total = 0;
    const auto limit = Deadline::after(60s);
    while (total < 3 * kPerSender && !limit.expired()) {
        const IoResult r = rx.recv(got, Deadline::after(10s));
        if (r.status == Status::closed) {  // every sender so far has left; more are coming
            std::this_thread::sleep_for(1ms);
            continue;
        }
        ASSERT_TRUE(r.ok()) << static_cast<int>(r.status);
        const Message m = parse(got);
        ASSERT_LT(m.sender, 3u);
        ASSERT_EQ(m.seq, next[m.sender]) << "sender " << m.sender << " out of order";
        ++next[m.sender];
        ++total;
    }
    EXPECT_EQ(total, 3 * kPerSender);
    for (auto& s : senders)
        EXPECT_EQ(s.wait(), 0);
    EXPECT_EQ(rx.recv(got, Deadline::after(10s)).status, Status::closed);
}

TEST(LanesTest, KilledSenderDeliversWhatItCommittedAndFreesItsLane) {
    constexpr std::size_t kCapacity = 1024;
    Region region(Lanes::region_size(1, kCapacity));
    Lanes::format(region.span(), {.lanes = 1, .capacity = kCapacity});
    auto rx = LanesReceiver::attach(region.span());
    auto doomed = test::spawn([&] {
        auto tx = LanesSender::attach(region.span());
        for (std::uint32_t seq = 0;; ++seq)
            if (!tx.send(bytes_of({7, seq})).ok()) return 2;
    });
    std::vector<std::byte> got;
    std::uint32_t seq = 0;
    for (; seq < 500; ++seq) {
        ASSERT_TRUE(rx.recv(got, Deadline::after(10s)).ok());
        ASSERT_EQ(parse(got).seq, seq);
    }
    doomed.kill(SIGKILL);  // mid-stream: its lane is full or being filled
    IoResult r;
    while ((r = rx.recv(got, Deadline::after(10s))).ok()) {
        ASSERT_EQ(parse(got).seq, seq) << "lost or repeated after the kill";
        ++seq;
    }
    EXPECT_EQ(r.status, Status::closed);
    EXPECT_EQ(doomed.wait(), -SIGKILL);
    // A new sender takes the dead one's lane (the only one).
    auto heir = test::spawn([&] {
        auto tx = LanesSender::attach(region.span());
        for (std::uint32_t i = 0; i < 100; ++i)
            if (!tx.send(bytes_of({8, i})).ok()) return 2;
        return tx.drain(Deadline::after(30s)) == Status::ok ? static_cast<int>(10 + tx.lane()) : 4;
    });
    for (std::uint32_t i = 0; i < 100; ++i) {
        r = rx.recv(got, Deadline::after(10s));
        if (r.status == Status::closed && i == 0) {  // before the heir attached
            --i;
            std::this_thread::sleep_for(1ms);
            continue;
        }
        ASSERT_TRUE(r.ok());
        const Message m = parse(got);
        ASSERT_EQ(m.sender, 8u);
        ASSERT_EQ(m.seq, i);
    }
    EXPECT_EQ(heir.wait(), 10);
}

TEST(LanesTest, MoreSendersThanLanesIsRefusedNamingN) {
    constexpr std::size_t kCapacity = 1024;
    Region region(Lanes::region_size(2, kCapacity));
    Lanes::format(region.span(), {.lanes = 2, .capacity = kCapacity});
    std::vector<test::Child> holders;
    for (std::uint32_t i = 0; i < 2; ++i) {
        holders.push_back(test::spawn([&] {
            auto tx = LanesSender::attach(region.span());
            ::pause();
            return 0;
        }));
        ASSERT_TRUE(wait_attached(region, i, kCapacity));
    }
    try {
        (void)LanesSender::attach(region.span());
        ADD_FAILURE() << "a third sender got a lane of two";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::device_or_resource_busy);
        EXPECT_NE(std::string(e.what()).find("senders=2"), std::string::npos) << e.what();
    }
    for (auto& h : holders) {
        h.kill(SIGKILL);
        EXPECT_EQ(h.wait(), -SIGKILL);
    }
    // Their lanes are free again once they are dead.
    EXPECT_EQ(LanesSender::attach(region.span()).lane(), 0u);
}

TEST(LanesTest, BlockedReceiverIsWokenByAnyLane) {
    constexpr std::size_t kCapacity = 1024;
    Region region(Lanes::region_size(3, kCapacity));
    Lanes::format(region.span(), {.lanes = 3, .capacity = kCapacity});
    auto rx = LanesReceiver::attach(region.span(), WaitMode::block);
    std::vector<test::Child> idle;
    for (std::uint32_t i = 0; i < 2; ++i) {
        idle.push_back(test::spawn([&] {
            auto tx = LanesSender::attach(region.span());
            ::pause();
            return 0;
        }));
        ASSERT_TRUE(wait_attached(region, i, kCapacity));
    }
    // The sender on the last lane sends only once the receiver sleeps on that lane too.
    auto last = test::spawn([&] {
        auto tx = LanesSender::attach(region.span());
        if (tx.lane() != 2) return 5;
        auto& sleepers = region.lane(2, kCapacity).wait.consumer_sleepers;
        for (int n = 0; n < 10'000 && sleepers.load() == 0; ++n)
            std::this_thread::sleep_for(1ms);
        if (sleepers.load() == 0) return 6;
        return tx.send(bytes_of({2, 0})).ok() && tx.drain(Deadline::after(30s)) == Status::ok ? 0 : 2;
    });
    std::vector<std::byte> got;
    ASSERT_TRUE(rx.recv(got, Deadline::after(20s)).ok());
    EXPECT_EQ(parse(got).sender, 2u);
    EXPECT_EQ(last.wait(), 0);
    for (auto& c : idle) {
        c.kill(SIGKILL);
        EXPECT_EQ(c.wait(), -SIGKILL);
    }
}

TEST(LanesTest, ReceiverTakesFromLanesInTurn) {
    constexpr std::size_t kCapacity = 4096;
    Region region(Lanes::region_size(2, kCapacity));
    Lanes::format(region.span(), {.lanes = 2, .capacity = kCapacity});
    auto rx = LanesReceiver::attach(region.span());
    // Both lanes full before the receiver reads: it must alternate, one record per lane per turn.
    std::vector<test::Child> senders;
    for (std::uint32_t id = 0; id < 2; ++id) {
        senders.push_back(test::spawn([&, id] {
            auto tx = LanesSender::attach(region.span());
            for (std::uint32_t seq = 0; seq < 10; ++seq)
                if (!tx.send(bytes_of({id, seq})).ok()) return 2;
            return tx.drain(Deadline::after(30s)) == Status::ok ? 0 : 4;
        }));
        ASSERT_TRUE(wait_attached(region, id, kCapacity));
    }
    for (auto& lane : {0u, 1u}) {
        auto& producer = region.lane(lane, kCapacity).producer.position;
        for (int n = 0; n < 10'000 && producer.load() < 10 * 16; ++n)
            std::this_thread::sleep_for(1ms);
    }
    std::vector<std::byte> got;
    for (std::uint32_t i = 0; i < 20; ++i) {
        ASSERT_TRUE(rx.recv(got, Deadline::after(10s)).ok());
        const Message m = parse(got);
        EXPECT_EQ(m.seq, i / 2);
        EXPECT_EQ(m.sender, i % 2);
    }
    for (auto& s : senders)
        EXPECT_EQ(s.wait(), 0);
}

}  // namespace
}  // namespace ipckit
