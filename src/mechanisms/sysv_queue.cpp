#include "ipckit/sysv_queue.hpp"

#include <poll.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "core/backoff.hpp"
#include "ipckit/error.hpp"
#include "kernel_limit.hpp"
#include "object_rules.hpp"
#include "wake_alarm.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

constexpr const char* kMsgmaxPath = "/proc/sys/kernel/msgmax";
constexpr const char* kMsgmnbPath = "/proc/sys/kernel/msgmnb";
constexpr const char* kMsgmniPath = "/proc/sys/kernel/msgmni";

// msgsnd and msgrcv want the type in front of the body, in one buffer. Messages up to the
// default kernel.msgmax live on the stack; larger ones (a raised msgmax) cost an allocation.
class MessageBuffer {
public:
    static constexpr std::size_t kInlineBody = 8192;

    explicit MessageBuffer(std::size_t body_size) {
        if (body_size > kInlineBody) {
            heap_ = std::make_unique<std::byte[]>(sizeof(long) + body_size);  // new[] aligns for long
            data_ = heap_.get();
        }
    }
    MessageBuffer(const MessageBuffer&) = delete;
    MessageBuffer& operator=(const MessageBuffer&) = delete;

    [[nodiscard]] void* data() noexcept { return data_; }
    [[nodiscard]] long type() const noexcept {
        long type = 0;
        std::memcpy(&type, data_, sizeof type);
        return type;
    }
    void set_type(long type) noexcept { std::memcpy(data_, &type, sizeof type); }
    [[nodiscard]] std::byte* body() noexcept { return data_ + sizeof(long); }

private:
    alignas(long) std::byte inline_[sizeof(long) + kInlineBody];
    std::unique_ptr<std::byte[]> heap_;
    std::byte* data_ = inline_;
};

void check_type(long type, const std::string& name) {
    if (type < 1)
        throw_error(std::errc::invalid_argument, "msgsnd(" + name + "): message type " +
                                                     std::to_string(type) +
                                                     " is not allowed; System V message types start at 1");
}

std::string queue_name(const SysvKey& key, int id) {
    if (key.is_private()) return "queue id " + std::to_string(id);
    return key.to_string();
}

std::chrono::system_clock::time_point from_time_t(time_t t) {
    return std::chrono::system_clock::from_time_t(t);
}

// The fallback's wake-up by `fd` (no alarm): it polls readable.
bool readable(int fd) {
    if (fd < 0) return false;
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
}

// errno values that mean "this id no longer names a queue".
bool removed_errno(int err) {
    return err == EIDRM || err == EINVAL;
}

}  // namespace

// ---- TypeSelector ----

TypeSelector TypeSelector::exactly(long type) {
    if (type < 1)
        throw_error(std::errc::invalid_argument,
                    "TypeSelector::exactly(" + std::to_string(type) + "): message types start at 1");
    return TypeSelector(type, false);
}

TypeSelector TypeSelector::lowest_up_to(long type) {
    if (type < 1)
        throw_error(std::errc::invalid_argument,
                    "TypeSelector::lowest_up_to(" + std::to_string(type) + "): message types start at 1");
    return TypeSelector(-type, false);
}

TypeSelector TypeSelector::except(long type) {
    // msgrcv ignores MSG_EXCEPT with msgtyp 0 and reads a negative one as "up to": refuse both.
    if (type < 1)
        throw_error(std::errc::invalid_argument,
                    "TypeSelector::except(" + std::to_string(type) + "): message types start at 1");
    return TypeSelector(type, true);
}

TypeSelector TypeSelector::from_msgtyp(long msgtyp) {
    if (msgtyp == std::numeric_limits<long>::min())
        throw_error(std::errc::invalid_argument,
                    "TypeSelector::from_msgtyp: " + std::to_string(msgtyp) + " has no positive counterpart");
    return TypeSelector(msgtyp, false);
}

std::string TypeSelector::to_string() const {
    if (msgtyp_ == 0) return "any type";
    if (except_) return "any type but " + std::to_string(msgtyp_);
    if (msgtyp_ > 0) return "type " + std::to_string(msgtyp_);
    return "lowest type <= " + std::to_string(-msgtyp_);
}

// ---- SysvQueue: lifetime ----

SysvQueue::SysvQueue(int id, SysvKey key, bool owner)
    : id_(id, owner, detail::SysvQueueRemove{owner ? ::getpid() : 0}),
      key_(std::move(key)),
      name_(queue_name(key_, id)) {}

void detail::SysvQueueRemove::operator()(int id) const noexcept {
    if (creator == ::getpid() && id >= 0) ::msgctl(id, IPC_RMID, nullptr);
}

SysvQueue SysvQueue::create(const SysvKey& key, mode_t mode) {
    detail::check_mode(mode, "msgget", key.to_string());
    const int id = ::msgget(key.value(), IPC_CREAT | IPC_EXCL | static_cast<int>(mode));
    if (id < 0) {
        const int err = errno;
        if (err == ENOSPC) {
            throw Error(
                std::error_code(err, std::system_category()),
                "msgget(" + key.to_string() + "): the system's limit on message queues is reached (" +
                    "kernel.msgmni = " + detail::limit_text(detail::read_kernel_limit(kMsgmniPath)) +
                    "); remove unused queues (ipcs -q, ipcrm) or raise it with sysctl kernel.msgmni=...");
        }
        throw_errno("msgget", key.to_string(), err);
    }
    return SysvQueue(id, key, true);
}

SysvQueue SysvQueue::open(const SysvKey& key, Access access) {
    if (key.is_private())
        throw_error(std::errc::invalid_argument,
                    "msgget(private key): a private queue has no key to open it by; use SysvQueue::open_id");
    // Without IPC_CREAT the mode bits are the permissions asked for, so a queue we may not use
    // is refused here (EACCES) rather than at the first send or receive.
    const int wanted = access == Access::read ? 0400 : access == Access::write ? 0200 : 0600;
    const int id = ::msgget(key.value(), wanted);
    if (id < 0) throw_errno("msgget", key.to_string());
    return SysvQueue(id, key, false);
}

SysvQueue SysvQueue::open_id(int id) {
    const std::string name = "queue id " + std::to_string(id);
    if (id < 0) throw_errno("msgctl(IPC_STAT)", name, EINVAL);
    msqid_ds ds{};
    if (::msgctl(id, IPC_STAT, &ds) != 0) {
        // EACCES: the queue exists but we may not read its status; it may still be writable.
        if (errno != EACCES) throw_errno("msgctl(IPC_STAT)", name);
        return SysvQueue(id, SysvKey::private_key(), false);
    }
    const key_t key = ds.msg_perm.__key;
    return SysvQueue(id, key == IPC_PRIVATE ? SysvKey::private_key() : SysvKey::explicit_key(key), false);
}

void SysvQueue::remove() {
    if (id_ < 0) return;
    if (::msgctl(id_, IPC_RMID, nullptr) != 0 && !removed_errno(errno))
        throw_errno("msgctl(IPC_RMID)", name_);
    id_.keep();
}

// ---- SysvQueue: status ----

bool SysvQueue::exists() const noexcept {
    msqid_ds ds{};
    return ::msgctl(id_, IPC_STAT, &ds) == 0 || !removed_errno(errno);
}

SysvQueueStatus SysvQueue::stat() const {
    msqid_ds ds{};
    if (::msgctl(id_, IPC_STAT, &ds) != 0) throw_errno("msgctl(IPC_STAT)", name_);
    SysvQueueStatus status;
    status.messages = ds.msg_qnum;
    status.bytes = ds.__msg_cbytes;
    status.capacity_bytes = ds.msg_qbytes;
    status.last_sender = ds.msg_lspid;
    status.last_receiver = ds.msg_lrpid;
    status.owner_uid = ds.msg_perm.uid;
    status.owner_gid = ds.msg_perm.gid;
    status.creator_uid = ds.msg_perm.cuid;
    status.mode = ds.msg_perm.mode & 0777;
    status.last_send = from_time_t(ds.msg_stime);
    status.last_receive = from_time_t(ds.msg_rtime);
    status.last_change = from_time_t(ds.msg_ctime);
    return status;
}

void SysvQueue::set_mode(mode_t mode) const {
    detail::check_mode(mode, "msgctl(IPC_SET)", name_);
    msqid_ds ds{};
    if (::msgctl(id_, IPC_STAT, &ds) != 0) throw_errno("msgctl(IPC_STAT)", name_);
    ds.msg_perm.mode = static_cast<unsigned short>((ds.msg_perm.mode & ~0777u) | mode);
    if (::msgctl(id_, IPC_SET, &ds) != 0) throw_errno("msgctl(IPC_SET)", name_);
}

void SysvQueue::set_capacity(std::size_t bytes) const {
    msqid_ds ds{};
    if (::msgctl(id_, IPC_STAT, &ds) != 0) throw_errno("msgctl(IPC_STAT)", name_);
    ds.msg_qbytes = static_cast<msglen_t>(bytes);
    if (::msgctl(id_, IPC_SET, &ds) != 0) {
        const int err = errno;
        if (err == EPERM && bytes > ds.msg_qbytes) {
            throw Error(std::error_code(err, std::system_category()),
                        "msgctl(IPC_SET) on " + name_ + ": raising the capacity to " + std::to_string(bytes) +
                            " bytes, above kernel.msgmnb = " +
                            detail::limit_text(detail::read_kernel_limit(kMsgmnbPath)) +
                            ", needs CAP_SYS_RESOURCE; or raise it with sysctl kernel.msgmnb=" +
                            std::to_string(bytes));
        }
        throw_errno("msgctl(IPC_SET)", name_, err);
    }
}

std::size_t SysvQueue::max_message_size() {
    const auto msgmax = detail::read_kernel_limit(kMsgmaxPath);
    if (!msgmax) throw_errno("read", kMsgmaxPath, errno != 0 ? errno : EIO);
    return static_cast<std::size_t>(*msgmax);
}

// ---- SysvQueue: send and receive ----

void SysvQueue::throw_send_too_large(std::size_t size) const {
    const auto msgmax = detail::read_kernel_limit(kMsgmaxPath);
    const std::string sz = std::to_string(size);
    const auto code = std::make_error_code(std::errc::message_size);
    if (msgmax && static_cast<long long>(size) > *msgmax) {
        throw Error(code, "msgsnd(" + name_ + "): a message of " + sz + " bytes is over kernel.msgmax = " +
                              std::to_string(*msgmax) + "; raise it with sysctl kernel.msgmax=" + sz);
    }
    throw Error(code, "msgsnd(" + name_ + "): a message of " + sz +
                          " bytes can never fit in this queue, which holds at most " +
                          std::to_string(stat().capacity_bytes) +
                          " bytes (msg_qbytes, set from kernel.msgmnb = " +
                          detail::limit_text(detail::read_kernel_limit(kMsgmnbPath)) +
                          " when the queue was created); raise it with sysctl kernel.msgmnb=" + sz +
                          " before creating the queue, or with SysvQueue::set_capacity");
}

IoResult SysvQueue::send(long type, std::span<const std::byte> body, Deadline deadline, int wake_fd) const {
    check_type(type, name_);
    MessageBuffer message(body.size());
    message.set_type(type);
    if (!body.empty()) std::memcpy(message.body(), body.data(), body.size());

    // One attempt; nullopt means the queue is full right now (or, blocking, the alarm rang).
    const auto attempt = [&](int flags, const detail::WakeAlarm* alarm = nullptr) -> std::optional<IoResult> {
        for (;;) {
            if (::msgsnd(id_, message.data(), body.size(), flags) == 0)
                return IoResult{Status::ok, body.size()};
            const int err = errno;
            if (err == EINTR) {
                if (alarm != nullptr && alarm->rang()) return std::nullopt;
                continue;
            }
            if (err == EAGAIN) return std::nullopt;
            if (err == EIDRM) return IoResult{Status::closed, 0};
            if (err == EINVAL) {
                // EINVAL is both "too big for kernel.msgmax" and "no such queue (removed)".
                const auto msgmax = detail::read_kernel_limit(kMsgmaxPath);
                if (msgmax && static_cast<long long>(body.size()) > *msgmax)
                    throw_send_too_large(body.size());
                if (!exists()) return IoResult{Status::closed, 0};
            }
            throw_errno("msgsnd", name_, err);
        }
    };

    if (auto done = attempt(IPC_NOWAIT)) return *done;
    // The queue is full. A message bigger than the whole queue never fits, and a blocking msgsnd
    // would wait for it forever; check before waiting (this costs a syscall only on this slow path).
    msqid_ds ds{};
    if (::msgctl(id_, IPC_STAT, &ds) == 0) {
        if (body.size() > ds.msg_qbytes) throw_send_too_large(body.size());
    } else if (removed_errno(errno)) {
        return {Status::closed, 0};
    }
    if (deadline.is_immediate()) return {Status::would_block, 0};
    if (deadline.is_never() && wake_fd < 0) {
        if (auto done = attempt(0)) return *done;
        throw_errno("msgsnd", name_, EAGAIN);  // a blocking msgsnd does not return EAGAIN
    }
    // Blocks in the kernel; the alarm interrupts it at the deadline or when wake_fd is readable.
    if (const detail::WakeAlarm alarm(deadline, wake_fd); alarm.armed()) {
        if (auto done = attempt(0, &alarm)) return *done;
        return {Status::timed_out, 0};
    }
    for (auto backoff = detail::Backoff::for_message(); !readable(wake_fd) && backoff.pause(deadline);) {
        if (auto done = attempt(IPC_NOWAIT)) return *done;
    }
    return {Status::timed_out, 0};
}

SysvReceiveResult SysvQueue::receive(TypeSelector selector, std::span<std::byte> buffer, Deadline deadline,
                                     Truncation truncation, int wake_fd) const {
    MessageBuffer message(buffer.size());
    const int base_flags =
        (selector.is_except() ? MSG_EXCEPT : 0) | (truncation == Truncation::allowed ? MSG_NOERROR : 0);

    // One attempt; nullopt means no message that the selector picks is there right now (or,
    // blocking, the alarm rang).
    const auto attempt = [&](int flags,
                             const detail::WakeAlarm* alarm = nullptr) -> std::optional<SysvReceiveResult> {
        for (;;) {
            const ssize_t n =
                ::msgrcv(id_, message.data(), buffer.size(), selector.msgtyp(), base_flags | flags);
            if (n >= 0) {
                const auto size = static_cast<std::size_t>(n);
                if (size != 0) std::memcpy(buffer.data(), message.body(), size);
                return SysvReceiveResult{Status::ok, size, message.type()};
            }
            const int err = errno;
            if (err == EINTR) {
                if (alarm != nullptr && alarm->rang()) return std::nullopt;
                continue;
            }
            if (err == ENOMSG) return std::nullopt;
            if (err == EIDRM || (err == EINVAL && !exists())) return SysvReceiveResult{Status::closed, 0, 0};
            if (err == E2BIG) {
                throw Error(std::make_error_code(std::errc::message_size),
                            "msgrcv(" + name_ + "): the next message of " + selector.to_string() +
                                " is larger than the " + std::to_string(buffer.size()) +
                                "-byte buffer; it stays in the queue. Receive into a buffer of "
                                "max_message_size() bytes (kernel.msgmax = " +
                                detail::limit_text(detail::read_kernel_limit(kMsgmaxPath)) +
                                "), or allow truncation");
            }
            throw_errno("msgrcv", name_, err);
        }
    };

    if (deadline.is_never() && wake_fd < 0) {
        if (auto done = attempt(0)) return *done;
        throw_errno("msgrcv", name_, ENOMSG);  // a blocking msgrcv does not return ENOMSG
    }
    if (auto done = attempt(IPC_NOWAIT)) return *done;
    if (deadline.is_immediate()) return {Status::would_block, 0, 0};
    // Blocks in the kernel; the alarm interrupts it at the deadline or when wake_fd is readable.
    if (const detail::WakeAlarm alarm(deadline, wake_fd); alarm.armed()) {
        if (auto done = attempt(0, &alarm)) return *done;
        return {Status::timed_out, 0, 0};
    }
    for (auto backoff = detail::Backoff::for_message(); !readable(wake_fd) && backoff.pause(deadline);) {
        if (auto done = attempt(IPC_NOWAIT)) return *done;
    }
    return {Status::timed_out, 0, 0};
}

}  // namespace ipckit
