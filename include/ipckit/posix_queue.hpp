// ipckit/posix_queue.hpp — a POSIX message queue (mq_open, mq_send, mq_receive, mq_unlink).
//
// A POSIX queue is a kernel-held queue of messages found by a name "/NAME". Each message keeps
// its boundaries and has a priority; a receive always takes the oldest message of the highest
// priority. Its size limits are fixed when it is created (`Attributes`): at most
// `max_messages` messages of at most `max_message_size` bytes each. Unlike a System V queue it
// is a file descriptor, so it can be waited on with poll/epoll beside sockets and pipes
// (`native_handle()`), and it is close-on-exec.
//
// Ownership: `create` makes a new queue exclusively (O_CREAT | O_EXCL, 0600 by default) and the
// object that created it unlinks the name when destroyed, unless `keep()` was called — and
// only in the creating process, so a forked child's copy never unlinks. Unlinking removes the
// name; processes that have the queue open keep using it until they close it. `open` attaches
// to an existing queue and never unlinks it.
//
// Waiting: `Deadline::never()` blocks in mq_send / mq_receive. `Deadline::immediate()` calls
// mq_timedsend / mq_timedreceive with a time already past, which the kernel treats exactly like
// O_NONBLOCK (`Status::would_block`) without changing the descriptor's flags, so other threads
// and processes sharing it are not affected. Any other deadline: those two calls take an
// absolute CLOCK_REALTIME time, which moves when the wall clock is set; so ipckit waits with
// poll(2) on the monotonic clock until the queue is readable (or writable) and then makes the
// non-blocking attempt, again if another receiver took the message first. A change of the
// wall clock therefore never shortens or lengthens a wait, and the cost is one poll per wait.
//
// A POSIX queue has no notion of a peer going away: unlinking it does not wake a waiter, so
// give receivers a deadline or a message that says "done". `receive`'s `wake_fd` (a peer's
// pidfd) ends a timed wait as soon as it polls readable: that is how the posixmq: channel's
// receiver learns of its sender's death without waking in slices.
//
// The limits come from /proc/sys/fs/mqueue (msg_max, msgsize_max, queues_max) and
// RLIMIT_MSGQUEUE; when creation exceeds one, the error names it, its value and how to raise
// it. /dev/mqueue need not be mounted: the kernel keeps queues without it (it is only a view).
//
// Example:
//     auto queue = ipckit::PosixQueue::create("/jobs", {.max_messages = 10, .max_message_size = 1024});
//     queue.send(ipckit::as_bytes("urgent"), 9);
//     std::vector<std::byte> buffer(queue.max_message_size());
//     auto r = queue.receive(buffer);
//     if (r.ok()) use(std::span(buffer).first(r.bytes), r.priority);
//
// Errors (ipckit::Error naming the call and the queue's name): a malformed name (quoted),
// a missing queue (ENOENT), no permission (EACCES), an existing name on create (EEXIST), a
// limit exceeded at creation, a message over the queue's max_message_size, and a receive
// buffer smaller than max_message_size (POSIX requires it; nothing is taken from the queue).
//
// Thread-safety: send and receive on one object may run from several threads at once;
// moving, `unlink`, `keep` and destruction must not race them.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "ipckit/deadline.hpp"
#include "ipckit/detail/owned.hpp"
#include "ipckit/fd.hpp"

namespace ipckit {

// Size limits of a queue, fixed at creation. 0 means the system's default
// (fs.mqueue.msg_default and fs.mqueue.msgsize_default: 10 messages of 8192 bytes).
struct PosixQueueAttributes {
    long max_messages = 0;
    long max_message_size = 0;
};

struct PosixReceiveResult {
    Status status = Status::ok;
    std::size_t bytes = 0;
    unsigned priority = 0;

    [[nodiscard]] bool ok() const noexcept { return status == Status::ok; }
};

// The system's limits, from /proc/sys/fs/mqueue (-1 where unreadable).
struct PosixQueueLimits {
    long msg_max = -1;          // largest max_messages for an unprivileged creator
    long msgsize_max = -1;      // largest max_message_size for an unprivileged creator
    long queues_max = -1;       // queues on the system (CAP_SYS_RESOURCE goes beyond)
    long msg_default = -1;      // max_messages when 0 is given
    long msgsize_default = -1;  // max_message_size when 0 is given
};

namespace detail {
// Unlinks (mq_unlink) a queue this process created: a forked child inherits a copy of the
// owner, and only the creating process unlinks.
struct MqUnlink {
    pid_t creator = 0;
    void operator()(const std::string& name) const noexcept;
};
}  // namespace detail

class PosixQueue {
public:
    using Attributes = PosixQueueAttributes;
    enum class Access { read, write, read_write };

    // A new queue, exclusively; unlinked by this object's destructor unless keep().
    [[nodiscard]] static PosixQueue create(std::string_view name, Attributes attributes = {},
                                           mode_t mode = 0600);
    // An existing queue; never unlinked by this object.
    [[nodiscard]] static PosixQueue open(std::string_view name, Access access = Access::read_write);
    // Removes a name (ENOENT is an error here: the caller named something that is not there).
    static void unlink(std::string_view name);
    // Throws the error `create`/`open` would give for a malformed name.
    static void check_name(std::string_view name);
    [[nodiscard]] static PosixQueueLimits limits();
    // The highest priority mq_send accepts (MQ_PRIO_MAX - 1; 32767 on Linux).
    [[nodiscard]] static unsigned max_priority();

    PosixQueue(PosixQueue&&) noexcept = default;
    PosixQueue& operator=(PosixQueue&&) noexcept = default;  // unlinks what it replaces, if owned
    PosixQueue(const PosixQueue&) = delete;
    PosixQueue& operator=(const PosixQueue&) = delete;
    ~PosixQueue() = default;  // unlinks the name, if owned

    // Sends one message with `priority` (0 to max_priority(); higher is received first).
    // `would_block` / `timed_out` when the queue stays full.
    [[nodiscard]] IoResult send(std::span<const std::byte> body, unsigned priority = 0,
                                Deadline deadline = Deadline::never()) const;
    // Takes the oldest message of the highest priority. `buffer` must hold max_message_size().
    // `wake_fd` (a pidfd, say) ends a wait early with `timed_out` once it polls readable and no
    // message is there: a caller's way to wait for a message or a peer's death at once.
    [[nodiscard]] PosixReceiveResult receive(std::span<std::byte> buffer,
                                             Deadline deadline = Deadline::never(), int wake_fd = -1) const;

    [[nodiscard]] Attributes attributes() const;
    [[nodiscard]] std::size_t message_count() const;
    [[nodiscard]] std::size_t max_message_size() const noexcept { return max_message_size_; }

    // Unlinks the name now (a name already gone is not an error); this object no longer owns it.
    void unlink();
    // This object will not unlink the name: the queue outlives the process.
    void keep() noexcept { name_.keep(); }
    [[nodiscard]] bool owns() const noexcept { return name_.owns(); }

    [[nodiscard]] const std::string& name() const noexcept { return name_.get(); }
    // The queue's descriptor, for poll/epoll: readable when a message is waiting, writable
    // when there is room. Use send/receive to move messages.
    [[nodiscard]] const Fd& fd() const noexcept { return fd_; }
    [[nodiscard]] int native_handle() const noexcept { return fd_.get(); }

private:
    PosixQueue(Fd fd, std::string name, bool owner);

    Fd fd_;
    detail::Owned<std::string, detail::MqUnlink> name_;
    std::size_t max_message_size_ = 0;
};

}  // namespace ipckit
