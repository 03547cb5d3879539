// ipckit/sysv_queue.hpp — a System V message queue (msgget, msgsnd, msgrcv, msgctl).
//
// A System V queue is a kernel-held list of typed messages found by a key (see SysvKey).
// Each message keeps its boundaries and carries a positive `long` type; a receiver picks the
// next message by type (TypeSelector), so one queue can carry several streams. Every message
// is copied twice, into the kernel on send and out of it on receive, and is gone once read.
//
// Ownership: `create` makes a new queue exclusively (IPC_CREAT | IPC_EXCL, 0600 by default)
// and the object that created it removes it (IPC_RMID) when destroyed, unless `keep()` was
// called — and only in the creating process, so a forked child's copy never removes it.
// `open` attaches to an existing queue and never removes it.
//
// Waiting: `Deadline::never()` blocks in the kernel, `Deadline::immediate()` is IPC_NOWAIT
// (an empty or full queue gives `Status::would_block`). The kernel has no timed msgsnd or
// msgrcv, so any other deadline blocks in the kernel too and is delivered as a signal: a thread
// of ipckit's (one per process, asleep until a deadline) interrupts the call with SIGRTMAX-3,
// whose handler does nothing, and the call gives `timed_out`. An idle timed wait wakes nobody.
// The call may end up to 2 ms after its deadline. A program that handles SIGRTMAX-3 itself
// keeps it: ipckit then polls with IPC_NOWAIT, 20 µs apart at first and up to 2 ms (about 500
// wake-ups a second while idle). `wake_fd` (a pidfd, say) ends a wait early with `timed_out`
// once it polls readable: a caller's way to wait for a message or a peer's death at once.
//
// Closed: a queue removed while a receiver or sender waits, or before the call, gives
// `Status::closed`: nothing more will come through it.
//
// Example:
//     auto queue = ipckit::SysvQueue::create(ipckit::SysvKey::parse("0x1234"));
//     queue.send(2, ipckit::as_bytes("hello"));                      // type 2
//     std::array<std::byte, 8192> buffer;
//     auto r = queue.receive(ipckit::TypeSelector::exactly(2), buffer);
//     if (r.ok()) use(std::span(buffer).first(r.bytes), r.type);
//
// Errors (ipckit::Error, naming the call and the key): a missing key (ENOENT), no permission
// (EACCES), an existing key on create (EEXIST), a message over `kernel.msgmax` or over the
// queue's byte capacity (msg_qbytes, from `kernel.msgmnb`) — the message says which limit and
// how to raise it — and a receive buffer too small for the next message (the message stays
// in the queue; pass `Truncation::allowed` to take the first bytes instead, MSG_NOERROR).
//
// Thread-safety: send and receive on one object may run from several threads at once (they
// keep no state in the object); moving, `remove`, `keep` and destruction must not race them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <span>
#include <string>

#include "ipckit/deadline.hpp"
#include "ipckit/detail/owned.hpp"
#include "ipckit/sysv_key.hpp"

namespace ipckit {

// Which message msgrcv takes, exactly as msgrcv(2) defines its `msgtyp` argument.
class TypeSelector {
public:
    // The first message of any type (msgtyp 0): plain FIFO order.
    [[nodiscard]] static constexpr TypeSelector any() noexcept { return TypeSelector(0, false); }
    // The first message of type `type` (> 0).
    [[nodiscard]] static TypeSelector exactly(long type);
    // The first message of the lowest type not above `type` (> 0): msgtyp = -type. A way to
    // serve low types first (urgent before normal).
    [[nodiscard]] static TypeSelector lowest_up_to(long type);
    // The first message whose type is not `type` (> 0): MSG_EXCEPT.
    [[nodiscard]] static TypeSelector except(long type);
    // From msgrcv's own number: 0 any, N > 0 exactly N, N < 0 lowest up to |N|.
    [[nodiscard]] static TypeSelector from_msgtyp(long msgtyp);

    [[nodiscard]] long msgtyp() const noexcept { return msgtyp_; }
    [[nodiscard]] bool is_except() const noexcept { return except_; }
    // "any type", "type 3", "lowest type <= 3", "any type but 3".
    [[nodiscard]] std::string to_string() const;

    friend bool operator==(TypeSelector, TypeSelector) = default;

private:
    constexpr TypeSelector(long msgtyp, bool except) noexcept : msgtyp_(msgtyp), except_(except) {}
    long msgtyp_;
    bool except_;
};

struct SysvReceiveResult {
    Status status = Status::ok;
    std::size_t bytes = 0;  // length of the message's body
    long type = 0;          // the message's type, when ok

    [[nodiscard]] bool ok() const noexcept { return status == Status::ok; }
};

// What IPC_STAT reports about a queue.
struct SysvQueueStatus {
    std::size_t messages = 0;        // msg_qnum
    std::size_t bytes = 0;           // msg_cbytes: bytes of message bodies in the queue
    std::size_t capacity_bytes = 0;  // msg_qbytes: the most the queue holds
    pid_t last_sender = 0;           // msg_lspid (0: nobody has sent yet)
    pid_t last_receiver = 0;         // msg_lrpid
    uid_t owner_uid = 0;
    gid_t owner_gid = 0;
    uid_t creator_uid = 0;
    mode_t mode = 0;  // permission bits (e.g. 0600)
    std::chrono::system_clock::time_point last_send, last_receive, last_change;
};

namespace detail {
// Removes (IPC_RMID) a queue this process created: a forked child inherits a copy of the owner,
// and only the creating process removes.
struct SysvQueueRemove {
    pid_t creator = 0;
    void operator()(int id) const noexcept;
    static int empty() noexcept { return -1; }
};
}  // namespace detail

class SysvQueue {
public:
    // What `open` asks the kernel to check (msgget's requested permissions).
    enum class Access { read, write, read_write };
    // Whether a receive may cut a message to fit the buffer (MSG_NOERROR). The cut part is lost.
    enum class Truncation { refused, allowed };

    // A new queue, exclusively; removed by this object's destructor unless keep().
    // With SysvKey::private_key() the queue has no key: pass id() to the other side.
    [[nodiscard]] static SysvQueue create(const SysvKey& key, mode_t mode = 0600);
    // An existing queue by key; never removed by this object.
    [[nodiscard]] static SysvQueue open(const SysvKey& key, Access access = Access::read_write);
    // An existing queue by its id (as `ipcs -q` shows it, or a private queue's id).
    [[nodiscard]] static SysvQueue open_id(int id);

    SysvQueue(SysvQueue&&) noexcept = default;
    SysvQueue& operator=(SysvQueue&&) noexcept = default;  // removes what it replaces, if owned
    SysvQueue(const SysvQueue&) = delete;
    SysvQueue& operator=(const SysvQueue&) = delete;
    ~SysvQueue() = default;  // removes the queue, if owned

    // Sends one message of `type` (> 0). `would_block` / `timed_out` when the queue stays full
    // (or `wake_fd` polled readable), `closed` when the queue was removed. A message that can
    // never fit throws (see above).
    [[nodiscard]] IoResult send(long type, std::span<const std::byte> body,
                                Deadline deadline = Deadline::never(), int wake_fd = -1) const;
    // Takes the next message that `selector` picks into `buffer`; `timed_out` also once
    // `wake_fd` polls readable.
    [[nodiscard]] SysvReceiveResult receive(TypeSelector selector, std::span<std::byte> buffer,
                                            Deadline deadline = Deadline::never(),
                                            Truncation truncation = Truncation::refused,
                                            int wake_fd = -1) const;

    // The largest message the kernel accepts: kernel.msgmax (/proc/sys/kernel/msgmax).
    [[nodiscard]] static std::size_t max_message_size();

    [[nodiscard]] SysvQueueStatus stat() const;
    // Changes the permission bits (IPC_SET); needs to be the owner or creator.
    void set_mode(mode_t mode) const;
    // Changes the byte capacity (msg_qbytes). Lowering it is always allowed to the owner;
    // raising it above kernel.msgmnb needs CAP_SYS_RESOURCE.
    void set_capacity(std::size_t bytes) const;
    // Removes the queue now: waiting receivers and senders get `closed`. A queue already gone
    // is not an error. Afterwards this object owns nothing.
    void remove();
    // This object will not remove the queue: it outlives the process.
    void keep() noexcept { id_.keep(); }
    [[nodiscard]] bool owns() const noexcept { return id_.owns(); }

    [[nodiscard]] int id() const noexcept { return id_; }
    [[nodiscard]] const SysvKey& key() const noexcept { return key_; }
    // How errors name this queue: "key 0x1234", or "queue id 32769" for a private queue.
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

private:
    SysvQueue(int id, SysvKey key, bool owner);
    [[noreturn]] void throw_send_too_large(std::size_t size) const;
    [[nodiscard]] bool exists() const noexcept;

    detail::Owned<int, detail::SysvQueueRemove> id_;  // -1 when moved from
    SysvKey key_;
    std::string name_;
};

}  // namespace ipckit
