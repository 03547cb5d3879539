// Synchronisation in shared memory, between real processes: the futex semaphore (exact
// counts, timeouts, no system call on an uncontended post), the event, and the robust mutex
// whose owner is killed with SIGKILL while holding it.
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/sync.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

// Waits (bounded) until `condition` holds; false if it never did.
template <class Condition>
bool eventually(Condition condition) {
    for (int i = 0; i < 10000; ++i) {
        if (condition()) return true;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}

// From here on, any futex(2) call kills this process with SIGSYS.
void forbid_futex_calls() {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_futex, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw_errno("prctl(PR_SET_NO_NEW_PRIVS)", "test");
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0)
        throw_errno("prctl(PR_SET_SECCOMP)", "test");
}

// ---- ShmSemaphore -------------------------------------------------------------------------

TEST(ShmSemaphoreTest, TryWaitTakesOnlyWhatWasPosted) {
    auto region = Mapping::anonymous_shared(4096);
    auto& semaphore = construct_at<ShmSemaphore>(region.bytes(), 0, 2U);
    EXPECT_EQ(semaphore.value(), 2U);
    EXPECT_TRUE(semaphore.try_wait());
    EXPECT_TRUE(semaphore.try_wait());
    EXPECT_FALSE(semaphore.try_wait());
    EXPECT_EQ(semaphore.wait(Deadline::immediate()), Status::would_block);
    semaphore.post(3);
    EXPECT_EQ(semaphore.value(), 3U);
}

TEST(ShmSemaphoreTest, TimedWaitTimesOutWhenNobodyPosts) {
    auto region = Mapping::anonymous_shared(4096);
    auto& semaphore = construct_at<ShmSemaphore>(region.bytes(), 0);
    EXPECT_EQ(semaphore.wait(Deadline::after(30ms)), Status::timed_out);
    EXPECT_EQ(semaphore.sleepers(), 0U);  // a timed-out waiter leaves no trace
    EXPECT_EQ(semaphore.value(), 0U);
}

TEST(ShmSemaphoreTest, SleeperInAnotherProcessIsWokenByPost) {
    auto region = Mapping::anonymous_shared(4096);
    auto& semaphore = construct_at<ShmSemaphore>(region.bytes(), 0);
    auto waiter = test::spawn([&] { return semaphore.wait(Deadline::after(30s)) == Status::ok ? 0 : 1; });
    ASSERT_TRUE(eventually([&] { return semaphore.sleepers() == 1; }));
    semaphore.post();
    EXPECT_EQ(waiter.wait(), 0);
    EXPECT_EQ(semaphore.value(), 0U);
}

TEST(ShmSemaphoreTest, CountsAreExactAcrossManyProcesses) {
    constexpr int producers = 2, consumers = 2, per_producer = 100000;
    struct Shared {
        ShmSemaphore items;
        std::atomic<std::uint64_t> taken;
        using shm_fields = ShmFields<ShmSemaphore, std::atomic<std::uint64_t>>;
    };
    auto region = Mapping::anonymous_shared(4096);
    auto& shared = construct_at<Shared>(region.bytes(), 0);
    std::vector<test::Child> children;
    for (int c = 0; c < consumers; ++c) {
        children.push_back(test::spawn([&] {
            for (int i = 0; i < producers * per_producer / consumers; ++i) {
                if (shared.items.wait(Deadline::after(60s)) != Status::ok) return 1;
                shared.taken.fetch_add(1, std::memory_order_relaxed);
            }
            return 0;
        }));
    }
    for (int p = 0; p < producers; ++p) {
        children.push_back(test::spawn([&] {
            for (int i = 0; i < per_producer; ++i)
                shared.items.post();
            return 0;
        }));
    }
    for (auto& child : children)
        EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(shared.taken.load(), std::uint64_t{producers} * per_producer);
    EXPECT_EQ(shared.items.value(), 0U);
    EXPECT_FALSE(shared.items.try_wait());
}

TEST(ShmSemaphoreTest, PingPongCarriesDataInOrderBetweenProcesses) {
    struct Shared {
        ShmSemaphore to_child, to_parent;
        std::uint64_t value;  // plain: the semaphores order every access to it
        using shm_fields = ShmFields<ShmSemaphore, ShmSemaphore, std::uint64_t>;
    };
    auto region = Mapping::anonymous_shared(4096);
    auto& shared = construct_at<Shared>(region.bytes(), 0);
    constexpr std::uint64_t rounds = 5000;
    auto child = test::spawn([&] {
        for (std::uint64_t i = 0; i < rounds; ++i) {
            if (shared.to_child.wait(Deadline::after(30s)) != Status::ok) return 1;
            if (shared.value != 2 * i) return 2;
            shared.value = 2 * i + 1;
            shared.to_parent.post();
        }
        return 0;
    });
    for (std::uint64_t i = 0; i < rounds; ++i) {
        shared.value = 2 * i;
        shared.to_child.post();
        ASSERT_EQ(shared.to_parent.wait(Deadline::after(30s)), Status::ok);
        ASSERT_EQ(shared.value, 2 * i + 1);
    }
    EXPECT_EQ(child.wait(), 0);
}

TEST(ShmSemaphoreTest, PostMakesNoSystemCallWhenNobodySleeps) {
    auto region = Mapping::anonymous_shared(4096);
    auto& semaphore = construct_at<ShmSemaphore>(region.bytes(), 0);
    auto poster = test::spawn([&] {
        forbid_futex_calls();
        for (int i = 0; i < 1000; ++i)
            semaphore.post();
        for (int i = 0; i < 1000; ++i)
            if (semaphore.wait(Deadline::never()) != Status::ok) return 1;  // units there: no sleep
        return 0;
    });
    EXPECT_EQ(poster.wait(), 0);  // -SIGSYS would mean a futex call was made
    EXPECT_EQ(semaphore.value(), 0U);
}

TEST(ShmSemaphoreTest, PostDoesWakeWhenSomeoneSleeps) {
    // The control for the test above: the same filter does catch the wake-up call.
    auto region = Mapping::anonymous_shared(4096);
    auto& semaphore = construct_at<ShmSemaphore>(region.bytes(), 0);
    auto sleeper = test::spawn([&] { return semaphore.wait(Deadline::after(30s)) == Status::ok ? 0 : 1; });
    ASSERT_TRUE(eventually([&] { return semaphore.sleepers() == 1; }));
    auto poster = test::spawn([&] {
        forbid_futex_calls();
        semaphore.post();
        return 0;
    });
    EXPECT_EQ(poster.wait(), -SIGSYS);
    semaphore.post();  // the killed poster's unit may be there, but its wake-up never happened
    EXPECT_EQ(sleeper.wait(), 0);
}

TEST(ShmSemaphoreTest, PostPastTheLargestCountIsAnError) {
    auto region = Mapping::anonymous_shared(4096);
    auto& semaphore = construct_at<ShmSemaphore>(region.bytes(), 0, UINT32_MAX - 1);
    semaphore.post();
    EXPECT_THROW(semaphore.post(), Error);
    EXPECT_EQ(semaphore.value(), UINT32_MAX);
}

// ---- ShmEvent -----------------------------------------------------------------------------

TEST(ShmEventTest, SetWakesEverySleeperAndStaysSetUntilCleared) {
    auto region = Mapping::anonymous_shared(4096);
    auto& event = construct_at<ShmEvent>(region.bytes(), 0);
    EXPECT_FALSE(event.is_set());
    EXPECT_EQ(event.wait(Deadline::immediate()), Status::would_block);
    EXPECT_EQ(event.wait(Deadline::after(20ms)), Status::timed_out);
    std::vector<test::Child> sleepers;
    for (int i = 0; i < 3; ++i)
        sleepers.push_back(
            test::spawn([&] { return event.wait(Deadline::after(30s)) == Status::ok ? 0 : 1; }));
    event.set();
    for (auto& child : sleepers)
        EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(event.wait(Deadline::immediate()), Status::ok);
    event.clear();
    EXPECT_EQ(event.wait(Deadline::after(10ms)), Status::timed_out);
}

// ---- RobustMutex --------------------------------------------------------------------------

struct Guarded {
    RobustMutex mutex;
    ShmEvent locked;      // the child holds the mutex
    std::uint64_t first;  // invariant: first == second, broken while someone is mid-update
    std::uint64_t second;
    using shm_fields = ShmFields<RobustMutex, ShmEvent, std::uint64_t, std::uint64_t>;
};

TEST(RobustMutexTest, ExcludesAcrossProcesses) {
    auto region = Mapping::anonymous_shared(4096);
    auto& shared = construct_at<Guarded>(region.bytes(), 0);
    constexpr int increments = 50000;
    auto body = [&] {
        for (int i = 0; i < increments; ++i) {
            RobustLock lock(shared.mutex);
            const std::uint64_t seen = shared.first;
            shared.first = seen + 1;  // a plain read-modify-write: lost without the mutex
            shared.second = seen + 1;
        }
        return 0;
    };
    auto a = test::spawn(body);
    auto b = test::spawn(body);
    EXPECT_EQ(a.wait(), 0);
    EXPECT_EQ(b.wait(), 0);
    EXPECT_EQ(shared.first, 2U * increments);
    EXPECT_EQ(shared.second, 2U * increments);
}

TEST(RobustMutexTest, OwnerKilledWhileHoldingItIsReportedAndRepaired) {
    auto region = Mapping::anonymous_shared(4096);
    auto& shared = construct_at<Guarded>(region.bytes(), 0);
    auto owner = test::spawn([&]() -> int {
        (void)shared.mutex.lock();
        shared.first = 1;  // mid-update: second not yet written
        shared.locked.set();
        for (;;)
            ::pause();
    });
    ASSERT_EQ(shared.locked.wait(Deadline::after(30s)), Status::ok);
    EXPECT_FALSE(shared.mutex.try_lock().has_value());  // held by the live child
    EXPECT_FALSE(shared.mutex.lock(Deadline::after(20ms)).has_value());
    owner.kill(SIGKILL);
    EXPECT_EQ(owner.wait(), -SIGKILL);

    // The next locker, in yet another process, is told and repairs.
    auto repairer = test::spawn([&] {
        // lock(), not lock(Deadline): ThreadSanitizer follows EOWNERDEAD only through
        // pthread_mutex_lock. The wait is bounded all the same, by repairer.wait().
        const auto outcome = shared.mutex.lock();
        if (outcome != RobustMutex::LockOutcome::previous_owner_died) return 1;
        if (shared.first == shared.second) return 2;  // it saw the broken invariant
        shared.second = shared.first;
        shared.mutex.make_consistent();
        shared.mutex.unlock();
        return 0;
    });
    EXPECT_EQ(repairer.wait(), 0);
    {
        RobustLock lock(shared.mutex);
        EXPECT_FALSE(lock.previous_owner_died());
        EXPECT_EQ(shared.first, shared.second);
    }
}

TEST(RobustMutexTest, UnlockingWithoutRepairMakesItUnrecoverable) {
    auto region = Mapping::anonymous_shared(4096);
    auto& shared = construct_at<Guarded>(region.bytes(), 0);
    auto owner = test::spawn([&] {
        (void)shared.mutex.lock();
        return 0;  // exits holding it
    });
    ASSERT_EQ(owner.wait(), 0);
    {
        RobustLock lock(shared.mutex);
        EXPECT_TRUE(lock.previous_owner_died());
    }  // unlocked without make_consistent()
    try {
        (void)shared.mutex.lock();
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::state_not_recoverable);
        EXPECT_NE(std::string(e.what()).find("make_consistent"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace ipckit
