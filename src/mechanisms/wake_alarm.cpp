// The waker thread behind WakeAlarm (wake_alarm.hpp).
#include "wake_alarm.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "core/quiet_thread.hpp"

namespace ipckit::detail {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Between the last real-time signals glibc keeps for itself and the ones programs take first.
const int kWakeSignal = SIGRTMAX - 3;
// How often a rung alarm is rung again until its thread leaves the call (see the header).
constexpr auto kWakeRepeat = 2ms;

void on_wake(int) {}  // interrupts the call; nothing else to do

struct Alarm {
    pid_t tid;
    Clock::time_point when;
    int fd;
    std::atomic<bool>* rang;
};

struct Waker {
    std::mutex mutex;
    std::vector<Alarm> alarms;
    int event = -1;  // eventfd: the alarms changed
    bool started = false;
    bool usable = false;  // the signal is ours
};

void* waker_main(void* arg);

Waker& waker() {
    static Waker* w = [] {
        auto* made = new Waker;  // never destroyed: its thread outlives static destructors
        struct sigaction old {};
        if (::sigaction(kWakeSignal, nullptr, &old) == 0 && old.sa_handler == SIG_DFL &&
            (old.sa_flags & SA_SIGINFO) == 0) {
            struct sigaction action {};
            action.sa_handler = on_wake;
            action.sa_flags = SA_RESTART;  // other calls restart; msgrcv and msgsnd never do
            sigemptyset(&action.sa_mask);
            made->usable = ::sigaction(kWakeSignal, &action, nullptr) == 0;
        }
        // A child of fork has no waker thread and no alarms: its first alarm starts afresh.
        ::pthread_atfork([] { waker().mutex.lock(); }, [] { waker().mutex.unlock(); },
                         [] {
                             Waker& c = waker();
                             c.alarms.clear();
                             if (c.event >= 0) ::close(c.event);
                             c.event = -1;
                             c.started = false;
                             c.mutex.unlock();
                         });
        return made;
    }();
    return *w;
}

// Under the mutex.
bool start(Waker& w) {
    if (w.started) return true;
    w.event = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w.event < 0) return false;
    if (start_quiet_thread(waker_main, &w, 64 * 1024) != 0) {
        ::close(w.event);
        w.event = -1;
        return false;
    }
    w.started = true;
    return true;
}

void* waker_main(void* arg) {
    auto* w = static_cast<Waker*>(arg);
    const pid_t pid = ::getpid();
    std::vector<pollfd> fds;
    std::vector<std::atomic<bool>*> owner;  // fds[i + 1] is the descriptor of the alarm that rings owner[i]
    for (;;) {
        Clock::time_point until = Clock::time_point::max();
        {
            const std::lock_guard lock(w->mutex);
            if (w->event < 0) return nullptr;
            fds.assign(1, pollfd{w->event, POLLIN, 0});
            owner.clear();
            const auto now = Clock::now();
            for (std::size_t i = 0; i < w->alarms.size(); ++i) {
                Alarm& a = w->alarms[i];
                if (!a.rang->load(std::memory_order_relaxed) && a.fd >= 0) {
                    fds.push_back({a.fd, POLLIN, 0});
                    owner.push_back(a.rang);
                }
                if (!a.rang->load(std::memory_order_relaxed) && now >= a.when)
                    a.rang->store(true, std::memory_order_release);
                if (a.rang->load(std::memory_order_relaxed)) {
                    (void)::syscall(SYS_tgkill, pid, a.tid, kWakeSignal);
                    until = std::min(until, now + kWakeRepeat);
                } else {
                    until = std::min(until, a.when);
                }
            }
        }
        timespec slice{};
        const timespec* timeout = nullptr;
        if (until != Clock::time_point::max()) {
            const auto left = std::max<Clock::duration>(until - Clock::now(), Clock::duration::zero());
            const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(left);
            slice.tv_sec = static_cast<time_t>(seconds.count());
            slice.tv_nsec = static_cast<long>(std::chrono::nanoseconds(left - seconds).count());
            timeout = &slice;
        }
        const int n = ::ppoll(fds.data(), fds.size(), timeout, nullptr);
        if (n <= 0) continue;
        std::uint64_t count = 0;
        if (fds[0].revents != 0) (void)::read(fds[0].fd, &count, sizeof count);
        const std::lock_guard lock(w->mutex);
        for (std::size_t i = 1; i < fds.size(); ++i) {
            if (fds[i].revents == 0) continue;
            // The alarms may have changed while we slept: only one still there rings.
            const auto it = std::find_if(w->alarms.begin(), w->alarms.end(),
                                         [&](const Alarm& a) { return a.rang == owner[i - 1]; });
            if (it != w->alarms.end()) it->rang->store(true, std::memory_order_release);
        }
    }
}

// The handler is still ours: a program that took the signal since (SIG_IGN would swallow it)
// gets the polling fallback instead of a call that is never interrupted.
bool still_ours() {
    struct sigaction now {};
    return ::sigaction(kWakeSignal, nullptr, &now) == 0 && (now.sa_flags & SA_SIGINFO) == 0 &&
           now.sa_handler == on_wake;
}

}  // namespace

WakeAlarm::WakeAlarm(Deadline deadline, int fd) {
    Waker& w = waker();
    if (!w.usable || !still_ours()) return;
    {
        const std::lock_guard lock(w.mutex);
        if (!start(w)) return;
        w.alarms.push_back({static_cast<pid_t>(::syscall(SYS_gettid)), deadline.when(), fd, &rang_});
    }
    const std::uint64_t one = 1;
    (void)::write(w.event, &one, sizeof one);  // the waker looks at the new alarm
    sigset_t wake;
    sigemptyset(&wake);
    sigaddset(&wake, kWakeSignal);
    ::pthread_sigmask(SIG_UNBLOCK, &wake, &old_mask_);
    armed_ = true;
}

WakeAlarm::~WakeAlarm() {
    if (!armed_) return;
    Waker& w = waker();
    {
        // After this the waker signals this thread no more (a stale wake of the waker finds
        // nothing to ring).
        const std::lock_guard lock(w.mutex);
        const auto it =
            std::find_if(w.alarms.begin(), w.alarms.end(), [&](const Alarm& a) { return a.rang == &rang_; });
        if (it != w.alarms.end()) w.alarms.erase(it);
    }
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

}  // namespace ipckit::detail
