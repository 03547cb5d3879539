// Internal: a deadline (and a descriptor) for a blocking system call that has no timeout of its
// own: msgrcv and msgsnd wait for a message or for room, or for the queue's removal, but take no
// deadline and cannot wait on a peer. Polling them (IPC_NOWAIT and naps) woke an idle receiver
// ~580 times a second; instead the call blocks in the kernel and is interrupted.
//
// While a WakeAlarm lives, this thread is signalled (kWakeSignal, whose handler does nothing and
// so interrupts the call: System V calls are never restarted, SA_RESTART or not) once its
// deadline passes or its descriptor polls readable (a peer's pidfd: its death). One thread per
// process, the waker, sleeps in ppoll(2) on every live alarm's descriptor and the earliest
// deadline, so an idle wait wakes nobody. A signal that lands just before the thread enters the
// call is repeated every kWakeRepeat until the alarm goes, so a call never sleeps past its
// deadline by more than that.
//
// The signal (SIGRTMAX-3) is taken only where nobody else handles it: if the program installed
// a handler for it before the first alarm, or changes it later, alarms are unavailable (armed()
// false) and the caller polls as before. The handler has SA_RESTART, so a stray one restarts
// the program's own calls. The thread's signal mask is opened for it during the wait only.
//
// Thread-safety: a WakeAlarm belongs to the thread that made it. After fork the child has no
// waker; its first alarm starts one.
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>

#include "ipckit/deadline.hpp"

namespace ipckit::detail {

class WakeAlarm {
public:
    // Arms for this thread: `deadline` (never: none) and `fd` (-1: none).
    WakeAlarm(Deadline deadline, int fd);
    WakeAlarm(const WakeAlarm&) = delete;
    WakeAlarm& operator=(const WakeAlarm&) = delete;
    ~WakeAlarm();

    // False when alarms are unavailable here (the signal is the program's, or no thread could
    // start): the caller must not block without a deadline of its own.
    [[nodiscard]] bool armed() const noexcept { return armed_; }
    // The deadline passed or the descriptor polled readable: an EINTR now is the alarm.
    [[nodiscard]] bool rang() const noexcept { return rang_.load(std::memory_order_acquire); }

    struct Entry;

private:
    bool armed_ = false;
    std::atomic<bool> rang_{false};
    sigset_t old_mask_{};
};

}  // namespace ipckit::detail
