// Claiming, releasing, taking over and watching an EndpointLine across real processes: the
// protocol every ring kind of layout version 2 records its ends with.
#include "ipckit/detail/endpoint.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <new>

#include "ipckit/error.hpp"

namespace ipckit::detail::ring {
namespace {

using namespace std::chrono_literals;

// One EndpointLine in MAP_SHARED memory, seen by every child forked after it.
class SharedLine {
public:
    SharedLine() {
        void* p =
            ::mmap(nullptr, sizeof(EndpointLine), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw_errno("mmap", "endpoint line");
        line_ = ::new (p) EndpointLine{};
    }
    ~SharedLine() { ::munmap(line_, sizeof(EndpointLine)); }
    SharedLine(const SharedLine&) = delete;
    SharedLine& operator=(const SharedLine&) = delete;
    EndpointLine& operator*() const { return *line_; }
    EndpointLine* get() const { return line_; }
    EndpointLine* operator->() const { return line_; }

private:
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

TEST(EndpointTest, RacingClaimersOfADeadHolderHaveExactlyOneWinner) {
    for (int round = 0; round < 20; ++round) {
        SharedLine line;
        const pid_t holder = fork_holder(*line);
        kill_and_reap(holder);
        pid_t claimers[2];
        for (pid_t& c : claimers) {
            c = ::fork();
            if (c == 0) {
                try {
                    (void)claim_endpoint(*line, "test end");
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

}  // namespace
}  // namespace ipckit::detail::ring
