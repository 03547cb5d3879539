#include "ipckit/posix_queue.hpp"

#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <optional>
#include <type_traits>
#include <utility>

#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "kernel_limit.hpp"
#include "object_rules.hpp"

namespace ipckit {
namespace {

static_assert(std::is_same_v<mqd_t, int>, "on Linux a message queue descriptor is a file descriptor");

// What the kernel allows a creator with CAP_SYS_RESOURCE (ipc/mqueue.c, since Linux 3.5).
constexpr long kHardMsgMax = 65536;
constexpr long kHardMsgsizeMax = 16L * 1024 * 1024;

// A time already past: mq_timed* then fails at once with ETIMEDOUT instead of sleeping, which
// is O_NONBLOCK for this one call without touching the shared open file description.
constexpr timespec kAlreadyPast{0, 0};

std::string text(long value) {
    return std::to_string(value);
}

bool privileged_for_limits() {
    // CAP_SYS_RESOURCE lifts msg_max/msgsize_max to the hard limits; root normally has it.
    return ::geteuid() == 0;
}

[[noreturn]] void throw_create_error(int err, const std::string& name, const mq_attr* attr) {
    const auto code = std::error_code(err, std::system_category());
    const std::string prefix = "mq_open(" + name + "): ";
    const PosixQueueLimits limits = PosixQueue::limits();
    if (err == EINVAL && attr != nullptr) {
        const bool privileged = privileged_for_limits();
        const long msg_limit = privileged ? kHardMsgMax : limits.msg_max;
        const long size_limit = privileged ? kHardMsgsizeMax : limits.msgsize_max;
        if (msg_limit > 0 && attr->mq_maxmsg > msg_limit) {
            throw Error(code, prefix + "max_messages " + text(attr->mq_maxmsg) + " is over " +
                                  (privileged ? "the kernel's hard limit " + text(kHardMsgMax) +
                                                    " (fs.mqueue.msg_max = " + text(limits.msg_max) + ")"
                                              : "fs.mqueue.msg_max = " + text(limits.msg_max) +
                                                    "; raise it with sysctl fs.mqueue.msg_max=" +
                                                    text(attr->mq_maxmsg)));
        }
        if (size_limit > 0 && attr->mq_msgsize > size_limit) {
            throw Error(code,
                        prefix + "max_message_size " + text(attr->mq_msgsize) + " is over " +
                            (privileged ? "the kernel's hard limit " + text(kHardMsgsizeMax) +
                                              " (fs.mqueue.msgsize_max = " + text(limits.msgsize_max) + ")"
                                        : "fs.mqueue.msgsize_max = " + text(limits.msgsize_max) +
                                              "; raise it with sysctl fs.mqueue.msgsize_max=" +
                                              text(attr->mq_msgsize)));
        }
    }
    if (err == ENOSPC) {
        throw Error(code, prefix + "the system's limit on POSIX queues is reached (fs.mqueue.queues_max = " +
                              text(limits.queues_max) +
                              "); unlink unused queues or raise it with sysctl fs.mqueue.queues_max=...");
    }
    if (err == EMFILE) {
        rlimit files{}, queue_bytes{};
        ::getrlimit(RLIMIT_NOFILE, &files);
        ::getrlimit(RLIMIT_MSGQUEUE, &queue_bytes);
        const auto shown = [](rlim_t v) {
            return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v);
        };
        std::string message =
            prefix + "either this process has no descriptor left (RLIMIT_NOFILE = " + shown(files.rlim_cur) +
            ", ulimit -n) or this user's queues would use more than " +
            "RLIMIT_MSGQUEUE = " + shown(queue_bytes.rlim_cur) + " bytes (ulimit -q)";
        if (attr != nullptr)
            message += "; this queue needs about " + text(attr->mq_maxmsg) + " x " + text(attr->mq_msgsize) +
                       " bytes plus overhead";
        throw Error(code, message);
    }
    throw_errno("mq_open", name, err);
}

}  // namespace

// ---- names and limits ----

void PosixQueue::check_name(std::string_view name) {
    detail::check_posix_name(name, detail::PosixObject::queue);
}

PosixQueueLimits PosixQueue::limits() {
    const auto read = [](const char* path) {
        return static_cast<long>(detail::read_kernel_limit(path).value_or(-1));
    };
    PosixQueueLimits limits;
    limits.msg_max = read("/proc/sys/fs/mqueue/msg_max");
    limits.msgsize_max = read("/proc/sys/fs/mqueue/msgsize_max");
    limits.queues_max = read("/proc/sys/fs/mqueue/queues_max");
    limits.msg_default = read("/proc/sys/fs/mqueue/msg_default");
    limits.msgsize_default = read("/proc/sys/fs/mqueue/msgsize_default");
    return limits;
}

unsigned PosixQueue::max_priority() {
    const long prio_max = ::sysconf(_SC_MQ_PRIO_MAX);
    return prio_max > 0 ? static_cast<unsigned>(prio_max - 1) : 31u;  // POSIX guarantees at least 32
}

// ---- lifetime ----

PosixQueue::PosixQueue(Fd fd, std::string name, bool owner)
    : fd_(std::move(fd)), name_(std::move(name), owner, detail::MqUnlink{owner ? ::getpid() : 0}) {
    mq_attr attr{};
    // On a throw, name_ is destroyed and unlinks the name if owned.
    if (::mq_getattr(fd_.get(), &attr) != 0) throw_errno("mq_getattr", name_.get(), errno);
    max_message_size_ = static_cast<std::size_t>(attr.mq_msgsize);
}

void detail::MqUnlink::operator()(const std::string& name) const noexcept {
    if (creator == ::getpid()) ::mq_unlink(name.c_str());
}

PosixQueue PosixQueue::create(std::string_view name, Attributes attributes, mode_t mode) {
    check_name(name);
    std::string path(name);
    if (attributes.max_messages < 0 || attributes.max_message_size < 0)
        throw_error(std::errc::invalid_argument,
                    "mq_open(" + path + "): max_messages " + text(attributes.max_messages) +
                        " and max_message_size " + text(attributes.max_message_size) + " must be positive");
    detail::check_mode(mode, "mq_open", path);
    mq_attr attr{};
    mq_attr* attr_arg = nullptr;
    if (attributes.max_messages != 0 || attributes.max_message_size != 0) {
        // mq_open takes both or neither; fill the one left at 0 with the system's default.
        const auto defaults = limits();
        attr.mq_maxmsg = attributes.max_messages != 0
                             ? attributes.max_messages
                             : (defaults.msg_default > 0 ? defaults.msg_default : 10);
        attr.mq_msgsize = attributes.max_message_size != 0
                              ? attributes.max_message_size
                              : (defaults.msgsize_default > 0 ? defaults.msgsize_default : 8192);
        attr_arg = &attr;
    }
    const int fd = ::mq_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode, attr_arg);
    if (fd < 0) throw_create_error(errno, path, attr_arg);
    return PosixQueue(Fd(fd), std::move(path), true);
}

PosixQueue PosixQueue::open(std::string_view name, Access access) {
    check_name(name);
    std::string path(name);
    const int flags = access == Access::read ? O_RDONLY : access == Access::write ? O_WRONLY : O_RDWR;
    const int fd = ::mq_open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) throw_errno("mq_open", path);
    return PosixQueue(Fd(fd), std::move(path), false);
}

void PosixQueue::unlink(std::string_view name) {
    check_name(name);
    const std::string path(name);
    if (::mq_unlink(path.c_str()) != 0) throw_errno("mq_unlink", path);
}

void PosixQueue::unlink() {
    if (name().empty()) return;
    if (::mq_unlink(name().c_str()) != 0 && errno != ENOENT) throw_errno("mq_unlink", name());
    name_.keep();
}

// ---- status ----

PosixQueue::Attributes PosixQueue::attributes() const {
    mq_attr attr{};
    if (::mq_getattr(fd_.get(), &attr) != 0) throw_errno("mq_getattr", name());
    return {attr.mq_maxmsg, attr.mq_msgsize};
}

std::size_t PosixQueue::message_count() const {
    mq_attr attr{};
    if (::mq_getattr(fd_.get(), &attr) != 0) throw_errno("mq_getattr", name());
    return static_cast<std::size_t>(attr.mq_curmsgs);
}

// ---- send and receive ----

IoResult PosixQueue::send(std::span<const std::byte> body, unsigned priority, Deadline deadline) const {
    if (priority > max_priority())
        throw_error(std::errc::invalid_argument, "mq_send(" + name() + "): priority " +
                                                     std::to_string(priority) + " is over the highest, " +
                                                     std::to_string(max_priority()));
    const auto* data = reinterpret_cast<const char*>(body.data());

    // One attempt; nullopt means the queue is full right now.
    const auto attempt = [&](bool wait) -> std::optional<IoResult> {
        for (;;) {
            const int r = wait ? ::mq_send(fd_.get(), data, body.size(), priority)
                               : ::mq_timedsend(fd_.get(), data, body.size(), priority, &kAlreadyPast);
            if (r == 0) return IoResult{Status::ok, body.size()};
            const int err = errno;
            if (err == EINTR) continue;
            if (err == ETIMEDOUT || err == EAGAIN) return std::nullopt;
            if (err == EMSGSIZE) {
                const auto limits = PosixQueue::limits();
                throw Error(std::make_error_code(std::errc::message_size),
                            "mq_send(" + name() + "): a message of " + std::to_string(body.size()) +
                                " bytes is over this queue's max_message_size = " +
                                std::to_string(max_message_size_) +
                                " (fixed when the queue was created; fs.mqueue.msgsize_max = " +
                                text(limits.msgsize_max) + ")");
            }
            throw_errno("mq_send", name(), err);
        }
    };

    if (deadline.is_never()) {
        if (auto done = attempt(true)) return *done;
        throw_errno("mq_send", name(), EAGAIN);  // a blocking descriptor does not give EAGAIN
    }
    for (;;) {
        if (auto done = attempt(false)) return *done;
        if (deadline.is_immediate()) return {Status::would_block, 0};
        // Room may be taken by another sender between the poll and the attempt: then wait again.
        const Status ready = wait_writable(fd_.get(), deadline, name());
        if (ready != Status::ok) return {ready, 0};
    }
}

namespace {

// Waits until `fd` is readable (ok), or `wake_fd` is (timed_out, as at the deadline).
Status wait_readable_or_woken(int fd, int wake_fd, Deadline deadline, const std::string& object) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    for (;;) {
        const int n = ::poll(fds, 2, deadline.poll_timeout_ms());
        if (n > 0) return fds[0].revents != 0 ? Status::ok : Status::timed_out;
        if (n == 0) return Status::timed_out;
        if (errno != EINTR) throw_errno("poll", object);
        if (deadline.expired()) return Status::timed_out;
    }
}

}  // namespace

PosixReceiveResult PosixQueue::receive(std::span<std::byte> buffer, Deadline deadline, int wake_fd) const {
    auto* data = reinterpret_cast<char*>(buffer.data());

    // One attempt; nullopt means the queue is empty right now.
    const auto attempt = [&](bool wait) -> std::optional<PosixReceiveResult> {
        for (;;) {
            unsigned priority = 0;
            const ssize_t n =
                wait ? ::mq_receive(fd_.get(), data, buffer.size(), &priority)
                     : ::mq_timedreceive(fd_.get(), data, buffer.size(), &priority, &kAlreadyPast);
            if (n >= 0) return PosixReceiveResult{Status::ok, static_cast<std::size_t>(n), priority};
            const int err = errno;
            if (err == EINTR) continue;
            if (err == ETIMEDOUT || err == EAGAIN) return std::nullopt;
            if (err == EMSGSIZE) {
                throw Error(std::make_error_code(std::errc::message_size),
                            "mq_receive(" + name() + "): the " + std::to_string(buffer.size()) +
                                "-byte buffer is smaller than this queue's max_message_size = " +
                                std::to_string(max_message_size_) +
                                "; POSIX queues need room for their largest message, so nothing was taken "
                                "from the queue. Receive into max_message_size() bytes");
            }
            throw_errno("mq_receive", name(), err);
        }
    };

    if (deadline.is_never() && wake_fd < 0) {
        if (auto done = attempt(true)) return *done;
        throw_errno("mq_receive", name(), EAGAIN);  // a blocking descriptor does not give EAGAIN
    }
    for (;;) {
        if (auto done = attempt(false)) return *done;
        if (deadline.is_immediate()) return {Status::would_block, 0, 0};
        // Another receiver may take the message between the poll and the attempt: then wait again.
        const Status ready = wake_fd < 0 ? wait_readable(fd_.get(), deadline, name())
                                         : wait_readable_or_woken(fd_.get(), wake_fd, deadline, name());
        if (ready != Status::ok) return {ready, 0, 0};
    }
}

}  // namespace ipckit
