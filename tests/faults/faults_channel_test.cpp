// Fault injection over every transport: a peer is killed with SIGKILL at a random point of a
// stream of numbered, checksummed messages, many times, and the survivor is checked.
//
// Sender killed (the receiver survives): every wait of the receiver is bounded; a wait that
// ends timed_out where the transport promises `closed` is a hang (unix+dgram promises nothing
// — a datagram socket cannot see its sender die — so there the end of the wait is counted as
// `deadline_ends`, its documented behaviour). Every message received must be whole, in order
// and not a duplicate. A message is *committed* once the sender's send returned ok: the sender
// then writes its number to a MAP_SHARED counter, so the counter never runs ahead of what was
// committed. A committed message the receiver never got before the stream ended is
// `lost_after_commit` (on stream transports the kernel still holds such bytes after the sender
// dies, and must deliver them); so is a number skipped in the middle of the stream. Messages
// in flight when the sender died (sent, not yet acknowledged) may be lost: the gap at the end.
// Afterwards the channel is created again at the same address and carries a message.
//
// Holders killed: a receiver that created the channel and the sender that opened it are both
// killed mid-stream, leaving whatever a crash leaves (a ring with dead ends claimed, a queue
// with messages, a FIFO or socket file).
//
// Reused: after every kill of every kind, a fresh pair reaches the same address as `ipckit
// send`/`recv` do (create, or open what is there) without `ipckit rm`, takes what the dead
// pair left (waiting_at_open) and carries a new message: `reused=K/K`. Only then is what no
// living process owns removed, as the test's own cleanup.
//
// Receiver killed (the sender survives, mostly blocked on a full channel): the sender must get
// `closed` or an error, never a timeout.
//
// Each transport prints one line:
//   faults: transport=T kills=K messages=N lost_after_commit=0 torn=0 duplicated=0 hangs=0 reused=K/K
// IPCKIT_FAULT_KILLS=N changes the number of sender kills per transport (receiver kills are a
// third of it); IPCKIT_FAULT_SEED=S replays a run (each failure prints its seed).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/objects.hpp"
#include "ipckit/pipe.hpp"
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

// Far longer than any transport takes to notice a dead peer (20–50 ms): a wait this long is a
// hang, not a slow notice.
constexpr auto kHangLimit = 3s;
// unix+dgram: how long the receiver waits for the next datagram before it stops listening.
constexpr auto kDatagramQuiet = 300ms;
// After this many hangs in one direction the remaining rounds are skipped (each costs kHangLimit).
constexpr int kHangsBeforeGivingUp = 2;
// The sender never reaches this: it is killed first.
constexpr std::uint64_t kStreamLength = 1'000'000;

int env_int(const char* name, int fallback) {
    const char* text = std::getenv(name);
    return text != nullptr && *text != '\0' ? std::atoi(text) : fallback;
}

// Written by the child, read by the test process and its killer thread.
struct Progress {
    std::atomic<std::uint64_t> acknowledged;  // sender: sends that returned ok
    std::atomic<std::uint64_t> received;      // receiver: messages taken
    std::atomic<pid_t> victim;                // the process to kill, once it exists
};

struct Tally {
    int kills = 0;
    std::uint64_t messages = 0;
    std::uint64_t lost_after_commit = 0;
    std::uint64_t torn = 0;
    std::uint64_t duplicated = 0;
    int hangs = 0;
    int deadline_ends = 0;  // unix+dgram: the receiver stopped at its deadline, as documented
    int errors = 0;         // an ipckit::Error ended the survivor's stream (allowed for a sender)
    int recreate_failures = 0;
    int reuse_tries = 0;  // kills after which the address was reached again by a fresh pair
    int reused = 0;       // ... and carried a message
    // Holders killed: from the SIGKILL of the receiver to the first message the fresh pair
    // took (printed, never asserted: a measurement, see docs/reliability.md).
    std::optional<std::chrono::steady_clock::time_point> killed_at;
    std::vector<double> takeover_ms;
    int crashes = 0;  // the surviving process died (e.g. of SIGPIPE) or misbehaved
    std::vector<std::string> notes;

    void note(std::string text) {
        if (notes.size() < 20) notes.push_back(std::move(text));
    }
};

// Sizes: mostly small, some up to 32 KiB (or the channel's limit), so kills land inside large
// writes too (a pipe or socket buffer holds only a few of them).
std::size_t random_payload(std::mt19937_64& rng, std::size_t limit) {
    const std::size_t cap = std::min<std::size_t>(limit - test::kNumberedHeader, 32 << 10);
    return rng() % 10 < 6 ? rng() % 257 : rng() % (cap + 1);
}

// Kills the victim once `counter` reaches `target`, plus a random few hundred microseconds (so
// the kill lands anywhere: inside a send, between two, while blocked on a full channel).
class Killer {
public:
    Killer(const std::atomic<pid_t>& victim, const std::atomic<std::uint64_t>& counter, std::uint64_t target,
           unsigned jitter_us)
        : thread_([this, &victim, &counter, target, jitter_us] {
              const auto give_up = std::chrono::steady_clock::now() + 10s;
              while (counter.load(std::memory_order_acquire) < target || victim.load() <= 0) {
                  if (std::chrono::steady_clock::now() > give_up) {
                      reached_ = false;
                      break;
                  }
                  std::this_thread::sleep_for(50us);
              }
              std::this_thread::sleep_for(std::chrono::microseconds(jitter_us));
              if (victim.load() > 0) ::kill(victim.load(), SIGKILL);
              done_.store(true, std::memory_order_release);
          }) {}
    Killer(const Killer&) = delete;
    Killer& operator=(const Killer&) = delete;
    ~Killer() { join(); }
    void join() {
        if (thread_.joinable()) thread_.join();
    }
    [[nodiscard]] bool done() const { return done_.load(std::memory_order_acquire); }
    // False when the counter never reached the target (the child failed before): killed anyway.
    [[nodiscard]] bool reached() {
        join();
        return reached_;
    }

private:
    std::atomic<bool> done_{false};
    bool reached_ = true;
    std::thread thread_;  // last: starts once the flags above exist
};

// How a round reaches the channel: by address, or by an inherited pipe (fd:).
struct Endpoints {
    std::string address;  // empty: fd: over a fresh pipe per round
    bool connectionless = false;
    bool broadcast = false;  // a topic: the publisher outlives its subscribers, never `closed`
    // Another address of the same transport: receiver-killed rounds use one each, so that
    // what a crashed survivor leaves behind cannot spoil the next round.
    std::function<std::string()> fresh;
};

// ---- sender killed --------------------------------------------------------------------------

int run_sender(Sender& sender, Progress& progress, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const std::size_t limit = sender.max_message_size();
    for (std::uint64_t sequence = 0; sequence < kStreamLength; ++sequence) {
        const auto message = test::numbered_message(sequence, random_payload(rng, limit));
        const IoResult r = sender.send(message, Deadline::after(30s));
        if (!r.ok()) {
            return 10 + static_cast<int>(r.status);
        }
        // release: the count is published only after the send returned ok.
        progress.acknowledged.store(sequence + 1, std::memory_order_release);
    }
    for (;;)
        ::pause();
}

void sender_killed_round(const Endpoints& where, Progress& progress, std::mt19937_64& rng, Tally& tally) {
    progress.acknowledged.store(0);
    const std::uint64_t child_seed = rng();
    std::optional<Receiver> receiver;
    test::Child child;
    if (where.address.empty()) {
        Pipe pipe = Pipe::create();
        const int write_fd = pipe.writer.fd().get();
        child = test::spawn([&] {
            pipe.reader.close();
            Sender sender = Sender::open("fd:" + std::to_string(write_fd));
            return run_sender(sender, progress, child_seed);
        });
        pipe.writer.close();  // else the pipe never reaches end of file
        receiver.emplace(Receiver::open("fd:" + std::to_string(pipe.reader.release().release())));
    } else {
        receiver.emplace(Receiver::create(where.address));
        child = test::spawn([&] {
            Sender sender = Sender::open(where.address, Deadline::after(10s));
            return run_sender(sender, progress, child_seed);
        });
    }
    // The kill lands after the first committed message: a queue receiver cannot know of a
    // sender that never sent anything (no connection), so that case says nothing.
    const std::uint64_t target = 1 + rng() % 400;
    progress.victim.store(child.pid());
    Killer killer(progress.victim, progress.acknowledged, target, static_cast<unsigned>(rng() % 500));
    ++tally.kills;

    test::SequenceCheck check;
    std::vector<std::byte> message;
    for (;;) {
        IoResult r{};
        try {
            r = receiver->recv(message, Deadline::after(where.connectionless ? kDatagramQuiet : kHangLimit));
        } catch (const Error& e) {
            // A stream whose writer died inside a frame ends with an error saying so: that is
            // the honest outcome, not a torn message (nothing partial was delivered).
            if (e.code() == std::errc::bad_message &&
                std::string_view(e.what()).find("ended inside a frame") != std::string_view::npos) {
                break;
            }
            ++tally.torn;  // a corrupt frame reached the reader
            tally.note(std::string("sender killed: recv threw: ") + e.what());
            break;
        }
        if (r.ok()) {
            check.take(message);
            continue;
        }
        if (r.status == Status::closed) break;
        if (where.connectionless) {
            if (!killer.done()) continue;  // the sender may still be alive and sending
            ++tally.deadline_ends;
            break;
        }
        ++tally.hangs;
        tally.note("sender killed: recv ended " +
                   std::string(r.status == Status::timed_out ? "timed_out" : "?") + " after " +
                   std::to_string(check.next) + " messages; " + std::to_string(progress.acknowledged.load()) +
                   " acknowledged");
        break;
    }
    if (!killer.reached()) tally.note("the sender never acknowledged message " + std::to_string(target));
    const int status = child.wait(30s);
    if (status != -SIGKILL) {
        ++tally.crashes;
        tally.note("the sender ended with " + std::to_string(status) + " before it was killed");
    }
    const std::uint64_t acknowledged = progress.acknowledged.load(std::memory_order_acquire);
    tally.messages += check.received;
    tally.torn += check.torn;
    tally.duplicated += check.duplicated;
    tally.lost_after_commit += check.skipped + (acknowledged > check.next ? acknowledged - check.next : 0);
    if (acknowledged > check.next) {
        tally.note("sender killed: " + std::to_string(acknowledged) + " sends returned ok, " +
                   std::to_string(check.next) + " messages arrived");
    }
}

// ---- receiver killed ------------------------------------------------------------------------

int run_receiver(Receiver& receiver, Progress& progress, std::uint64_t stop_after) {
    test::SequenceCheck check;
    std::vector<std::byte> message;
    while (check.received < stop_after) {
        const IoResult r = receiver.recv(message, Deadline::after(30s));
        if (!r.ok()) return 10 + static_cast<int>(r.status);
        check.take(message);
        if (check.torn + check.duplicated + check.skipped != 0) return 3;
        progress.received.store(check.received, std::memory_order_release);
    }
    for (;;)  // stops reading: the sender fills the channel and blocks
        ::pause();
}

// How the surviving sender's process ended (its exit code).
enum SurvivorOutcome { kSawClosed = 0, kHung = 1, kGotError = 2, kReceiverMisbehaved = 3 };

// The survivor: opens the sending side, starts the receiver (which the test kills), and sends
// until the channel says `closed`. It runs in its own process so that a crash of the
// surviving side (a signal it should never get, such as SIGPIPE) is counted, not fatal.
int survive_receiver_kill(const Endpoints& where, const std::string& address, Progress& progress,
                          std::uint64_t seed, std::uint64_t stop_after) {
    std::optional<Sender> sender;
    test::Child receiver;
    if (where.address.empty()) {
        Pipe pipe = Pipe::create();
        const int read_fd = pipe.reader.fd().get();
        receiver = test::spawn([&] {
            pipe.writer.close();
            Receiver r = Receiver::open("fd:" + std::to_string(read_fd));
            return run_receiver(r, progress, stop_after);
        });
        pipe.reader.close();  // else writing never fails
        sender.emplace(Sender::open("fd:" + std::to_string(pipe.writer.release().release())));
    } else if (where.connectionless || where.broadcast) {
        // A topic's subscriber sees only what follows its join: it must be there first.
        receiver = test::spawn([&] {
            Receiver r = Receiver::create(address);
            return run_receiver(r, progress, stop_after);
        });
        sender.emplace(Sender::open(address, Deadline::after(10s)));
    } else {
        sender.emplace(Sender::create(address));
        receiver = test::spawn([&] {
            Receiver r = Receiver::open(address, Deadline::after(10s));
            return run_receiver(r, progress, stop_after);
        });
    }
    progress.victim.store(receiver.pid());

    std::mt19937_64 sizes(seed);
    const std::size_t limit = sender->max_message_size();
    int outcome = kSawClosed;
    // A topic's publisher is never told its subscriber died: what it must do is go on, never
    // stalled by the dead one beyond one liveness check. It sends this many more after the death.
    constexpr std::uint64_t kAfterDeath = 200;
    std::uint64_t death_seen_at = ~std::uint64_t{0};
    for (std::uint64_t sequence = 0; sequence < kStreamLength; ++sequence) {
        if (where.broadcast && death_seen_at == ~std::uint64_t{0}) {
            siginfo_t info{};
            // WNOWAIT: look without reaping, so the wait below still sees how it ended.
            if (::waitid(P_PID, static_cast<id_t>(receiver.pid()), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                info.si_pid != 0) {
                death_seen_at = sequence;
            }
        }
        if (sequence == death_seen_at + kAfterDeath) break;  // kSawClosed: it went on
        IoResult r{};
        try {
            r = sender->send(test::numbered_message(sequence, random_payload(sizes, limit)),
                             Deadline::after(kHangLimit));
        } catch (const Error& e) {
            std::fprintf(stderr, "receiver killed: send threw: %s\n", e.what());
            outcome = kGotError;  // an error that names the failing call: allowed, not a hang
            break;
        }
        if (r.ok()) continue;
        if (r.status == Status::closed) break;
        std::fprintf(stderr,
                     "receiver killed: send ended timed_out at message %llu (the receiver took %llu)\n",
                     static_cast<unsigned long long>(sequence),
                     static_cast<unsigned long long>(progress.received.load()));
        outcome = kHung;
        break;
    }
    if (receiver.wait(30s) != -SIGKILL && outcome == kSawClosed) outcome = kReceiverMisbehaved;
    return outcome;
}

std::string receiver_killed_round(const Endpoints& where, Progress& progress, std::mt19937_64& rng,
                                  Tally& tally) {
    progress.received.store(0);
    progress.victim.store(0);
    const std::uint64_t stop_after = 1 + rng() % 50;
    const std::uint64_t seed = rng();
    // A fresh address each round: a killed datagram receiver (it binds the name) leaves its
    // socket file behind, as does a survivor that crashes (both are what ipckit rm removes).
    const std::string address = where.fresh ? where.fresh() : std::string();
    auto survivor =
        test::spawn([&] { return survive_receiver_kill(where, address, progress, seed, stop_after); });
    Killer killer(progress.victim, progress.received, stop_after, static_cast<unsigned>(rng() % 2000));
    ++tally.kills;
    const int status = survivor.wait(60s);
    if (!killer.reached()) tally.note("the receiver never took " + std::to_string(stop_after) + " messages");
    if (where.broadcast) {
        // The killed subscriber created the topic, so nobody removed its shared memory: as ipckit rm.
        const auto name = address.substr(address.find(':') + 1, address.find('?') - address.find(':') - 1);
        try {
            (void)remove_object("shm:" + name);
        } catch (const Error&) {
        }
    }
    switch (status) {
        case kSawClosed:
            break;
        case kHung:
            ++tally.hangs;
            tally.note("receiver killed: the sender's wait ended timed_out, not closed");
            break;
        case kGotError:
            ++tally.errors;
            break;
        default:
            ++tally.crashes;
            tally.note("receiver killed: the surviving sender ended with " + std::to_string(status) +
                       (status == -SIGPIPE ? " (killed by SIGPIPE)" : ""));
            // A crashed creator leaves its object behind: remove it as `ipckit rm` would.
            if (!address.empty()) {
                try {
                    (void)remove_object(address);
                } catch (const Error&) {
                }
            }
    }
    return address;
}

// ---- holders killed -------------------------------------------------------------------------

// The creator (a receiver) and the opener (a sender) both die by SIGKILL mid-stream.
void holders_killed_round(const std::string& address, Progress& progress, std::mt19937_64& rng,
                          Tally& tally) {
    progress.received.store(0);
    progress.victim.store(0);
    const std::uint64_t stop_after = 1 + rng() % 50;
    const std::uint64_t seed = rng();
    auto receiver = test::spawn([&] {
        Receiver r = Receiver::create(address);
        progress.victim.store(::getpid());  // created: a queue's sender may open it now
        test::SequenceCheck check;
        std::vector<std::byte> message;
        for (;;) {
            if (!r.recv(message, Deadline::after(30s)).ok()) return 10;
            check.take(message);
            progress.received.store(check.received, std::memory_order_release);
        }
    });
    for (int i = 0; i < 10'000 && progress.victim.load() == 0; ++i)
        std::this_thread::sleep_for(1ms);
    auto sender = test::spawn([&] {
        Sender tx = Sender::open(address, Deadline::after(10s));
        return run_sender(tx, progress, seed);
    });
    {
        Killer killer(progress.victim, progress.received, stop_after, static_cast<unsigned>(rng() % 500));
        if (!killer.reached())
            tally.note("holders killed: the receiver never took " + std::to_string(stop_after));
    }
    tally.killed_at = std::chrono::steady_clock::now();  // the receiver died just now
    sender.kill(SIGKILL);
    ++tally.kills;
    if (receiver.wait(30s) != -SIGKILL) tally.note("holders killed: the receiver ended before it was killed");
    if (sender.wait(30s) != -SIGKILL) tally.note("holders killed: the sender ended before it was killed");
}

// ---- reused after a kill --------------------------------------------------------------------

constexpr std::uint64_t kReuseMark = 900'000'000;

bool already_exists(const Error& e) {
    return e.code() == std::errc::file_exists || e.code() == std::errc::address_in_use;
}

// A fresh pair at `address`, reached as the tool reaches it: what the dead left is taken over
// or drained, never removed first; then a new message arrives.
bool reused(const std::string& address, Tally& tally) {
    ++tally.reuse_tries;
    bool carried = false;
    bool created = false;
    try {
        std::optional<Receiver> receiver;
        try {
            receiver.emplace(Receiver::create(address));
            created = true;
        } catch (const Error& e) {
            if (!already_exists(e)) throw;
            receiver.emplace(Receiver::open(address, Deadline::after(10s)));
        }
        auto child = test::spawn([&] {
            Sender sender = Sender::open(address, Deadline::after(10s));
            if (!sender.send(test::numbered_message(kReuseMark, 100), Deadline::after(10s)).ok()) return 1;
            for (;;)  // stays until the test has the message, then is killed
                ::pause();
        });
        std::vector<std::byte> message;
        const Deadline patience = Deadline::after(10s);
        // What the dead pair left comes first (a kept queue's messages, a ring's records).
        for (std::uint64_t taken = 0; !carried && taken <= receiver->waiting_at_open() + 1'000'000; ++taken) {
            const IoResult r = receiver->recv(message, patience);
            // `closed` before the fresh sender is there is the dead one's end (its messages
            // drained, its process gone): the fresh one is still coming.
            if (r.status == Status::closed && !patience.expired()) {
                std::this_thread::sleep_for(2ms);
                continue;
            }
            if (!r.ok()) {
                tally.note("reused " + address + ": recv ended with status " +
                           std::to_string(static_cast<int>(r.status)));
                break;
            }
            if (tally.killed_at) {
                const std::chrono::duration<double, std::milli> took =
                    std::chrono::steady_clock::now() - *tally.killed_at;
                tally.takeover_ms.push_back(took.count());
                tally.killed_at.reset();
            }
            carried = test::whole_message_sequence(message) == kReuseMark;
        }
        child.kill(SIGKILL);
        (void)child.wait(10s);
    } catch (const Error& e) {
        tally.note("reused " + address + ": " + e.what());
    }
    tally.killed_at.reset();
    if (!created) {
        // Opened what a dead creator left: nobody alive owns it now. The test's cleanup.
        try {
            (void)remove_object(address);
        } catch (const Error&) {
        }
    }
    if (carried) ++tally.reused;
    return carried;
}

// ---- created again --------------------------------------------------------------------------

// A new receiver at the same address, a new sender, one message.
bool created_again(const std::string& address, Tally& tally) {
    try {
        Receiver receiver = Receiver::create(address);
        auto child = test::spawn([&] {
            Sender sender = Sender::open(address, Deadline::after(10s));
            if (!sender.send(test::numbered_message(0, 100), Deadline::after(10s)).ok()) return 1;
            for (;;)  // stays connected until the test has the message, then is killed
                ::pause();
        });
        std::vector<std::byte> message;
        const IoResult r = receiver.recv(message, Deadline::after(10s));
        child.kill(SIGKILL);
        (void)child.wait(10s);
        if (r.ok() && test::whole_message_sequence(message) == 0u) return true;
        tally.note("created again: recv ended with status " + std::to_string(static_cast<int>(r.status)));
    } catch (const Error& e) {
        tally.note(std::string("created again: ") + e.what());
    }
    return false;
}

// ---- the suite ------------------------------------------------------------------------------

void run_faults(const std::string& name, const Endpoints& where) {
    const int sender_kills = std::max(1, env_int("IPCKIT_FAULT_KILLS", 30));
    const int receiver_kills = std::max(1, sender_kills / 3);
    const std::uint64_t seed = static_cast<std::uint64_t>(
        env_int("IPCKIT_FAULT_SEED", static_cast<int>(std::random_device{}() >> 1)));
    SCOPED_TRACE("transport " + name + ", seed " + std::to_string(seed) + " (IPCKIT_FAULT_SEED)");
    std::mt19937_64 rng(seed);
    auto region = Mapping::anonymous_shared(4096);
    auto& progress = *::new (region.bytes().data()) Progress{};

    Tally tally;
    int hangs_before = 0;
    const bool addressed = !where.address.empty();  // fd: has no address to reach again
    for (int round = 0; round < sender_kills && tally.hangs - hangs_before < kHangsBeforeGivingUp; ++round) {
        sender_killed_round(where, progress, rng, tally);
        if (addressed) (void)reused(where.address, tally);
    }
    if (tally.hangs >= kHangsBeforeGivingUp) tally.note("sender-killed rounds stopped after repeated hangs");
    hangs_before = tally.hangs;
    for (int round = 0; round < receiver_kills && tally.hangs - hangs_before < kHangsBeforeGivingUp;
         ++round) {
        const std::string address = receiver_killed_round(where, progress, rng, tally);
        if (addressed && !address.empty()) (void)reused(address, tally);
    }
    if (tally.hangs - hangs_before >= kHangsBeforeGivingUp)
        tally.note("receiver-killed rounds stopped after repeated hangs");
    // unix+dgram: a sender cannot tell a receiver's death, so the creator-dies case says
    // nothing there that the rounds above did not.
    if (addressed && !where.connectionless) {
        for (int round = 0; round < std::max(1, sender_kills / 6); ++round) {
            const std::string address = where.fresh();
            holders_killed_round(address, progress, rng, tally);
            (void)reused(address, tally);
        }
    }
    // fd: has no address to create again; every round already made a new pipe.
    if (!where.address.empty() && !created_again(where.address, tally)) ++tally.recreate_failures;

    std::printf(
        "faults: transport=%s kills=%d messages=%llu lost_after_commit=%llu torn=%llu duplicated=%llu "
        "hangs=%d reused=%d/%d\n",
        name.c_str(), tally.kills, static_cast<unsigned long long>(tally.messages),
        static_cast<unsigned long long>(tally.lost_after_commit), static_cast<unsigned long long>(tally.torn),
        static_cast<unsigned long long>(tally.duplicated), tally.hangs, tally.reused, tally.reuse_tries);
    if (!tally.takeover_ms.empty()) {
        auto& ms = tally.takeover_ms;
        std::sort(ms.begin(), ms.end());
        std::printf("faults: transport=%s holders_killed=%zu kill_to_first_message_ms median=%.1f max=%.1f\n",
                    name.c_str(), ms.size(), ms[ms.size() / 2], ms.back());
    }
    if (where.connectionless || tally.errors != 0 || tally.crashes != 0) {
        std::printf("faults: transport=%s deadline_ends=%d errors=%d crashes=%d\n", name.c_str(),
                    tally.deadline_ends, tally.errors, tally.crashes);
    }
    std::fflush(stdout);

    std::ostringstream notes;
    for (const auto& n : tally.notes)
        notes << "\n  " << n;
    EXPECT_EQ(tally.lost_after_commit, 0u) << notes.str();
    EXPECT_EQ(tally.torn, 0u) << notes.str();
    EXPECT_EQ(tally.duplicated, 0u) << notes.str();
    EXPECT_EQ(tally.hangs, 0) << notes.str();
    EXPECT_EQ(tally.recreate_failures, 0) << notes.str();
    EXPECT_EQ(tally.reused, tally.reuse_tries) << notes.str();
    EXPECT_EQ(tally.crashes, 0) << notes.str();
    EXPECT_GT(tally.messages, 0u);
}

class FaultsChannelTest : public ::testing::TestWithParam<test::TransportCase> {};

TEST_P(FaultsChannelTest, PeerKilledAtRandomPointsLeavesAWholeOrderedStreamAndNoHang) {
    test::TempDir dir;
    const auto& transport = GetParam();
    std::vector<std::unique_ptr<test::TempDir>> round_dirs;  // a new path for path transports
    const auto fresh = [&] {
        return transport.address(*round_dirs.emplace_back(std::make_unique<test::TempDir>()));
    };
    run_faults(transport.name,
               Endpoints{transport.address(dir), transport.connectionless, transport.broadcast, fresh});
}

INSTANTIATE_TEST_SUITE_P(Transports, FaultsChannelTest, ::testing::ValuesIn(test::all_transports()),
                         [](const auto& test_info) { return test_info.param.name; });

TEST(FaultsChannelFdTest, PeerKilledAtRandomPointsLeavesAWholeOrderedStreamAndNoHang) {
    run_faults("fd_pipe", Endpoints{});
}

}  // namespace
}  // namespace ipckit
