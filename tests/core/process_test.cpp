// ProcessRef and ProcessWatch against real processes: a live child, a zombie, a reaped child,
// and a recorded start time that no longer matches (the PID-reuse case).
#include "ipckit/process.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ipckit {
namespace {

pid_t fork_pausing_child() {
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::pause();
        ::_exit(0);
    }
    return pid;
}

TEST(ProcessTest, SelfIsAliveAndHasAStartTime) {
    const auto me = ProcessRef::self();
    EXPECT_EQ(me.pid, ::getpid());
    EXPECT_GT(me.start_ticks, 0u);
    EXPECT_TRUE(me.alive());
    EXPECT_EQ(ProcessRef::of(::getpid()), me);
}

TEST(ProcessTest, ZombieCountsAsGoneBeforeItIsReaped) {
    const pid_t child = fork_pausing_child();
    ASSERT_GT(child, 0);
    const auto ref = ProcessRef::of(child);
    ASSERT_TRUE(ref.has_value());
    EXPECT_TRUE(ref->alive());
    ProcessWatch watch(*ref);
    EXPECT_FALSE(watch.gone());
    ::kill(child, SIGKILL);
    // Wait until it is a zombie without reaping it: waitid with WNOWAIT leaves it in place.
    siginfo_t info{};
    ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
    EXPECT_FALSE(ref->alive());
    EXPECT_TRUE(watch.gone());
    EXPECT_FALSE(ProcessRef::of(child).has_value());
    ASSERT_EQ(::waitpid(child, nullptr, 0), child);
    EXPECT_FALSE(ref->alive());
}

TEST(ProcessTest, ADifferentStartTimeIsAnotherProcess) {
    auto me = ProcessRef::self();
    me.start_ticks += 1;  // what a recorded holder looks like once its PID went to someone else
    EXPECT_FALSE(me.alive());
    EXPECT_TRUE(ProcessWatch(me).gone());
}

TEST(ProcessTest, NoPidIsNeverAlive) {
    EXPECT_FALSE(ProcessRef{}.alive());
    EXPECT_FALSE((ProcessRef{-5, 0}.alive()));
    EXPECT_TRUE(ProcessWatch(ProcessRef{}).gone());
}

}  // namespace
}  // namespace ipckit
