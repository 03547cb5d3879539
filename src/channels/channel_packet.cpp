// Packet transports (unix+seqpacket:, unix+dgram:): the kernel keeps message boundaries.
//
// A seqpacket message carries a one-byte header, because recv(2) returns 0 both for an
// empty message and for a closed peer and the channel must tell them apart. Datagrams carry
// no header, so `socat` and other tools can talk to a unix+dgram: channel; a datagram socket
// has no connection, so its receiver never sees `closed`: use a deadline.
#include <sys/socket.h>

#include <cstring>
#include <functional>

#include "channel_backend.hpp"
#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "ipckit/unix_socket.hpp"

namespace ipckit::detail {
namespace {

constexpr std::byte kMessageKind{'M'};
// Unix packet sockets carry up to about the socket buffer (net.core.wmem_default, 208 KiB
// by default); 64 KiB leaves room for the kernel's per-message overhead.
constexpr std::size_t kDefaultPacketLimit = 64u << 10;

std::size_t packet_limit(const Address& address) {
    return address.max_message.value_or(kDefaultPacketLimit);
}

[[noreturn]] void too_large(const std::string& address, std::size_t size, std::size_t limit) {
    throw_error(std::errc::message_size, address + ": a message of " + std::to_string(size) +
                                             " bytes exceeds the channel's limit of " +
                                             std::to_string(limit) + " bytes (max=" + format_size(limit) +
                                             ")");
}

// Waits as the deadline says before a blocking socket call, so the call itself never blocks
// past it. Deadline::never() skips the poll: the call blocks in the kernel.
Status wait_for(int fd, bool readable, Deadline deadline, std::string_view object) {
    if (deadline.is_never()) return Status::ok;
    return readable ? wait_readable(fd, deadline, object) : wait_writable(fd, deadline, object);
}

class PacketSender final : public SenderBackend {
public:
    PacketSender(const Address& address, std::shared_ptr<void> owner, std::function<Fd(Deadline)> connect,
                 bool with_header)
        : SenderBackend(address),
          owner_(std::move(owner)),
          connect_(std::move(connect)),
          limit_(packet_limit(address)),
          with_header_(with_header) {}

    IoResult send(std::span<const std::byte> message, Deadline deadline) override {
        if (message.size() > limit_) too_large(address(), message.size(), limit_);
        if (!fd_.valid()) {
            fd_ = connect_(deadline);
            if (!fd_.valid()) return {deadline.is_immediate() ? Status::would_block : Status::timed_out, 0};
        }
        iovec iov[2] = {{const_cast<std::byte*>(&kMessageKind), 1},
                        {const_cast<std::byte*>(message.data()), message.size()}};
        msghdr msg{};
        msg.msg_iov = with_header_ ? iov : iov + 1;
        msg.msg_iovlen = with_header_ ? 2 : 1;
        for (;;) {
            const Status s = wait_for(fd_.get(), false, deadline, address());
            if (s != Status::ok) return {s, 0};
            const ssize_t n =
                ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | (deadline.is_never() ? 0 : MSG_DONTWAIT));
            if (n >= 0) return {Status::ok, message.size()};
            if (errno == EINTR || (errno == EAGAIN && !deadline.is_immediate())) continue;
            if (errno == EAGAIN) return {Status::would_block, 0};
            if (errno == EPIPE || errno == ECONNRESET || errno == ECONNREFUSED || errno == ENOTCONN) {
                return {Status::closed, 0};
            }
            if (errno == EMSGSIZE) too_large(address(), message.size(), message.size() - 1);
            throw_errno("sendmsg", address());
        }
    }
    std::size_t max_message_size() const override { return limit_; }

private:
    std::shared_ptr<void> owner_;
    std::function<Fd(Deadline)> connect_;
    Fd fd_;
    std::size_t limit_;
    bool with_header_;
};

class PacketReceiver final : public ReceiverBackend {
public:
    PacketReceiver(const Address& address, std::shared_ptr<void> owner, std::function<Fd(Deadline)> connect,
                   bool with_header)
        : ReceiverBackend(address),
          owner_(std::move(owner)),
          connect_(std::move(connect)),
          limit_(packet_limit(address)),
          with_header_(with_header),
          scratch_(limit_ + 1) {}

    IoResult recv(std::span<std::byte> buffer, Deadline deadline) override {
        std::size_t size = 0;
        const Status s = receive(deadline, size);
        if (s != Status::ok) return {s, 0};
        if (size > buffer.size()) throw_buffer_too_small(address(), size, buffer.size());
        std::memcpy(buffer.data(), scratch_.data(), size);
        held_ = false;
        return {Status::ok, size};
    }
    IoResult recv(std::vector<std::byte>& message, Deadline deadline) override {
        std::size_t size = 0;
        const Status s = receive(deadline, size);
        if (s != Status::ok) return {s, 0};
        message.assign(scratch_.begin(), scratch_.begin() + static_cast<std::ptrdiff_t>(size));
        held_ = false;
        return {Status::ok, size};
    }
    std::size_t max_message_size() const override { return limit_; }
    int native_handle() const override { return fd_.get(); }
    bool ready() override { return held_; }

private:
    // Receives the next message into scratch_ (or keeps the one held there).
    Status receive(Deadline deadline, std::size_t& size) {
        if (held_) {
            size = held_size_;
            return Status::ok;
        }
        if (!fd_.valid()) {
            fd_ = connect_(deadline);
            if (!fd_.valid()) return deadline.is_immediate() ? Status::would_block : Status::timed_out;
        }
        std::byte kind{};
        iovec iov[2] = {{&kind, 1}, {scratch_.data(), scratch_.size()}};
        msghdr msg{};
        msg.msg_iov = with_header_ ? iov : iov + 1;
        msg.msg_iovlen = with_header_ ? 2 : 1;
        for (;;) {
            const Status s = wait_for(fd_.get(), true, deadline, address());
            if (s != Status::ok) return s;
            const ssize_t n =
                ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC | (deadline.is_never() ? 0 : MSG_DONTWAIT));
            if (n < 0) {
                if (errno == EINTR || (errno == EAGAIN && !deadline.is_immediate())) continue;
                if (errno == EAGAIN) return Status::would_block;
                if (errno == ECONNRESET) return Status::closed;
                throw_errno("recvmsg", address());
            }
            if (msg.msg_flags & MSG_TRUNC) {
                // Only a peer that ignores our limit sends more than scratch_ holds.
                throw_error(std::errc::message_size,
                            address() + ": a message larger than the channel's limit of " +
                                std::to_string(limit_) + " bytes arrived and was truncated");
            }
            if (with_header_) {
                if (n == 0) return Status::closed;  // seqpacket: end of stream
                if (kind != kMessageKind) {
                    throw_error(
                        std::errc::protocol_error,
                        address() + ": a message without ipckit's header arrived (is the peer ipckit?)");
                }
                size = static_cast<std::size_t>(n) - 1;
            } else {
                size = static_cast<std::size_t>(n);
            }
            held_ = true;
            held_size_ = size;
            return Status::ok;
        }
    }

    std::shared_ptr<void> owner_;
    std::function<Fd(Deadline)> connect_;
    Fd fd_;
    std::size_t limit_;
    bool with_header_;
    std::vector<std::byte> scratch_;
    bool held_ = false;  // a received message waits in scratch_ for a large enough buffer
    std::size_t held_size_ = 0;
};

std::function<Fd(Deadline)> ready_now(Fd fd) {
    auto shared = std::make_shared<Fd>(std::move(fd));
    return [shared](Deadline) { return std::move(*shared); };
}

struct Endpoint {
    std::shared_ptr<void> owner;
    std::function<Fd(Deadline)> connect;
};

Endpoint seqpacket_endpoint(const Address& address, Role role, Deadline deadline) {
    const auto where = UnixAddress::parse(address.target);
    if (role == Role::create) {
        auto listener =
            std::make_shared<UnixListener>(UnixListener::bind(where, SocketType::seqpacket, address.mode));
        if (address.keep) listener->keep();
        return {listener, [listener](Deadline d) {
                    auto peer = accept_same_user(*listener, d);
                    return peer ? peer->fd().duplicate() : Fd();
                }};
    }
    Fd fd = retry_while_absent(deadline, [&] {
        UnixSocket socket = UnixSocket::connect(where, SocketType::seqpacket, deadline);
        check_abstract_server(where, socket, address);
        return socket.fd().duplicate();
    });
    return {nullptr, ready_now(std::move(fd))};
}

}  // namespace

std::unique_ptr<SenderBackend> make_packet_sender(const Address& address, Role role, Deadline deadline) {
    if (address.transport == Transport::unix_seqpacket) {
        auto e = seqpacket_endpoint(address, role, deadline);
        return std::make_unique<PacketSender>(address, std::move(e.owner), std::move(e.connect), true);
    }
    // A datagram sender is never the creating side: the receiver binds the name.
    if (role == Role::create) {
        throw_error(
            std::errc::invalid_argument,
            "address \"" + address.text + "\": the receiver creates a unix+dgram channel; open the sender");
    }
    const auto where = UnixAddress::parse(address.target);
    Fd fd = retry_while_absent(deadline, [&] {
        return UnixSocket::connect(where, SocketType::datagram, deadline).fd().duplicate();
    });
    return std::make_unique<PacketSender>(address, nullptr, ready_now(std::move(fd)), false);
}

std::unique_ptr<ReceiverBackend> make_packet_receiver(const Address& address, Role role, Deadline deadline) {
    if (address.transport == Transport::unix_seqpacket) {
        auto e = seqpacket_endpoint(address, role, deadline);
        return std::make_unique<PacketReceiver>(address, std::move(e.owner), std::move(e.connect), true);
    }
    if (role == Role::open) {
        throw_error(std::errc::invalid_argument,
                    "address \"" + address.text +
                        "\": the receiver of a unix+dgram channel creates it (binds the name)");
    }
    auto socket =
        std::make_shared<UnixDatagram>(UnixDatagram::bind(UnixAddress::parse(address.target), address.mode));
    if (address.keep) socket->keep();
    return std::make_unique<PacketReceiver>(address, socket, ready_now(socket->fd().duplicate()), false);
}

}  // namespace ipckit::detail
