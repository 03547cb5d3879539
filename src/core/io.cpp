#include "ipckit/io.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <vector>

#include "ipckit/error.hpp"

namespace ipckit {
namespace {

// Waits for `events`; a hang-up or error condition also counts as ready, so the next
// system call reports it (EOF, EPIPE) instead of the wait lasting until the deadline.
Status wait_for(int fd, short events, Deadline deadline, std::string_view object) {
    pollfd pfd{fd, events, 0};
    for (;;) {
        const int n = ::poll(&pfd, 1, deadline.poll_timeout_ms());
        if (n > 0) return Status::ok;
        if (n == 0) return deadline.is_immediate() ? Status::would_block : Status::timed_out;
        if (errno != EINTR) throw_errno("poll", object);
        if (deadline.expired()) return Status::timed_out;
    }
}

// Holds SIGPIPE back for one write on this thread. If the write raised it (the reader is
// gone) and it was not already pending, the signal is consumed so nobody ever sees it.
// This is the classic technique that does not touch the process-wide disposition.
class SigpipeGuard {
public:
    SigpipeGuard() {
        sigemptyset(&pipe_only_);
        sigaddset(&pipe_only_, SIGPIPE);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
        pthread_sigmask(SIG_BLOCK, &pipe_only_, &old_mask_);
    }
    SigpipeGuard(const SigpipeGuard&) = delete;
    SigpipeGuard& operator=(const SigpipeGuard&) = delete;
    ~SigpipeGuard() {
        if (raised_ && !was_pending_) {
            const timespec zero{0, 0};
            while (sigtimedwait(&pipe_only_, nullptr, &zero) < 0 && errno == EINTR) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    }
    void note_epipe() noexcept { raised_ = true; }

private:
    sigset_t pipe_only_{};
    sigset_t old_mask_{};
    bool was_pending_ = false;
    bool raised_ = false;
};

bool is_socket(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

// Set once by ignore_sigpipe(); read on every pipe write, so relaxed is enough: a write that
// misses a fresh store only pays for a guard it did not need.
std::atomic<bool> sigpipe_ignored{false};

}  // namespace

Status wait_readable(int fd, Deadline deadline, std::string_view object) {
    return wait_for(fd, POLLIN, deadline, object);
}

Status wait_writable(int fd, Deadline deadline, std::string_view object) {
    return wait_for(fd, POLLOUT, deadline, object);
}

IoResult read_some(int fd, std::span<std::byte> buffer, Deadline deadline, std::string_view object) {
    for (;;) {
        if (!deadline.is_never()) {
            const Status s = wait_readable(fd, deadline, object);
            if (s != Status::ok) return {s, 0};
        }
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n > 0) return {Status::ok, static_cast<std::size_t>(n)};
        if (n == 0) return {buffer.empty() ? Status::ok : Status::closed, 0};
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
            if (deadline.is_immediate()) return {Status::would_block, 0};
            const Status s = wait_readable(fd, deadline, object);
            if (s != Status::ok) return {s, 0};
            continue;
        }
        if (errno == ECONNRESET) return {Status::closed, 0};
        throw_errno("read", object);
    }
}

IoResult read_exact(int fd, std::span<std::byte> buffer, Deadline deadline, std::string_view object) {
    std::size_t done = 0;
    while (done < buffer.size()) {
        // Once a record has begun it is finished whatever the deadline, so a timeout never
        // leaves the stream torn; a dead peer still ends the wait, with end of file.
        const IoResult r =
            read_some(fd, buffer.subspan(done), done > 0 ? Deadline::never() : deadline, object);
        if (r.status != Status::ok) return {r.status, done};
        done += r.bytes;
    }
    return {Status::ok, done};
}

void ignore_sigpipe() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    if (::sigaction(SIGPIPE, &ignore, nullptr) != 0) throw_errno("sigaction", "SIGPIPE");
    sigpipe_ignored.store(true, std::memory_order_relaxed);
}

IoResult write_all(int fd, std::span<const std::span<const std::byte>> parts, Deadline deadline,
                   std::string_view object, DescriptorKind kind) {
    // A framed message is two or three parts: they fit on the stack, so a message costs no
    // allocation; only a caller with many parts pays for a vector.
    constexpr std::size_t kInlineParts = 8;
    std::array<iovec, kInlineParts> inline_iov{};
    std::vector<iovec> heap_iov;
    std::span<iovec> iov = inline_iov;
    if (parts.size() > kInlineParts) {
        heap_iov.resize(parts.size());
        iov = heap_iov;
    }
    std::size_t count = 0;
    std::size_t total = 0;
    for (auto part : parts) {
        if (part.empty()) continue;
        iov[count++] = {const_cast<std::byte*>(part.data()), part.size()};
        total += part.size();
    }
    iov = iov.first(count);
    const bool socket = kind == DescriptorKind::socket || (kind == DescriptorKind::unknown && is_socket(fd));
    std::size_t done = 0;
    std::size_t first = 0;  // first iovec not yet fully written
    while (done < total) {
        // Once the first byte is out the record is finished whatever the deadline (see read_exact).
        const Deadline now_deadline = done > 0 ? Deadline::never() : deadline;
        // Immediate polls too (with no wait): on a blocking descriptor the write itself would
        // otherwise wait for room.
        if (!now_deadline.is_never()) {
            const Status s = wait_writable(fd, now_deadline, object);
            if (s != Status::ok) return {s, done};
        }
        ssize_t n;
        if (socket) {
            msghdr msg{};
            msg.msg_iov = iov.data() + first;
            msg.msg_iovlen = iov.size() - first;
            n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);  // MSG_NOSIGNAL: EPIPE without SIGPIPE
        } else if (sigpipe_ignored.load(std::memory_order_relaxed)) {
            n = ::writev(fd, iov.data() + first, static_cast<int>(iov.size() - first));
        } else {
            SigpipeGuard guard;
            n = ::writev(fd, iov.data() + first, static_cast<int>(iov.size() - first));
            // The kernel raises SIGPIPE also when the reader goes away part-way through a write
            // that then returns the bytes it did write; only a full write surely raised nothing.
            if (n < 0 ? errno == EPIPE : static_cast<std::size_t>(n) < total - done) guard.note_epipe();
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EPIPE || errno == ECONNRESET) return {Status::closed, done};
            if (errno == EAGAIN) {
                if (now_deadline.is_immediate()) return {Status::would_block, 0};
                const Status s = wait_writable(fd, now_deadline, object);
                if (s != Status::ok) return {s, done};
                continue;
            }
            throw_errno(socket ? "sendmsg" : "write", object);
        }
        auto left = static_cast<std::size_t>(n);
        done += left;
        while (first < iov.size() && left >= iov[first].iov_len) {
            left -= iov[first].iov_len;
            ++first;
        }
        if (left > 0) {
            iov[first].iov_base = static_cast<std::byte*>(iov[first].iov_base) + left;
            iov[first].iov_len -= left;
        }
    }
    return {Status::ok, done};
}

IoResult write_all(int fd, std::span<const std::byte> data, Deadline deadline, std::string_view object,
                   DescriptorKind kind) {
    const std::array<std::span<const std::byte>, 1> parts{data};
    return write_all(fd, parts, deadline, object, kind);
}

}  // namespace ipckit
