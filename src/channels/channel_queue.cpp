// Message-queue transports (sysvmq:, posixmq:): the kernel keeps message boundaries.
//
// A message queue has no connection, so the channel finds a dead peer another way: is the
// queue empty, and is the process that sent last gone? Then nothing more will come: `closed`.
// System V records that process (msg_lspid); a POSIX queue does not, so ipckit puts a small
// header before each POSIX message with the sender's pid, and a clean close sends an
// end-of-stream marker. A waiting call watches that process's pidfd, so its death ends the wait
// at once; only where there is none (a System V peer in another PID namespace, a kernel without
// pidfds, a POSIX sender waiting for room, whose receivers are flocks) does it sleep in slices
// and ask between them. A POSIX sender in another PID namespace is not watched at all: its pid
// names nobody here, so its end marker or the deadline ends the wait.
//
// System V messages carry no header, so a sysvmq: channel talks to any program that uses
// msgsnd/msgrcv with the same message type (type=N, 1 by default).
#include <mqueue.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "channel_backend.hpp"
#include "core/backoff.hpp"
#include "ipckit/error.hpp"
#include "ipckit/posix_queue.hpp"
#include "ipckit/process.hpp"
#include "ipckit/sysv_key.hpp"
#include "ipckit/sysv_queue.hpp"

namespace ipckit::detail {
namespace {

using namespace std::chrono_literals;

// How long one wait lasts before the peer's liveness is checked again: the bound on how late
// a dead peer is noticed.
constexpr auto kLivenessSlice = 50ms;
// How long a creating sender waits, when it goes away with a receiver present, for that
// receiver to drain the queue. Whatever is still queued then (or at once, when no receiver is
// there) is data: the queue stays for a later receiver instead of being removed with it.
constexpr auto kDrainLinger = 2s;
// System V shows a receiver only once it has taken a message: one that is polling the queue
// takes the first within its back-off (2 ms), so this long without a taker means none is there.
constexpr auto kFirstTakerGrace = 100ms;
// How long a System V receiver polls, yielding, before it falls back to sleeping.
constexpr auto kSpinBeforeSleep = 50us;

// The queues name their peer by PID alone (msg_lspid, msg_lrpid, the POSIX header). A watch
// taken when a PID is first seen pins that process (a pidfd), so a later process that reuses
// the PID is not mistaken for it; a zombie counts as gone (ipckit/process.hpp).
class PeerWatch {
public:
    // False while there is no peer yet (PID 0).
    bool gone(pid_t pid) { return pid > 0 && watch(pid).gone(); }
    // A descriptor that polls readable when `pid` ends (its pidfd), -1 for none (no peer yet,
    // or none the kernel gives: a process in another PID namespace, or already gone).
    int fd_of(pid_t pid) {
        if (pid <= 0 || gone(pid)) return -1;
        return watch_.fd();
    }
    // As fd_of, without asking first whether `pid` ended since it was watched: for a wait that
    // polls the descriptor anyway (and so learns it then), at no system call of its own.
    int pidfd_of(pid_t pid) { return pid > 0 ? watch(pid).fd() : -1; }

private:
    ProcessWatch& watch(pid_t pid) {
        if (pid != pid_) {
            pid_ = pid;
            const auto process = ProcessRef::of(pid);
            watch_ = process ? ProcessWatch(*process) : ProcessWatch();
        }
        return watch_;
    }

    pid_t pid_ = 0;
    ProcessWatch watch_;  // default: gone
};

Deadline slice_of(Deadline deadline) {
    const Deadline slice = Deadline::after(kLivenessSlice);
    return deadline.when() < slice.when() ? deadline : slice;
}

// ---- System V ----------------------------------------------------------------------------

SysvQueue make_sysv_queue(const Address& address, Role role) {
    if (address.sysv.id >= 0) {
        if (role == Role::create) {
            throw_error(std::errc::invalid_argument,
                        "address \"" + address.text + "\": an id names an existing queue; create one by key");
        }
        return SysvQueue::open_id(address.sysv.id);
    }
    const SysvKey key = address.sysv_key();
    if (role == Role::open) return SysvQueue::open(key);
    SysvQueue queue = SysvQueue::create(key, address.mode);
    if (address.keep) queue.keep();
    return queue;
}

class SysvSender final : public SenderBackend {
public:
    SysvSender(const Address& address, Role role)
        : SenderBackend(address), queue_(make_sysv_queue(address, role)), type_(address.sysv.type) {}

    ~SysvSender() override {
        try {
            (void)finish();
        } catch (const Error&) {
        }
    }

    // A creator removes an empty queue; one that still holds messages stays, for a receiver
    // that is not there yet. A receiver that may be there is given a moment to drain first.
    SenderClose finish() override {
        if (finished_ || !queue_.owns()) return {};
        finished_ = true;
        std::size_t left = 0;
        try {
            const Deadline linger = Deadline::after(kDrainLinger);
            const Deadline first_taker = Deadline::after(kFirstTakerGrace);
            for (auto backoff = Backoff::for_peer();;) {
                const auto st = queue_.stat();
                left = st.messages;
                // System V names only the last receiver. A live one drains within its polling
                // back-off; when none has ever received, one that is polling right now still
                // gets a moment, and nobody is waited for longer than that.
                const bool no_receiver =
                    st.last_receiver == 0 ? first_taker.expired() : receiver_.gone(st.last_receiver);
                if (left == 0 || no_receiver || !backoff.pause(linger)) break;
            }
        } catch (const Error&) {
            return {};  // already removed (ipcrm): nothing is stored
        }
        if (left == 0) return {};
        queue_.keep();
        keep_registration();
        return {left, false};
    }

    // Blocks in msgsnd until there is room, the deadline, or the last reader's death (its pidfd
    // interrupts the call): an idle sender wakes nobody. Without a pidfd (a reader in another PID
    // namespace) it looks again every liveness slice, and so it does before any reader took a
    // message: a reader may come, take too little to make room, and die, and only a look at the
    // queue's last reader then sees it.
    IoResult send(std::span<const std::byte> message, Deadline deadline) override {
        for (;;) {
            if (deadline.is_immediate()) return queue_.send(type_, message, deadline);
            const pid_t last = queue_.stat().last_receiver;
            const int reader = receiver_.fd_of(last);
            const IoResult r =
                queue_.send(type_, message, reader >= 0 ? deadline : slice_of(deadline), reader);
            if (r.status != Status::timed_out || deadline.expired()) return r;
            // The queue stays full: if its last reader is gone, nobody will make room.
            if (receiver_.gone(queue_.stat().last_receiver)) return {Status::closed, 0};
        }
    }
    std::size_t max_message_size() const override { return SysvQueue::max_message_size(); }

private:
    SysvQueue queue_;
    long type_;
    PeerWatch receiver_;
    bool finished_ = false;
};

class SysvReceiver final : public ReceiverBackend {
public:
    SysvReceiver(const Address& address, Role role)
        : ReceiverBackend(address),
          queue_(make_sysv_queue(address, role)),
          type_(address.sysv.type),
          scratch_(SysvQueue::max_message_size()) {
        if (role == Role::open) waiting_ = queue_.stat().messages;
    }

    IoResult recv(std::span<std::byte> buffer, Deadline deadline) override {
        // A peer in a request/reply exchange answers within tens of microseconds; trying the
        // queue for a moment, yielding the CPU between tries, catches that answer without the
        // sleeps of the timed wait's back-off (System V has no timed msgrcv to sleep in).
        const auto spin_until = Deadline::after(kSpinBeforeSleep);
        for (;;) {
            const auto r = queue_.receive(TypeSelector::exactly(type_), buffer, Deadline::immediate());
            if (r.status == Status::closed) removed();
            if (r.status != Status::would_block || deadline.is_immediate()) return {r.status, r.bytes};
            if (spin_until.expired() || deadline.expired()) break;
            std::this_thread::yield();
        }
        // Then blocks in msgrcv until a message, the deadline, the queue's removal, or the last
        // sender's death (its pidfd interrupts the call): an idle receiver wakes nobody. Without a
        // pidfd (a sender in another PID namespace) it looks again every liveness slice; before
        // any sender there is nobody to watch, and the first message wakes it.
        for (;;) {
            if (peer_gone()) return {Status::closed, 0};
            const pid_t last = queue_.stat().last_sender;
            const int sender = sender_.fd_of(last);
            const auto r = queue_.receive(TypeSelector::exactly(type_), buffer,
                                          sender >= 0 || last == 0 ? deadline : slice_of(deadline),
                                          SysvQueue::Truncation::refused, sender);
            if (r.status == Status::closed) removed();
            if (r.status != Status::timed_out && r.status != Status::would_block) return {r.status, r.bytes};
            if (peer_gone()) return {Status::closed, 0};
            if (r.status == Status::would_block || deadline.expired()) return {r.status, 0};
        }
    }
    IoResult recv(std::vector<std::byte>& message, Deadline deadline) override {
        // Through a buffer of the largest size, so `message` is never zero-filled to that size.
        const IoResult r = recv(std::span(scratch_), deadline);
        message.assign(scratch_.begin(),
                       scratch_.begin() + static_cast<std::ptrdiff_t>(r.ok() ? r.bytes : 0));
        return r;
    }
    std::size_t max_message_size() const override { return scratch_.size(); }
    bool ready() override {
        const auto st = queue_.stat();
        return st.messages > 0 || sender_.gone(st.last_sender);
    }
    std::size_t waiting_at_open() const override { return waiting_; }

private:
    // The queue went away under us (ipcrm, ipckit rm): whatever it held is gone, and that is
    // not the sender's clean end, so it is an error rather than `closed`.
    [[noreturn]] void removed() const {
        throw_error(std::errc::identifier_removed,
                    address() + ": the queue was removed while this receiver used it (ipcrm or ipckit rm)");
    }

    // Nothing queued and the last sender has exited: nothing more will come.
    bool peer_gone() const {
        const auto st = queue_.stat();
        return st.messages == 0 && sender_.gone(st.last_sender);
    }

    SysvQueue queue_;
    long type_;
    std::vector<std::byte> scratch_;
    mutable PeerWatch sender_;
    std::size_t waiting_ = 0;
};

// ---- POSIX -------------------------------------------------------------------------------

// Each POSIX message starts with this header: the sender's pid (the kernel records none), the
// PID namespace that pid belongs to (a tag, below; zeros from a sender before it), and whether
// it is data or the sender's end of stream.
struct PosixHeader {
    std::uint32_t pid;
    std::uint8_t kind;
    std::uint8_t pid_namespace[3];
};
static_assert(sizeof(PosixHeader) == 8);
constexpr std::uint8_t kData = 0;
constexpr std::uint8_t kEnd = 1;
// fs.mqueue.msgsize_default is 8192: by default a message and its header fit that.
constexpr std::size_t kDefaultPosixBody = 8192 - sizeof(PosixHeader);
constexpr long kDefaultPosixDepth = 10;

// This process's PID namespace, as a tag: the inode of /proc/self/ns/pid folded to 24 bits,
// never 0; 0 where /proc cannot say. A receiver compares its sender's with its own: in another
// namespace, the sender's pid names some other process here, or none, and is not watched.
std::uint32_t pid_namespace_tag() {
    struct stat st {};
    const std::uint64_t ino = ::stat("/proc/self/ns/pid", &st) == 0 ? st.st_ino : 0;
    const auto folded = static_cast<std::uint32_t>((ino ^ (ino >> 24) ^ (ino >> 48)) & 0xFFFFFF);
    return ino == 0 ? 0 : folded == 0 ? 1 : folded;
}

void store_tag(std::uint8_t (&bytes)[3], std::uint32_t tag) noexcept {
    for (int i = 0; i < 3; ++i)
        bytes[i] = static_cast<std::uint8_t>(tag >> (8 * i));
}
std::uint32_t load_tag(const std::uint8_t (&bytes)[3]) noexcept {
    return bytes[0] | std::uint32_t{bytes[1]} << 8 | std::uint32_t{bytes[2]} << 16;
}

PosixQueue make_posix_queue(const Address& address, Role role) {
    if (role == Role::open) return PosixQueue::open(address.target);
    const std::size_t body = address.max_message.value_or(kDefaultPosixBody);
    PosixQueue queue = PosixQueue::create(
        address.target, {kDefaultPosixDepth, static_cast<long>(body + sizeof(PosixHeader))}, address.mode);
    if (address.keep) queue.keep();
    return queue;
}

std::size_t posix_body_limit(const PosixQueue& queue) {
    return static_cast<std::size_t>(queue.attributes().max_message_size) - sizeof(PosixHeader);
}

class PosixSender final : public SenderBackend {
public:
    PosixSender(const Address& address, Role role)
        : SenderBackend(address), queue_(make_posix_queue(address, role)), limit_(posix_body_limit(queue_)) {
        scratch_.resize(limit_ + sizeof(PosixHeader));
    }

    ~PosixSender() override {
        try {
            (void)finish();
        } catch (const Error&) {
        }
    }

    // Tells a receiver that is there that nothing more will come (if the queue is full it
    // finds out when this process has exited instead). A creator removes an empty queue; one
    // that still holds messages stays for a later receiver, without an end marker, so its
    // count is exactly the messages stored (that receiver sees `closed` once it has drained
    // them and this process is gone).
    SenderClose finish() override {
        if (finished_) return {};
        finished_ = true;
        if (!queue_.owns()) {
            (void)post(kEnd, {}, Deadline::immediate());
            return {};
        }
        const Deadline linger = Deadline::after(kDrainLinger);
        for (auto backoff = Backoff::for_peer(); queue_.message_count() > 0 && receiver_present();)
            if (!backoff.pause(linger)) break;
        const std::size_t left = queue_.message_count();
        if (left == 0) {
            if (receiver_present()) (void)post(kEnd, {}, Deadline::immediate());
            return {};
        }
        queue_.keep();
        keep_registration();
        return {left, false};
    }

    IoResult send(std::span<const std::byte> message, Deadline deadline) override {
        if (message.size() > limit_) {
            throw_error(std::errc::message_size,
                        address() + ": a message of " + std::to_string(message.size()) +
                            " bytes exceeds the queue's limit of " + std::to_string(limit_) +
                            " bytes (mq_msgsize less ipckit's 8-byte header; raise it with "
                            "max= when creating, up to fs.mqueue.msgsize_max)");
        }
        for (;;) {
            const IoResult r = post(kData, message, deadline.is_immediate() ? deadline : slice_of(deadline));
            if (r.ok()) ++sent_;
            if (r.status != Status::timed_out || deadline.expired()) return r;
            // The queue stays full: if the receiver that was there is gone, nobody makes room.
            if (receiver_gone()) return {Status::closed, 0};
        }
    }
    std::size_t max_message_size() const override { return limit_; }

private:
    // A POSIX queue records no receiver, so each PosixReceiver holds a shared flock(2) on the
    // queue while it lives (the kernel drops it when the process dies). An exclusive try-lock
    // that succeeds means nobody holds it: the receiver is gone, if there ever was one — which
    // the queue shows when it holds fewer messages than this sender has put in.
    bool receiver_gone() { return !receiver_present() && sent_ > queue_.message_count(); }
    bool receiver_present() {
        if (::flock(queue_.native_handle(), LOCK_EX | LOCK_NB) != 0) return true;
        ::flock(queue_.native_handle(), LOCK_UN);
        return false;
    }

    IoResult post(std::uint8_t kind, std::span<const std::byte> message, Deadline deadline) {
        const pid_t pid = ::getpid();
        if (pid != tagged_pid_) {  // the first message, or a fork's child: maybe a new namespace
            tagged_pid_ = pid;
            namespace_ = pid_namespace_tag();
        }
        PosixHeader header{static_cast<std::uint32_t>(pid), kind, {}};
        store_tag(header.pid_namespace, namespace_);
        std::memcpy(scratch_.data(), &header, sizeof header);
        if (!message.empty()) std::memcpy(scratch_.data() + sizeof header, message.data(), message.size());
        const auto framed = std::span(scratch_).first(sizeof header + message.size());
        const IoResult r = queue_.send(framed, 0, deadline);
        return {r.status, r.ok() ? message.size() : 0};
    }

    PosixQueue queue_;
    std::size_t limit_;
    std::vector<std::byte> scratch_;
    pid_t tagged_pid_ = 0;  // the process namespace_ was taken in
    std::uint32_t namespace_ = 0;
    std::uint64_t sent_ = 0;  // data messages this sender put in the queue
    bool finished_ = false;
};

class PosixReceiver final : public ReceiverBackend {
public:
    PosixReceiver(const Address& address, Role role)
        : ReceiverBackend(address),
          queue_(make_posix_queue(address, role)),
          limit_(posix_body_limit(queue_)) {
        scratch_.resize(limit_ + sizeof(PosixHeader));  // mq_receive needs room for the largest
        if (role == Role::open) waiting_ = queue_.message_count();
        // Tells senders a receiver is here (see PosixSender::receiver_gone). Blocking: a sender's
        // exclusive probe holds the lock for a moment only.
        ::flock(queue_.native_handle(), LOCK_SH);
    }

    IoResult recv(std::span<std::byte> buffer, Deadline deadline) override {
        const Status s = take(deadline);
        if (s != Status::ok) return {s, 0};
        if (held_size_ > buffer.size()) throw_buffer_too_small(address(), held_size_, buffer.size());
        std::memcpy(buffer.data(), scratch_.data() + sizeof(PosixHeader), held_size_);
        held_ = false;
        return {Status::ok, held_size_};
    }
    IoResult recv(std::vector<std::byte>& message, Deadline deadline) override {
        const Status s = take(deadline);
        if (s != Status::ok) return {s, 0};
        const auto body = std::span(scratch_).subspan(sizeof(PosixHeader), held_size_);
        message.assign(body.begin(), body.end());
        held_ = false;
        return {Status::ok, held_size_};
    }
    std::size_t max_message_size() const override { return limit_; }
    int native_handle() const override { return queue_.native_handle(); }
    // A message is queued; or the sender of the last message died and the queue is empty (ready
    // to say `closed`: no end marker will ever come from it).
    bool ready() override {
        if (held_ || ended_ || !queue_empty()) return true;
        return sender_ > 0 && sender_watch_.gone(sender_);
    }
    // A wait set polls the queue and the last sender's pidfd (its death makes ready() true);
    // only a sender without a pidfd (a kernel without them) is looked at in slices.
    Arm arm(std::vector<int>& fds) override {
        if (ready()) return Arm::ready;
        fds.push_back(queue_.native_handle());
        if (const int pidfd = sender_watch_.fd_of(sender_); pidfd >= 0) fds.push_back(pidfd);
        return Arm::armed;
    }
    bool watches_peer_by_polling() const override { return sender_ > 0 && sender_watch_.fd_of(sender_) < 0; }
    std::size_t waiting_at_open() const override { return waiting_; }

private:
    // Receives the next data message into scratch_, or keeps the one held there.
    Status take(Deadline deadline) {
        if (held_) return Status::ok;
        if (ended_) return Status::closed;
        for (;;) {
            // The last sender's pidfd ends the wait at its death: an idle receiver wakes nobody.
            // Without one (a kernel without pidfds) it looks again every liveness slice; before
            // any message, or after one from another PID namespace, there is no sender to watch.
            const int sender = sender_watch_.pidfd_of(sender_);
            const auto r = queue_.receive(
                scratch_,
                deadline.is_immediate() || sender >= 0 || sender_ <= 0 ? deadline : slice_of(deadline),
                sender);
            if (r.ok()) {
                if (r.bytes < sizeof(PosixHeader)) {
                    throw_error(
                        std::errc::protocol_error,
                        address() + ": a message without ipckit's header arrived (is the sender ipckit?)");
                }
                PosixHeader header{};
                std::memcpy(&header, scratch_.data(), sizeof header);
                // A sender in another PID namespace (a container's) is not watched: its pid
                // means nothing here. Its end marker, or the deadline, ends the wait.
                const std::uint32_t theirs = load_tag(header.pid_namespace);
                sender_ = theirs != 0 && namespace_ != 0 && theirs != namespace_
                              ? 0
                              : static_cast<pid_t>(header.pid);
                if (header.kind == kEnd) {
                    ended_ = true;
                    return Status::closed;
                }
                held_ = true;
                held_size_ = r.bytes - sizeof(PosixHeader);
                return Status::ok;
            }
            if (r.status != Status::timed_out && r.status != Status::would_block) return r.status;
            if (sender_watch_.gone(sender_) && queue_empty()) return Status::closed;
            if (r.status == Status::would_block || deadline.expired()) return r.status;
        }
    }

    bool queue_empty() const {
        struct mq_attr attr {};
        return ::mq_getattr(queue_.native_handle(), &attr) == 0 && attr.mq_curmsgs == 0;
    }

    PosixQueue queue_;
    std::size_t limit_;
    std::vector<std::byte> scratch_;
    // This receiver's PID namespace, taken when it was made (a copy forked into a new namespace
    // keeps its parent's).
    std::uint32_t namespace_ = pid_namespace_tag();
    pid_t sender_ = 0;                // from the last message's header; 0: none to watch
    mutable PeerWatch sender_watch_;  // caches the watch of the last sender it was asked about
    bool held_ = false;
    std::size_t held_size_ = 0;
    bool ended_ = false;
    std::size_t waiting_ = 0;
};

}  // namespace

std::unique_ptr<SenderBackend> make_queue_sender(const Address& address, Role role, Deadline /*deadline*/) {
    if (address.transport == Transport::sysvmq) return std::make_unique<SysvSender>(address, role);
    return std::make_unique<PosixSender>(address, role);
}

std::unique_ptr<ReceiverBackend> make_queue_receiver(const Address& address, Role role,
                                                     Deadline /*deadline*/) {
    if (address.transport == Transport::sysvmq) return std::make_unique<SysvReceiver>(address, role);
    return std::make_unique<PosixReceiver>(address, role);
}

}  // namespace ipckit::detail
