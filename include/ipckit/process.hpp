// ipckit/process.hpp — one answer to "is that process still there?", for every part of ipckit
// that records who holds an object: ring ends, queue peers, the registry.
//
// A PID alone is a weak name: after a process dies its PID is handed out again. `ProcessRef`
// pairs the PID with the process's start time (field 22 of /proc/PID/stat, clock ticks since
// boot), which no later process with that PID can share. A zombie counts as gone: it holds
// nothing and will never act again, even if its parent (maybe the very process asking) has
// not reaped it yet.
//
// Example:
//     const auto me = ipckit::ProcessRef::self();           // store pid + start_ticks in shm
//     ...
//     ipckit::ProcessRef holder{pid, start_ticks};           // read back by another process
//     if (!holder.alive()) take_over();
//
//     ipckit::ProcessWatch watch(holder);                    // a cheap repeated check, with a
//     if (watch.gone()) ...                                  // pidfd where the kernel has one
//
// Thread-safety: `ProcessRef` is a value. A `ProcessWatch` is used by one thread at a time.
// Errors: none thrown; a process that cannot be inspected (another user's under hidepid) is
// asked with kill(pid, 0), and EPERM counts as alive.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "ipckit/fd.hpp"

namespace ipckit {

struct ProcessRef {
    pid_t pid = 0;
    // Start time in clock ticks since boot; 0 means "unknown", and then the PID alone decides.
    std::uint64_t start_ticks = 0;

    // This process.
    [[nodiscard]] static ProcessRef self();
    // The process now running as `pid` (start time read from /proc), or nullopt if none is.
    [[nodiscard]] static std::optional<ProcessRef> of(pid_t pid);

    // Running or sleeping, and the same process that was recorded (not a later one with its PID).
    [[nodiscard]] bool alive() const;

    friend bool operator==(const ProcessRef&, const ProcessRef&) = default;
};

// The inode of this process's PID namespace (/proc/self/ns/pid), 0 when unknown. A PID means
// something only beside the namespace it was read in: ring ends and registry records keep it.
[[nodiscard]] std::uint64_t pid_namespace_inode() noexcept;

// The state letter (R, S, D, Z, …) and start time of `pid`, from /proc/PID/stat; nullopt if
// there is no such process or /proc hides it.
struct ProcessStat {
    char state = '?';
    std::uint64_t start_ticks = 0;
};
[[nodiscard]] std::optional<ProcessStat> read_process_stat(pid_t pid);

// Watches one recorded process for its death, cheaply enough to ask on every wait slice: it
// holds a pidfd (which names one process for good and polls readable at its exit, reaped or
// not) and falls back to `ProcessRef::alive()` where the kernel has none.
class ProcessWatch {
public:
    ProcessWatch() = default;
    explicit ProcessWatch(ProcessRef process);

    [[nodiscard]] const ProcessRef& process() const noexcept { return process_; }
    // True once the process has exited or is a zombie, or was already gone when watched.
    [[nodiscard]] bool gone();
    // A descriptor that polls readable (POLLIN) when the process exits, for a wait set; -1 when
    // the kernel offers none (then poll `gone()` instead).
    [[nodiscard]] int fd() const noexcept { return pidfd_.get(); }

private:
    ProcessRef process_;
    Fd pidfd_;
    bool dead_ = false;
};

}  // namespace ipckit
