// Process liveness: pid + start time, and a pidfd where it helps (include/ipckit/process.hpp).
#include "ipckit/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace ipckit {

std::optional<ProcessStat> read_process_stat(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    // The whole line fits: 52 numeric fields plus a command name of at most 16 bytes.
    char text[1024];
    ssize_t n;
    do {
        n = ::read(fd, text, sizeof text - 1);
    } while (n < 0 && errno == EINTR);
    ::close(fd);
    if (n <= 0) return std::nullopt;
    std::string_view line(text, static_cast<std::size_t>(n));
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string_view::npos) return std::nullopt;
    line.remove_prefix(close + 1);
    // Field 3 is the state; field 22 the start time: the 1st and 20th words after the ')'.
    ProcessStat stat;
    int field = 0;
    while (!line.empty()) {
        const auto begin = line.find_first_not_of(' ');
        if (begin == std::string_view::npos) break;
        line.remove_prefix(begin);
        const auto end = std::min(line.find(' '), line.size());
        const auto word = line.substr(0, end);
        ++field;
        if (field == 1) stat.state = word[0];
        if (field == 20) {
            const auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), stat.start_ticks);
            if (ec != std::errc()) return std::nullopt;
            return stat;
        }
        line.remove_prefix(end);
    }
    return std::nullopt;
}

ProcessRef ProcessRef::self() {
    const pid_t pid = ::getpid();
    const auto stat = read_process_stat(pid);
    return {pid, stat ? stat->start_ticks : 0};
}

std::optional<ProcessRef> ProcessRef::of(pid_t pid) {
    const auto stat = read_process_stat(pid);
    if (!stat || stat->state == 'Z' || stat->state == 'X' || stat->state == 'x') return std::nullopt;
    return ProcessRef{pid, stat->start_ticks};
}

bool ProcessRef::alive() const {
    if (pid <= 0) return false;
    const auto stat = read_process_stat(pid);
    if (!stat) {
        // /proc may hide other users' processes (hidepid): fall back to asking the kernel.
        return ::kill(pid, 0) == 0 || errno == EPERM;
    }
    if (stat->state == 'Z' || stat->state == 'X' || stat->state == 'x') return false;
    return start_ticks == 0 || stat->start_ticks == start_ticks;
}

ProcessWatch::ProcessWatch(ProcessRef process) : process_(process) {
    if (!process_.alive()) {
        dead_ = true;
        return;
    }
    const long fd = ::syscall(SYS_pidfd_open, process_.pid, 0);
    if (fd >= 0) pidfd_.reset(static_cast<int>(fd));
    // The PID may have been reused between alive() and pidfd_open: check the start time again,
    // now that the pidfd pins whichever process it names.
    if (pidfd_ && !process_.alive()) dead_ = true;
}

bool ProcessWatch::gone() {
    if (dead_) return true;
    if (process_.pid <= 0) return dead_ = true;
    if (pidfd_) {
        // A pidfd polls readable once the process has exited, reaped or not.
        pollfd p{pidfd_.get(), POLLIN, 0};
        int ready;
        do {
            ready = ::poll(&p, 1, 0);
        } while (ready < 0 && errno == EINTR);
        if (ready > 0) dead_ = true;
        // A zombie's pidfd is readable already; a stopped or traced one is alive.
        return dead_;
    }
    dead_ = !process_.alive();
    return dead_;
}

std::uint64_t pid_namespace_inode() noexcept {
    // Not cached: a process may unshare(CLONE_NEWPID) and fork a child into another namespace.
    struct stat st {};
    return ::stat("/proc/self/ns/pid", &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

}  // namespace ipckit
