// Claiming, releasing, taking over and watching an EndpointLine across real processes: the
// protocol every ring kind of layout version 3 records its ends with, and the keeper thread whose
// robust futex list the kernel walks at a death (src/rings/keeper.cpp): fork, exec, threads,
// PID namespaces.
#include "ipckit/detail/endpoint.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sched.h>

#include <chrono>
#include <new>
#include <string>
#include <thread>

#include "ipckit/error.hpp"
#include "sync/futex.hpp"

namespace ipckit::detail::ring {
namespace {

using namespace std::chrono_literals;

// `count` EndpointLines in MAP_SHARED memory, seen by every child forked after them. An end must
// be released before its mapping goes (the keeper's list links it): the destructor does.
class SharedLine {
public:
    explicit SharedLine(std::size_t count = 1) : count_(count) {
        void* p = ::mmap(nullptr, count * sizeof(EndpointLine), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw_errno("mmap", "endpoint line");
        line_ = static_cast<EndpointLine*>(p);
        for (std::size_t i = 0; i < count; ++i)
            ::new (line_ + i) EndpointLine{};
    }
    ~SharedLine() {
        for (std::size_t i = 0; i < count_; ++i)
            release_endpoint(line_[i], OwnerWord::unpack(line_[i].owner.load()).epoch);
        ::munmap(line_, count_ * sizeof(EndpointLine));
    }
    SharedLine(const SharedLine&) = delete;
    SharedLine& operator=(const SharedLine&) = delete;
    EndpointLine& operator*() const { return *line_; }
    EndpointLine* get() const { return line_; }
    EndpointLine* operator->() const { return line_; }
    EndpointLine& operator[](std::size_t i) const { return line_[i]; }

private:
    std::size_t count_;
    EndpointLine* line_;
};

// A child that claims the line, tells the parent over a pipe, and waits to be killed.
pid_t fork_holder(EndpointLine& line) {
    int ready[2];
    if (::pipe(ready) != 0) throw_errno("pipe", "holder");
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(ready[0]);
        (void)claim_endpoint(line, "test end");
        const char byte = 1;
        (void)!::write(ready[1], &byte, 1);
        ::pause();
        ::_exit(0);
    }
    ::close(ready[1]);
    char byte = 0;
    EXPECT_EQ(::read(ready[0], &byte, 1), 1);
    ::close(ready[0]);
    return pid;
}

void kill_and_reap(pid_t pid) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
}

TEST(EndpointTest, VacantLineIsClaimedFresh) {
    SharedLine line;
    const Claim claim = claim_endpoint(*line, "test end");
    EXPECT_FALSE(claim.took_over);
    EXPECT_EQ(claim.epoch, 1u);
    const auto owner = OwnerWord::unpack(line->owner.load());
    EXPECT_EQ(owner.state, EndpointState::attached);
    EXPECT_EQ(owner.pid, static_cast<std::uint32_t>(::getpid()));
    EXPECT_EQ(line->start_ticks.load(), ProcessRef::self().start_ticks);
}

TEST(EndpointTest, LiveHolderIsRefusedWithItsPid) {
    SharedLine line;
    const pid_t holder = fork_holder(*line);
    try {
        (void)claim_endpoint(*line, "ring consumer");
        ADD_FAILURE() << "a live holder's end was claimed";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::device_or_resource_busy);
        EXPECT_NE(std::string(e.what()).find("ring consumer is held by pid " + std::to_string(holder)),
                  std::string::npos)
            << e.what();
    }
    kill_and_reap(holder);
}

TEST(EndpointTest, DeadHolderIsTakenOverEvenBeforeItIsReaped) {
    SharedLine line;
    const pid_t holder = fork_holder(*line);
    ::kill(holder, SIGKILL);
    siginfo_t info{};
    ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(holder), &info, WEXITED | WNOWAIT), 0);  // a zombie now
    const Claim claim = claim_endpoint(*line, "test end");
    EXPECT_TRUE(claim.took_over);
    EXPECT_EQ(claim.previous_pid, static_cast<std::uint32_t>(holder));
    EXPECT_EQ(claim.epoch, 2u);
    ::waitpid(holder, nullptr, 0);
}

TEST(EndpointTest, ReleasedLineIsReclaimableAndAStaleReleaseChangesNothing) {
    SharedLine line;
    const Claim first = claim_endpoint(*line, "test end");
    release_endpoint(*line, first.epoch);
    EXPECT_EQ(OwnerWord::unpack(line->owner.load()).state, EndpointState::closed);
    const Claim second = claim_endpoint(*line, "test end");
    EXPECT_FALSE(second.took_over);
    EXPECT_EQ(second.epoch, first.epoch + 1);
    release_endpoint(*line, first.epoch);  // the old holder's epoch: not ours any more
    EXPECT_EQ(OwnerWord::unpack(line->owner.load()).state, EndpointState::attached);
}

// A truncated region is swapped for zero pages (BusGuard), so the owner word a closing end reads
// is no longer its own: the keeper still unlinks the line and frees the hold, by its own record,
// or the line would stay on the robust list after its mapping goes (the shrink fuzz target found
// a close that later wrote through such a dangling link).
TEST(EndpointTest, AnEndWhoseOwnerWordWasZeroedIsStillUnlinkedAndFreedAtItsRelease) {
    SharedLine line;
    const Claim claim = claim_endpoint(*line, "test end");
    ASSERT_TRUE(holder_alive(line->holder.load()));
    line->owner.store(0);  // what zero pages read as
    release_endpoint(*line, claim.epoch);
    EXPECT_EQ(line->holder.load(), 0u) << "the hold outlived its release";
    EXPECT_EQ(line->owner.load(), 0u) << "a word that was not ours was written";
    const Claim again = claim_endpoint(*line, "test end");  // held afresh, linked once
    EXPECT_FALSE(again.took_over);
}

// A peer that zeroes the holder word of an end this process holds does not make it claimable by
// this process again: linked twice, the line would knot the robust list and a copy would stay on
// it after its release (the topic fuzz target found one left behind, written through later).
TEST(EndpointTest, AnEndThisProcessHoldsIsBusyToItEvenWithItsHolderWordZeroed) {
    SharedLine line;
    const Claim claim = claim_endpoint(*line, "test end");
    line->holder.store(0);  // a hostile peer's write
    EXPECT_THROW((void)claim_endpoint(*line, "test end"), Error);
    release_endpoint(*line, claim.epoch);
    const Claim again = claim_endpoint(*line, "test end");  // unlinked once, held afresh
    EXPECT_EQ(again.epoch, claim.epoch + 1);
}

TEST(EndpointTest, RacingClaimersOfADeadHolderHaveExactlyOneWinner) {
    for (int round = 0; round < 20; ++round) {
        SharedLine line;
        const pid_t holder = fork_holder(*line);
        kill_and_reap(holder);
        int claimed[2];  // the winner says so once its claim has returned (owner word written)
        ASSERT_EQ(::pipe(claimed), 0);
        pid_t claimers[2];
        for (pid_t& c : claimers) {
            c = ::fork();
            if (c == 0) {
                try {
                    (void)claim_endpoint(*line, "test end");
                    const char done = 1;
                    if (::write(claimed[1], &done, 1) != 1) ::_exit(4);
                    ::pause();  // hold it: the other claimer must find a live holder
                    ::_exit(0);
                } catch (const Error&) {
                    ::_exit(3);
                }
            }
        }
        // The loser exits 3; the winner waits to be killed.
        int status = 0;
        const pid_t first = ::wait(&status);
        ASSERT_TRUE(WIFEXITED(status)) << "round " << round;
        EXPECT_EQ(WEXITSTATUS(status), 3) << "round " << round;
        const pid_t winner = first == claimers[0] ? claimers[1] : claimers[0];
        // The loser can see the winner's holder word before the winner has written its owner
        // word: read the owner only after the winner's claim returned.
        char done = 0;
        ASSERT_EQ(::read(claimed[0], &done, 1), 1) << "round " << round;
        ::close(claimed[0]);
        ::close(claimed[1]);
        EXPECT_EQ(OwnerWord::unpack(line->owner.load()).pid, static_cast<std::uint32_t>(winner));
        kill_and_reap(winner);
    }
}

TEST(EndpointTest, WatchSeesDeathAndReArmsForANewHolder) {
    SharedLine line;
    EndpointWatch watch(line.get());
    const auto later = [] { return std::chrono::steady_clock::now() + 1s; };
    EXPECT_TRUE(watch.gone(later()));  // vacant
    const pid_t first = fork_holder(*line);
    EXPECT_FALSE(watch.gone(later()));
    kill_and_reap(first);
    EXPECT_TRUE(watch.gone(later() + 1s));
    const pid_t second = fork_holder(*line);  // takes over: a new epoch
    EXPECT_FALSE(watch.gone(later() + 2s));
    EXPECT_EQ(watch.owner().pid, static_cast<std::uint32_t>(second));
    kill_and_reap(second);
    EXPECT_TRUE(watch.gone(later() + 3s));
}

TEST(EndpointTest, CorruptStateIsAnErrorNamingTheEnd) {
    SharedLine line;
    line->owner.store(std::uint64_t{77} << 32);
    try {
        (void)claim_endpoint(*line, "topic subscriber 3");
        ADD_FAILURE() << "a corrupt owner word was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::protocol_error);
        EXPECT_NE(std::string(e.what()).find("topic subscriber 3"), std::string::npos) << e.what();
    }
}

// ---- the keeper: what the kernel marks, and when ---------------------------------------------

TEST(EndpointKeeperTest, TheKernelMarksADeadHoldersWordOwnerDiedAndWakesItsSleeper) {
    SharedLine line;
    const pid_t holder = fork_holder(*line);
    const std::uint32_t held = line->holder.load();
    ASSERT_TRUE(holder_alive(held));
    // A sleeper announces itself in the word, as a waiter does; the kernel wakes it at the death.
    std::uint32_t expected = held;
    ASSERT_TRUE(line->holder.compare_exchange_strong(expected, held | kHolderWaiters));
    std::thread killer([holder] {
        std::this_thread::sleep_for(50ms);
        ::kill(holder, SIGKILL);
    });
    while (line->holder.load() == (held | kHolderWaiters))
        (void)futex_wait(line->holder, held | kHolderWaiters, Deadline::after(30s));
    killer.join();
    EXPECT_EQ(line->holder.load(), kHolderOwnerDied | kHolderWaiters);
    EXPECT_TRUE(EndpointWatch(line.get()).gone());
    ::waitpid(holder, nullptr, 0);
}

TEST(EndpointKeeperTest, AForkedChildHoldsNothingAndItsCloseAndExitLeaveTheParentsEnd) {
    SharedLine line;
    const Claim claim = claim_endpoint(*line, "test end");
    const std::uint32_t held = line->holder.load();
    const pid_t child = ::fork();
    if (child == 0) {
        release_endpoint(*line, claim.epoch);  // a copy of the parent's end: changes nothing
        ::exit(0);                             // nor does its exit (it has no keeper)
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(line->holder.load(), held);
    EXPECT_EQ(OwnerWord::unpack(line->owner.load()).state, EndpointState::attached);
    release_endpoint(*line, claim.epoch);
    EXPECT_EQ(OwnerWord::unpack(line->owner.load()).state, EndpointState::closed);
    EXPECT_EQ(line->holder.load(), 0u);
}

TEST(EndpointKeeperTest, AForkedChildClaimsWithItsOwnKeeperAndItsDeathMarksOnlyItsEnd) {
    SharedLine lines(2);
    (void)claim_endpoint(lines[0], "parent end");
    const pid_t child = fork_holder(lines[1]);
    EXPECT_NE(lines[1].holder.load() & kHolderTidMask, lines[0].holder.load() & kHolderTidMask);
    kill_and_reap(child);
    EXPECT_TRUE(holder_alive(lines[0].holder.load()));
    EXPECT_EQ(lines[1].holder.load() & kHolderOwnerDied, kHolderOwnerDied);
}

TEST(EndpointKeeperTest, ExecReleasesEveryEndItHeldAsADeathWhileTheProcessLivesOn) {
    SharedLine line;
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(ready[0]);
        (void)claim_endpoint(*line, "test end");
        ::execl("/bin/sh", "sh", "-c", "echo x >&$0; exec sleep 30", std::to_string(ready[1]).c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(ready[1]);
    char byte = 0;
    ASSERT_EQ(::read(ready[0], &byte, 1), 1);  // the shell runs: the exec is done
    ::close(ready[0]);
    EXPECT_EQ(::kill(child, 0), 0) << "the process lives on after its exec";
    EXPECT_EQ(line->holder.load() & kHolderOwnerDied, kHolderOwnerDied);
    const Claim claim = claim_endpoint(*line, "test end");
    EXPECT_TRUE(claim.took_over);
    kill_and_reap(child);
}

TEST(EndpointKeeperTest, AnEndClaimedByAThreadThatEndedStaysHeldByTheProcess) {
    SharedLine line;
    Claim claim;
    std::thread([&] { claim = claim_endpoint(*line, "test end"); }).join();
    EXPECT_TRUE(holder_alive(line->holder.load()));
    const pid_t other = ::fork();
    if (other == 0) {
        try {
            (void)claim_endpoint(*line, "test end");
            ::_exit(1);
        } catch (const Error& e) {
            ::_exit(e.code() == std::errc::device_or_resource_busy ? 0 : 2);
        }
    }
    int status = 0;
    ::waitpid(other, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "another process took a held end";
    release_endpoint(*line, claim.epoch);  // from another thread than the one that claimed
    EXPECT_EQ(line->holder.load(), 0u);
}

TEST(EndpointKeeperTest, TheClaimPastTheKernelsListLimitIsRefusedAndSaysSo) {
    constexpr std::size_t kLimit = 2048;
    SharedLine lines(kLimit + 1);
    const pid_t child = ::fork();  // a process of its own, so that the limit is its alone
    if (child == 0) {
        for (std::size_t i = 0; i < kLimit; ++i)
            (void)claim_endpoint(lines[i], "test end");
        try {
            (void)claim_endpoint(lines[kLimit], "test end");
            ::_exit(1);
        } catch (const Error& e) {
            const bool says = std::string(e.what()).find("2048") != std::string::npos;
            ::_exit(e.code() == std::errc::too_many_files_open && says ? 0 : 2);
        }
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    // Its exit released all 2048 as a death: the kernel walked the whole list.
    for (std::size_t i = 0; i < kLimit; ++i)
        ASSERT_EQ(lines[i].holder.load() & kHolderOwnerDied, kHolderOwnerDied) << "line " << i;
    EXPECT_EQ(lines[kLimit].holder.load(), 0u);
}

// A holder in a PID namespace of its own (as in a container that shares /dev/shm, not the host's
// PIDs) is pid 1 there: never taken for dead while it lives, named as "in another PID namespace".
TEST(EndpointKeeperTest, AHolderInAnotherPidNamespaceIsAliveUntilItDies) {
    SharedLine line;
    int report[2];
    ASSERT_EQ(::pipe(report), 0);
    const pid_t outer = ::fork();
    if (outer == 0) {
        ::close(report[0]);
        if (::unshare(CLONE_NEWPID) != 0) ::_exit(77);
        int ready[2];
        if (::pipe(ready) != 0) ::_exit(78);
        const pid_t inner = ::fork();  // pid 1 of the new namespace
        if (inner == 0) {
            (void)claim_endpoint(*line, "ring consumer");
            const pid_t self = ::getpid();
            (void)!::write(ready[1], &self, sizeof self);
            ::pause();
            ::_exit(0);
        }
        pid_t inside = 0;
        if (::read(ready[0], &inside, sizeof inside) != sizeof inside) ::_exit(79);
        const pid_t both[2] = {inside, inner};  // its pid in its namespace, and in ours
        (void)!::write(report[1], both, sizeof both);
        int status = 0;
        ::waitpid(inner, &status, 0);
        ::_exit(0);
    }
    ::close(report[1]);
    pid_t both[2] = {0, 0};
    const auto got = ::read(report[0], both, sizeof both);
    ::close(report[0]);
    if (got != sizeof both) {
        int status = 0;
        ::waitpid(outer, &status, 0);
        GTEST_SKIP() << "unshare(CLONE_NEWPID) refused (needs root or a user namespace)";
    }
    EXPECT_EQ(both[0], 1) << "the holder is pid 1 of its namespace";
    EXPECT_EQ(OwnerWord::unpack(line->owner.load()).pid, 1u);
    EXPECT_FALSE(EndpointWatch(line.get()).gone());
    try {
        (void)claim_endpoint(*line, "ring consumer");
        ADD_FAILURE() << "a live holder in another PID namespace was taken over";
    } catch (const Error& e) {
        EXPECT_NE(
            std::string(e.what()).find("ring consumer is held by a process in another PID namespace (alive)"),
            std::string::npos)
            << e.what();
    }
    ::kill(both[1], SIGKILL);
    ::waitpid(outer, nullptr, 0);  // it reaped the holder: the kernel has marked the word
    EXPECT_TRUE(EndpointWatch(line.get()).gone());
    EXPECT_TRUE(claim_endpoint(*line, "ring consumer").took_over);
}

}  // namespace
}  // namespace ipckit::detail::ring
