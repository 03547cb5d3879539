// Crash after crash on one address: the rounds of issue 22, per ring transport. Each round
// starts a pair on the SAME object, kills it by SIGKILL in one of three ways in turn (the sender,
// the receiver, both), and then a fresh pair must take over what the dead left and carry a new
// message. The Nth crash must behave as the first: no hang, nothing committed lost or repeated.
//
// Proof that the fresh pair attached to the existing object, not a new one: the test maps the
// object itself (the same inode, or shmid, all along) and reads its endpoint lines. Before the
// fresh pair comes, every killed end's holder word must say the kernel marked it dead
// (FUTEX_OWNER_DIED): a round whose kill did not happen fails. After the fresh message arrived,
// each of those ends must have a new epoch and a live holder: a takeover, counted.
//
// Each transport prints one line:
//   faults: transport=T rounds=N takeovers=N kills=K messages=M lost_after_commit=0 torn=0 hangs=0
// IPCKIT_TAKEOVER_ROUNDS=N changes the number of rounds (12 by default, at least 10 in CI).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/lanes.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/objects.hpp"
#include "ipckit/posix_shm.hpp"
#include "ipckit/sysv_key.hpp"
#include "ipckit/sysv_shm.hpp"
#include "rings/ring_layout.hpp"
#include "support/numbered.hpp"
#include "support/process.hpp"
#include "support/transports.hpp"

namespace ipckit {
namespace {

[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;
namespace layout = detail::ring;

// Far longer than a survivor takes to see a death (the kernel marks it at once): a hang.
constexpr auto kHangLimit = 5s;
constexpr std::uint64_t kFreshMark = 900'000'000;

struct Progress {
    std::atomic<std::uint64_t> acknowledged;  // the sender's sends that returned ok
    std::atomic<std::uint64_t> received;      // the receiver's whole, in-order messages
};

enum class Kill { sender, receiver, both };

const char* name_of(Kill kill) {
    return kill == Kill::sender     ? "sender killed"
           : kill == Kill::receiver ? "receiver killed"
                                    : "both killed";
}

// The object under the address, mapped by the test: what identifies it, and its endpoint lines.
class Witness {
public:
    Witness(const std::string& target, bool sysv, std::uint32_t lanes) : lanes_(lanes) {
        if (sysv) {
            sysv_.emplace(SysvShm::open(SysvKey::parse(target)));
            attachment_.emplace(sysv_->attach(Access::read_write));
            bytes_ = attachment_->bytes();
            identity_ = static_cast<std::uint64_t>(sysv_->id());
        } else {
            posix_.emplace(PosixShm::open(target, Access::read_write));
            posix_->keep();  // the test removes it by its address at the end
            mapping_.emplace(posix_->map(Access::read_write));
            bytes_ = mapping_->bytes();
            struct stat st {};
            if (::fstat(posix_->fd().get(), &st) != 0) throw_errno("fstat", target);
            identity_ = st.st_ino;
        }
    }
    [[nodiscard]] std::uint64_t identity() const { return identity_; }
    // Every end of the region: the ring's two, or the receiver's and every lane's two.
    [[nodiscard]] std::vector<layout::EndpointLine*> ends() const {
        std::vector<layout::EndpointLine*> all;
        if (lanes_ == 0) {
            auto* ring = reinterpret_cast<layout::RingHeader*>(bytes_.data());
            return {&ring->producer_end, &ring->consumer_end};
        }
        auto* header = reinterpret_cast<layout::LanesHeader*>(bytes_.data());
        all.push_back(&header->receiver_end);
        const std::uint64_t stride = header->control.kind_words[1];
        for (std::uint32_t i = 0; i < lanes_; ++i) {
            auto* ring =
                reinterpret_cast<layout::RingHeader*>(bytes_.data() + layout::kLanesHeaderSize + i * stride);
            all.push_back(&ring->producer_end);
            all.push_back(&ring->consumer_end);
        }
        return all;
    }

private:
    std::uint32_t lanes_;
    std::optional<PosixShm> posix_;
    std::optional<Mapping> mapping_;
    std::optional<SysvShm> sysv_;
    std::optional<SysvAttachment> attachment_;
    std::span<std::byte> bytes_;
    std::uint64_t identity_ = 0;
};

struct Snapshot {
    std::uint32_t holder;
    std::uint32_t epoch;
};

std::vector<Snapshot> snapshot(const Witness& witness) {
    std::vector<Snapshot> all;
    for (const auto* end : witness.ends())
        all.push_back({end->holder.load(), layout::OwnerWord::unpack(end->owner.load()).epoch});
    return all;
}

int run_sender(const std::string& address, Progress& progress) {
    Sender sender = Sender::open(address, Deadline::after(10s));
    for (std::uint64_t sequence = 0;; ++sequence) {
        const IoResult r =
            sender.send(test::numbered_message(sequence, 64 + sequence % 512), Deadline::after(kHangLimit));
        if (!r.ok()) return r.status == Status::closed ? 0 : 10 + static_cast<int>(r.status);
        progress.acknowledged.store(sequence + 1, std::memory_order_release);
    }
}

// Takes what the killed sender committed; `closed` after its death is the right end.
int run_receiver(const std::string& address, Progress& progress) {
    Receiver receiver = Receiver::open(address, Deadline::after(10s));
    test::SequenceCheck check;
    std::vector<std::byte> message;
    for (;;) {
        const IoResult r = receiver.recv(message, Deadline::after(kHangLimit));
        if (r.status == Status::closed) break;
        if (!r.ok()) return 10 + static_cast<int>(r.status);
        // A fresh pair's sender and the record a dead receiver had not consumed come first.
        if (test::whole_message_sequence(message) == kFreshMark) continue;
        check.take(message);
        if (check.torn + check.duplicated != 0) return 3;
        progress.received.store(check.received, std::memory_order_release);
    }
    return check.next >= progress.acknowledged.load(std::memory_order_acquire) ? 0 : 4;
}

struct Tally {
    int rounds = 0;
    int kills = 0;
    int takeovers = 0;
    int hangs = 0;
    int missed_kills = 0;
    int not_taken_over = 0;
    int other_object = 0;
    int lost = 0;
    int torn_or_duplicated = 0;
    std::uint64_t messages = 0;
    std::vector<std::string> notes;
    void note(std::string text) {
        if (notes.size() < 20) notes.push_back(std::move(text));
    }
};

void wait_for(const std::atomic<std::uint64_t>& counter, std::uint64_t target) {
    for (int i = 0; i < 10'000 && counter.load(std::memory_order_acquire) < target; ++i)
        std::this_thread::sleep_for(1ms);
}

// One round: a pair on the object, killed as `kill` says.
void killed_round(const std::string& address, Kill kill, Progress& progress, Tally& tally) {
    progress.acknowledged.store(0);
    progress.received.store(0);
    test::Child receiver = test::spawn([&] { return run_receiver(address, progress); });
    test::Child sender = test::spawn([&] { return run_sender(address, progress); });
    wait_for(progress.received, 1 + static_cast<std::uint64_t>(tally.rounds % 7) * 40);
    const std::string round = "round " + std::to_string(tally.rounds) + " (" + name_of(kill) + ")";
    if (kill == Kill::both) {
        // Stopped first, so that neither sees the other's death before its own: both die holding.
        sender.kill(SIGSTOP);
        receiver.kill(SIGSTOP);
    }
    if (kill != Kill::sender) receiver.kill(SIGKILL);
    if (kill != Kill::receiver) sender.kill(SIGKILL);
    // The survivor ends by itself, with `closed`: a wait it ends any other way is a hang.
    const int receiver_end = receiver.wait(30s);
    const int sender_end = sender.wait(30s);
    const bool receiver_killed = kill != Kill::sender;
    const bool sender_killed = kill != Kill::receiver;
    if ((receiver_killed && receiver_end != -SIGKILL) || (sender_killed && sender_end != -SIGKILL)) {
        ++tally.missed_kills;
        tally.note(round + ": a victim ended before its kill (receiver " + std::to_string(receiver_end) +
                   ", sender " + std::to_string(sender_end) + ")");
    }
    if (!receiver_killed && receiver_end == 4) {
        ++tally.lost;  // it said closed before every acknowledged message arrived
        tally.note(round + ": the surviving receiver lost what the sender had committed");
    } else if (!receiver_killed && receiver_end == 3) {
        ++tally.torn_or_duplicated;
        tally.note(round + ": the surviving receiver got a torn or repeated message");
    } else if (!receiver_killed && receiver_end != 0) {
        ++tally.hangs;
        tally.note(round + ": the surviving receiver ended with " + std::to_string(receiver_end));
    }
    if (!sender_killed && sender_end != 0) {
        ++tally.hangs;
        tally.note(round + ": the surviving sender ended with " + std::to_string(sender_end));
    }
    tally.kills += (receiver_killed ? 1 : 0) + (sender_killed ? 1 : 0);
    tally.messages += progress.received.load();
}

// A fresh pair takes over what the dead left: the test is the receiver, a child the sender.
void fresh_pair(const std::string& address, const Witness& witness, Kill kill, Tally& tally) {
    const std::string round = "round " + std::to_string(tally.rounds) + " (" + name_of(kill) + ")";
    const std::vector<Snapshot> before = snapshot(witness);
    int dead = 0;
    for (const Snapshot& end : before)
        dead += (end.holder & layout::kHolderOwnerDied) != 0 ? 1 : 0;
    if (dead == 0) {
        ++tally.missed_kills;
        tally.note(round + ": no end of the object was left by a dead holder");
    }
    try {
        Receiver receiver = Receiver::open(address, Deadline::after(10s));
        test::Child sender = test::spawn([&] {
            Sender tx = Sender::open(address, Deadline::after(10s));
            return tx.send(test::numbered_message(kFreshMark, 100), Deadline::after(10s)).ok() ? 0 : 1;
        });
        std::vector<std::byte> message;
        bool carried = false;
        for (int taken = 0; !carried && taken < 1'000'000; ++taken) {
            const IoResult r = receiver.recv(message, Deadline::after(kHangLimit));
            if (!r.ok()) {
                ++tally.hangs;
                tally.note(round + ": the fresh receiver's recv ended with status " +
                           std::to_string(static_cast<int>(r.status)));
                break;
            }
            carried = test::whole_message_sequence(message) == kFreshMark;
        }
        // Lanes: what a dead sender left in another lane may come after the mark. Take it all,
        // so the next round's receiver starts on an empty region.
        while (carried && receiver.recv(message, Deadline::immediate()).ok()) {
        }
        if (sender.wait(30s) != 0) tally.note(round + ": the fresh sender failed");
        // Both fresh ends are attached now (the sender's message arrived): compare.
        const std::vector<Snapshot> after = snapshot(witness);
        for (std::size_t i = 0; i < before.size(); ++i) {
            if ((before[i].holder & layout::kHolderOwnerDied) == 0) continue;
            if (after[i].epoch != before[i].epoch && (after[i].holder & layout::kHolderOwnerDied) == 0) {
                ++tally.takeovers;
            } else if (witness.ends().size() == 2) {
                // A ring's two ends are both taken by the fresh pair; a lanes sender takes one lane.
                ++tally.not_taken_over;
                tally.note(round + ": end " + std::to_string(i) + " of a dead holder was not taken over");
            }
        }
    } catch (const Error& e) {
        ++tally.hangs;
        tally.note(round + ": " + e.what());
    }
}

struct RingCase {
    std::string name;
    bool sysv;
    std::uint32_t lanes;  // 0: a 1:1 ring
};

void PrintTo(const RingCase& c, std::ostream* out) {
    *out << c.name;
}

class FaultsTakeoverTest : public ::testing::TestWithParam<RingCase> {};

TEST_P(FaultsTakeoverTest, CrashAfterCrashOnOneAddressIsTakenOverAsGoodAsNew) {
    const RingCase& c = GetParam();
    const char* env = std::getenv("IPCKIT_TAKEOVER_ROUNDS");
    const int rounds = std::max(10, env != nullptr ? std::atoi(env) : 12);
    const std::string target =
        c.sysv ? test::hex_key(test::random_sysv_key()) : "/" + test::unique_name("ipckit-takeover");
    std::string options = "?capacity=64KiB";
    if (c.lanes != 0) options += "&senders=" + std::to_string(c.lanes);
    const std::string address = (c.sysv ? "sysvshm:" : "shm:") + target + options;
    // The object outlives its creator (keep=1), so every pair after it opens the same one.
    { Receiver creator = Receiver::create(address + "&keep=1"); }
    Tally tally;
    {
        const Witness witness(target, c.sysv, c.lanes);
        auto region = Mapping::anonymous_shared(4096);
        auto& progress = *::new (region.bytes().data()) Progress{};
        for (; tally.rounds < rounds; ++tally.rounds) {
            const Kill kill = static_cast<Kill>(tally.rounds % 3);
            killed_round(address, kill, progress, tally);
            fresh_pair(address, witness, kill, tally);
            if (witness.identity() != Witness(target, c.sysv, c.lanes).identity()) ++tally.other_object;
        }
    }
    (void)remove_object(c.sysv ? "sysvshm:" + target : "shm:" + target);
    std::printf(
        "faults: transport=%s rounds=%d takeovers=%d kills=%d messages=%llu lost_after_commit=%d torn=%d "
        "hangs=%d\n",
        c.name.c_str(), tally.rounds, tally.takeovers, tally.kills,
        static_cast<unsigned long long>(tally.messages), tally.lost, tally.torn_or_duplicated, tally.hangs);
    std::fflush(stdout);
    std::string notes;
    for (const auto& n : tally.notes)
        notes += "\n  " + n;
    EXPECT_EQ(tally.hangs, 0) << notes;
    EXPECT_EQ(tally.lost, 0) << notes;
    EXPECT_EQ(tally.torn_or_duplicated, 0) << notes;
    EXPECT_EQ(tally.missed_kills, 0) << notes;
    EXPECT_EQ(tally.not_taken_over, 0) << notes;
    EXPECT_EQ(tally.other_object, 0) << notes;
    EXPECT_GE(tally.takeovers, tally.rounds) << notes;  // at least one dead end taken per round
    EXPECT_GT(tally.messages, 0u);
}

INSTANTIATE_TEST_SUITE_P(Rings, FaultsTakeoverTest,
                         ::testing::Values(RingCase{"shm", false, 0}, RingCase{"sysvshm", true, 0},
                                           RingCase{"shm_lanes", false, 2}),
                         [](const auto& test_info) { return test_info.param.name; });

// ---- shm:@NAME: the memory is handed out by whoever holds it ----------------------------------

// The memfd of a shm:@ ring travels over the abstract socket of the process that serves it; when
// that process dies, a surviving holder binds the name and serves in its place. Round after
// round one end is killed (the receiver or the sender, the server or not: receiver, sender,
// sender again, in turn) and a fresh end of the same role must open the ring through the
// survivor, take the dead end over and carry a message. Proof that it is the same memory: the
// memfd's inode in every live holder's /proc/PID/maps never changes.
struct Relay {
    std::atomic<std::uint64_t> request;  // the test asks the sender to send this number
    std::atomic<std::uint64_t> got;      // the last number the receiver took
    std::atomic<int> stop;
};

int relay_receiver(const std::string& address, Relay& relay, bool create) {
    std::optional<Receiver> receiver;
    receiver.emplace(create ? Receiver::create(address) : Receiver::open(address, Deadline::after(10s)));
    std::vector<std::byte> message;
    while (relay.stop.load() == 0) {
        // `closed` when its sender died: the next sender takes that end over, and it goes on.
        const IoResult r = receiver->recv(message, Deadline::after(100ms));
        if (r.ok()) {
            if (const auto sequence = test::whole_message_sequence(message)) relay.got.store(*sequence);
        } else if (r.status == Status::closed) {
            std::this_thread::sleep_for(1ms);
        }
    }
    return 0;
}

int relay_sender(const std::string& address, Relay& relay) {
    Sender sender = Sender::open(address, Deadline::after(10s));
    std::uint64_t sent = 0;
    while (relay.stop.load() == 0) {
        const std::uint64_t wanted = relay.request.load();
        if (wanted == sent) {
            std::this_thread::sleep_for(1ms);
            continue;
        }
        const IoResult r = sender.send(test::numbered_message(wanted, 64), Deadline::after(kHangLimit));
        if (r.ok()) sent = wanted;
        // `closed`: its receiver died; the next receiver takes that end over, and it sends again.
    }
    return 0;
}

// The inode of the memfd named `name` in process `pid`'s mappings, 0 if none.
std::uint64_t memfd_inode(pid_t pid, const std::string& name) {
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    for (std::string line; std::getline(maps, line);) {
        if (line.find("memfd:") == std::string::npos || line.find(name) == std::string::npos) continue;
        std::istringstream fields(line);
        std::string range, perms, offset, device;
        std::uint64_t inode = 0;
        fields >> range >> perms >> offset >> device >> inode;
        return inode;
    }
    return 0;
}

TEST(FaultsTakeoverTest, AnAbstractRingOutlivesWhoeverServesItRoundAfterRound) {
    const char* env = std::getenv("IPCKIT_TAKEOVER_ROUNDS");
    const int rounds = std::max(10, env != nullptr ? std::atoi(env) : 12);
    const std::string name = test::unique_name("ipckit-takeover");
    const std::string address = "shm:@" + name + "?capacity=64KiB";
    auto region = Mapping::anonymous_shared(4096);
    auto& relay = *::new (region.bytes().data()) Relay{};
    test::Child receiver = test::spawn([&] { return relay_receiver(address, relay, true); });
    test::Child sender = test::spawn([&] { return relay_sender(address, relay); });
    std::uint64_t number = 0;
    // A message through the live pair: the request, then its arrival (bounded: else a hang).
    const auto carried = [&] {
        relay.request.store(++number);
        for (int i = 0; i < 10'000 && relay.got.load() != number; ++i)
            std::this_thread::sleep_for(1ms);
        return relay.got.load() == number;
    };
    ASSERT_TRUE(carried()) << "the first pair carried nothing";
    const std::uint64_t inode = memfd_inode(receiver.pid(), name);
    ASSERT_NE(inode, 0u) << "no memfd of " << name << " in the receiver's mappings";
    int takeovers = 0, hangs = 0, other_memory = 0;
    std::string notes;
    for (int round = 0; round < rounds; ++round) {
        const bool kill_receiver = round % 3 == 0;
        test::Child& victim = kill_receiver ? receiver : sender;
        victim.kill(SIGKILL);
        if (victim.wait(30s) != -SIGKILL) notes += "\n  round " + std::to_string(round) + ": the kill missed";
        if (kill_receiver) {
            receiver = test::spawn([&] { return relay_receiver(address, relay, false); });
        } else {
            sender = test::spawn([&] { return relay_sender(address, relay); });
        }
        if (carried()) {
            ++takeovers;
        } else {
            ++hangs;
            notes += "\n  round " + std::to_string(round) + ": the fresh " +
                     (kill_receiver ? "receiver" : "sender") + " carried nothing";
        }
        for (const pid_t pid : {receiver.pid(), sender.pid()}) {
            if (memfd_inode(pid, name) != inode) {
                ++other_memory;
                notes += "\n  round " + std::to_string(round) + ": a holder maps other memory";
            }
        }
    }
    relay.stop.store(1);
    EXPECT_EQ(receiver.wait(30s), 0);
    EXPECT_EQ(sender.wait(30s), 0);
    std::printf("faults: transport=shm_abstract rounds=%d takeovers=%d kills=%d messages=%llu hangs=%d\n",
                rounds, takeovers, rounds, static_cast<unsigned long long>(takeovers + 1), hangs);
    std::fflush(stdout);
    EXPECT_EQ(hangs, 0) << notes;
    EXPECT_EQ(other_memory, 0) << notes;
    EXPECT_EQ(takeovers, rounds) << notes;
    // Every holder is gone: so is the name (nobody serves it) and the memory with it.
    EXPECT_THROW((void)Receiver::open(address, Deadline::immediate()), Error);
}

}  // namespace
}  // namespace ipckit
