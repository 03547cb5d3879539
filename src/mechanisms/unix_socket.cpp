#include "ipckit/unix_socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/backoff.hpp"
#include "ipckit/error.hpp"
#include "object_rules.hpp"
#include "socket_io.hpp"

namespace ipckit {
namespace {

constexpr std::size_t path_offset = offsetof(sockaddr_un, sun_path);
static_assert(sizeof(sockaddr_un::sun_path) == UnixAddress::max_length + 1);

int kernel_type(SocketType type) {
    switch (type) {
        case SocketType::stream:
            return SOCK_STREAM;
        case SocketType::seqpacket:
            return SOCK_SEQPACKET;
        case SocketType::datagram:
            return SOCK_DGRAM;
    }
    return SOCK_STREAM;
}

// The channel address scheme ("unix+seqpacket:@name"), so errors read like the addresses users type.
std::string describe(const UnixAddress& address, SocketType type) {
    std::string text = "unix";
    if (type == SocketType::seqpacket) text += "+seqpacket";
    if (type == SocketType::datagram) text += "+dgram";
    return text + ":" + address.to_string();
}

Fd new_socket(SocketType type, int extra_flags, std::string_view object) {
    Fd fd(::socket(AF_UNIX, kernel_type(type) | SOCK_CLOEXEC | extra_flags, 0));
    if (!fd) throw_errno("socket", object);
    return fd;
}

void check_name(std::string_view name, std::string_view text) {
    if (name.empty())
        throw_error(std::errc::invalid_argument, "unix address \"" + std::string(text) + "\" is empty");
    if (name.find('\0') != std::string_view::npos)
        throw_error(std::errc::invalid_argument,
                    "unix address \"" + std::string(text) + "\" contains a NUL byte");
    if (name.size() > UnixAddress::max_length)
        throw_error(std::errc::filename_too_long,
                    "unix address \"" + std::string(text) + "\" is " + std::to_string(name.size()) +
                        " bytes; a socket name holds at most " + std::to_string(UnixAddress::max_length) +
                        " (sun_path)");
}

bool same_file(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Is anybody behind the socket file? A connect to a socket file whose owner died fails with
// ECONNREFUSED; a live one accepts, or is busy (EAGAIN). The probe tries each type because a
// connect of the wrong type fails with EPROTOTYPE whatever the owner's state.
bool socket_file_is_live(const UnixAddress& address, std::string_view object) {
    sockaddr_un sa{};
    const socklen_t length = address.to_sockaddr(sa);
    for (SocketType type : {SocketType::stream, SocketType::seqpacket, SocketType::datagram}) {
        Fd probe = new_socket(type, SOCK_NONBLOCK, object);
        int rc;
        do {
            rc = ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&sa), length);
        } while (rc != 0 && errno == EINTR);
        if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) return true;
        if (errno == ECONNREFUSED) return false;
        if (errno == EPROTOTYPE) continue;
        throw_errno("connect (probing an existing socket file)", object);
    }
    return true;
}

// Binds `fd` to `address`. A socket file left by a dead process is removed and the bind tried
// again; any other file at the path is reported and left alone.
void bind_replacing_stale(int fd, const UnixAddress& address, std::string_view object) {
    sockaddr_un sa{};
    const socklen_t length = address.to_sockaddr(sa);
    for (int attempt = 0;; ++attempt) {
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), length) == 0) return;
        const int err = errno;
        if (err != EADDRINUSE || address.is_abstract() || attempt > 0) throw_errno("bind", object, err);

        // bind(2) never follows a symlink and never replaces a file: lstat tells what is there.
        struct stat before {};
        if (::lstat(address.name().c_str(), &before) != 0) {
            if (errno == ENOENT) continue;  // removed meanwhile: just try again
            throw_errno("lstat", address.name());
        }
        if (!S_ISSOCK(before.st_mode))
            throw Error(std::make_error_code(std::errc::address_in_use),
                        "bind(" + std::string(object) +
                            "): " + detail::file_kind(before.st_mode, "a file of another kind") +
                            " is at this path, not a socket; it was left untouched");
        if (socket_file_is_live(address, object))
            throw Error(std::make_error_code(std::errc::address_in_use),
                        "bind(" + std::string(object) +
                            "): a live socket is bound there (its owner accepts "
                            "connections)");
        // Stale. Unlink only the very file we probed, never one that replaced it since.
        struct stat now {};
        if (::lstat(address.name().c_str(), &now) == 0 && same_file(before, now) && S_ISSOCK(now.st_mode)) {
            if (::unlink(address.name().c_str()) != 0 && errno != ENOENT)
                throw_errno("unlink (stale socket file)", address.name());
        }
    }
}

// Gives the socket file its mode without following a symlink someone put in its place.
void set_file_mode(const UnixAddress& address, unsigned mode) {
    const auto bits = static_cast<mode_t>(mode & 07777);
    if (::fchmodat(AT_FDCWD, address.name().c_str(), bits, AT_SYMLINK_NOFOLLOW) == 0) return;
    // Without /proc, glibc cannot chmod without following; fall back only for a socket file.
    struct stat st {};
    if ((errno == EOPNOTSUPP || errno == ENOTSUP) && ::lstat(address.name().c_str(), &st) == 0 &&
        S_ISSOCK(st.st_mode) && ::chmod(address.name().c_str(), bits) == 0)
        return;
    throw_errno("fchmodat", address.name());
}

struct stat identity_of(const UnixAddress& address) {
    struct stat st {};
    if (::lstat(address.name().c_str(), &st) != 0) throw_errno("lstat", address.name());
    return st;
}

// umask(2) is process-wide, so changes to it are serialised within ipckit.
std::mutex umask_mutex;

}  // namespace

std::string_view to_string(SocketType type) noexcept {
    switch (type) {
        case SocketType::stream:
            return "stream";
        case SocketType::seqpacket:
            return "seqpacket";
        case SocketType::datagram:
            return "datagram";
    }
    return "unknown";
}

// ---------------------------------------------------------------------------------------------
// UnixAddress

UnixAddress UnixAddress::parse(std::string_view text) {
    if (!text.empty() && text.front() == '@') {
        check_name(text.substr(1), text);
        return UnixAddress(std::string(text.substr(1)), true);
    }
    check_name(text, text);
    return UnixAddress(std::string(text), false);
}

UnixAddress UnixAddress::path(std::string_view path) {
    check_name(path, path);
    return UnixAddress(std::string(path), false);
}

UnixAddress UnixAddress::abstract(std::string_view name) {
    check_name(name, "@" + std::string(name));
    return UnixAddress(std::string(name), true);
}

std::string UnixAddress::to_string() const {
    return abstract_ ? "@" + name_ : name_;
}

unsigned UnixAddress::to_sockaddr(sockaddr_un& out) const noexcept {
    out = sockaddr_un{};
    out.sun_family = AF_UNIX;
    if (abstract_) {
        // An abstract name is exactly the bytes after the leading NUL: the length counts, not a terminator.
        std::memcpy(out.sun_path + 1, name_.data(), name_.size());
        return static_cast<unsigned>(path_offset + 1 + name_.size());
    }
    std::memcpy(out.sun_path, name_.data(), name_.size());
    return static_cast<unsigned>(path_offset + name_.size() + 1);
}

std::optional<UnixAddress> UnixAddress::from_sockaddr(const sockaddr_un& address, unsigned length) {
    if (length <= path_offset || address.sun_family != AF_UNIX) return std::nullopt;
    const std::size_t bytes = std::min<std::size_t>(length - path_offset, sizeof address.sun_path);
    if (address.sun_path[0] == '\0') return UnixAddress(std::string(address.sun_path + 1, bytes - 1), true);
    return UnixAddress(std::string(address.sun_path, ::strnlen(address.sun_path, bytes)), false);
}

// ---------------------------------------------------------------------------------------------
// UnixSocket

UnixSocket UnixSocket::connect(const UnixAddress& address, SocketType type, Deadline deadline) {
    const std::string object = describe(address, type);
    Fd fd = new_socket(type, deadline.is_immediate() ? SOCK_NONBLOCK : 0, object);
    sockaddr_un sa{};
    const socklen_t length = address.to_sockaddr(sa);
    // A Unix connect never returns EINPROGRESS: it completes at once or sleeps in the kernel
    // until the listener's backlog has room, so poll(2) cannot time it. SO_SNDTIMEO bounds
    // that sleep instead (the kernel then gives EAGAIN).
    for (;;) {
        if (!deadline.is_never() && !deadline.is_immediate()) {
            const auto left =
                std::max(std::chrono::duration_cast<std::chrono::microseconds>(deadline.remaining()),
                         std::chrono::microseconds(1));
            timeval tv{};
            tv.tv_sec = static_cast<time_t>(left.count() / 1'000'000);
            tv.tv_usec = static_cast<suseconds_t>(left.count() % 1'000'000);
            if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
                throw_errno("setsockopt(SO_SNDTIMEO)", object);
        }
        if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), length) == 0) break;
        const int err = errno;
        if (err == EINTR && !deadline.expired()) continue;
        if (err == EAGAIN || err == EINTR)
            throw Error(std::make_error_code(std::errc::timed_out),
                        "connect(" + object + "): timed out: the listener's backlog stayed full");
        throw_errno("connect", object, err);
    }
    if (!deadline.is_never() && !deadline.is_immediate()) {
        const timeval forever{};  // 0 = no limit: later sends are timed by their own deadlines
        if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &forever, sizeof forever) != 0)
            throw_errno("setsockopt(SO_SNDTIMEO)", object);
    }
    if (deadline.is_immediate()) fd.set_nonblocking(false);
    return UnixSocket(std::move(fd), type, object);
}

std::pair<UnixSocket, UnixSocket> UnixSocket::pair(SocketType type) {
    int fds[2];
    const std::string object = "unix socketpair (" + std::string(to_string(type)) + ")";
    if (::socketpair(AF_UNIX, kernel_type(type) | SOCK_CLOEXEC, 0, fds) != 0)
        throw_errno("socketpair", object);
    return {UnixSocket(Fd(fds[0]), type, object), UnixSocket(Fd(fds[1]), type, object)};
}

namespace {

// An integer SOL_SOCKET option of `fd` (`call` names it in the error).
int socket_option(int fd, int option, const char* call, const std::string& object) {
    int value = 0;
    socklen_t size = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, option, &value, &size) != 0) throw_errno(call, object);
    return value;
}

// The socket's type (SO_TYPE), once it is known to be a Unix domain socket.
int unix_socket_kind(int fd, const std::string& object) {
    if (socket_option(fd, SO_DOMAIN, "getsockopt(SO_DOMAIN)", object) != AF_UNIX)
        throw_error(std::errc::wrong_protocol_type, object + " is not a Unix domain socket");
    return socket_option(fd, SO_TYPE, "getsockopt(SO_TYPE)", object);
}

}  // namespace

UnixSocket UnixSocket::adopt(Fd fd) {
    const std::string object = "unix socket fd " + std::to_string(fd.get());
    const int kind = unix_socket_kind(fd.get(), object);
    const SocketType type = kind == SOCK_SEQPACKET ? SocketType::seqpacket
                            : kind == SOCK_DGRAM   ? SocketType::datagram
                                                   : SocketType::stream;
    return UnixSocket(std::move(fd), type, object);
}

IoResult UnixSocket::send(std::span<const std::byte> data, Deadline deadline) {
    if (type_ == SocketType::stream) return detail::stream_send(fd_.get(), data, deadline, description_);
    if (type_ == SocketType::seqpacket && data.empty())
        throw_error(std::errc::invalid_argument,
                    "send(" + description_ +
                        "): an empty seqpacket message cannot be told from the end of the stream");
    const detail::SocketCall c = detail::retry_socket_call(
        fd_.get(), detail::Readiness::writable, deadline, description_,
        [&](int flags) { return ::send(fd_.get(), data.data(), data.size(), flags | MSG_NOSIGNAL); });
    if (c.status != Status::ok) return {c.status, 0};
    if (c.n < 0) {
        // A connected datagram socket whose peer went away gets ECONNREFUSED.
        if (c.err == EPIPE || c.err == ECONNRESET || c.err == ECONNREFUSED || c.err == ENOTCONN)
            return {Status::closed, 0};
        if (c.err == EMSGSIZE)
            throw Error(std::make_error_code(std::errc::message_size),
                        "send(" + description_ + "): a message of " + std::to_string(data.size()) +
                            " bytes is over what this socket can carry in one message (see SO_SNDBUF)");
        throw_errno("send", description_, c.err);
    }
    return {Status::ok, static_cast<std::size_t>(c.n)};
}

IoResult UnixSocket::recv(std::span<std::byte> buffer, Deadline deadline) {
    if (type_ == SocketType::stream) return detail::stream_recv(fd_.get(), buffer, deadline, description_);
    // MSG_TRUNC makes the kernel return the message's real length, so truncation is visible.
    const detail::SocketCall c = detail::retry_socket_call(
        fd_.get(), detail::Readiness::readable, deadline, description_,
        [&](int flags) { return ::recv(fd_.get(), buffer.data(), buffer.size(), flags | MSG_TRUNC); });
    if (c.status != Status::ok) return {c.status, 0};
    if (c.n < 0) {
        if (c.err == ECONNRESET) return {Status::closed, 0};
        throw_errno("recv", description_, c.err);
    }
    const auto n = static_cast<std::size_t>(c.n);
    if (n > buffer.size()) detail::throw_truncated("recv", description_, n, buffer.size());
    if (n == 0 && type_ == SocketType::seqpacket) return {Status::closed, 0};
    return {Status::ok, n};
}

IoResult UnixSocket::next_message_size(Deadline deadline) {
    if (type_ == SocketType::stream)
        throw_error(std::errc::invalid_argument,
                    "next_message_size(" + description_ + "): a stream has no messages");
    std::byte none{};
    const detail::SocketCall c = detail::retry_socket_call(
        fd_.get(), detail::Readiness::readable, deadline, description_,
        [&](int flags) { return ::recv(fd_.get(), &none, 0, flags | MSG_PEEK | MSG_TRUNC); });
    if (c.status != Status::ok) return {c.status, 0};
    if (c.n < 0) {
        if (c.err == ECONNRESET) return {Status::closed, 0};
        throw_errno("recv(MSG_PEEK)", description_, c.err);
    }
    if (c.n == 0 && type_ == SocketType::seqpacket) return {Status::closed, 0};
    return {Status::ok, static_cast<std::size_t>(c.n)};
}

IoResult UnixSocket::send_with_fds(std::span<const std::byte> data, std::span<const int> fds,
                                   Deadline deadline) {
    if (fds.empty()) return send(data, deadline);
    if (fds.size() > max_fds_per_message)
        throw_error(std::errc::invalid_argument,
                    "sendmsg(" + description_ + "): " + std::to_string(fds.size()) +
                        " descriptors in one message; the kernel takes at most " +
                        std::to_string(max_fds_per_message));
    if (data.empty() && type_ != SocketType::datagram)
        throw_error(std::errc::invalid_argument,
                    "sendmsg(" + description_ + "): descriptors must travel with at least one byte of data");

    const std::size_t payload = fds.size() * sizeof(int);
    std::vector<cmsghdr> control((CMSG_SPACE(payload) + sizeof(cmsghdr) - 1) / sizeof(cmsghdr));
    iovec iov{const_cast<std::byte*>(data.data()), data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(payload);
    cmsghdr* header = CMSG_FIRSTHDR(&msg);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(payload);
    std::memcpy(CMSG_DATA(header), fds.data(), payload);

    const detail::SocketCall c = detail::retry_socket_call(
        fd_.get(), detail::Readiness::writable, deadline, description_,
        [&](int flags) { return ::sendmsg(fd_.get(), &msg, flags | MSG_NOSIGNAL); });
    if (c.status != Status::ok) return {c.status, 0};
    if (c.n < 0) {
        if (c.err == EPIPE || c.err == ECONNRESET || c.err == ECONNREFUSED || c.err == ENOTCONN)
            return {Status::closed, 0};
        throw_errno("sendmsg", description_, c.err);
    }
    // The descriptors left with the first byte; a stream finishes the rest as plain data.
    if (type_ == SocketType::stream)
        return detail::stream_send(fd_.get(), data, deadline, description_, static_cast<std::size_t>(c.n));
    return {Status::ok, static_cast<std::size_t>(c.n)};
}

FdMessage UnixSocket::recv_with_fds(std::span<std::byte> buffer, std::size_t max_fds, Deadline deadline) {
    FdMessage result;
    const std::size_t control_bytes = max_fds > 0 ? CMSG_SPACE(max_fds * sizeof(int)) : 0;
    std::vector<cmsghdr> control((control_bytes + sizeof(cmsghdr) - 1) / sizeof(cmsghdr));
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const int truncation_flag = type_ == SocketType::stream ? 0 : MSG_TRUNC;
    const detail::SocketCall c = detail::retry_socket_call(
        fd_.get(), detail::Readiness::readable, deadline, description_, [&](int flags) {
            msg.msg_control = control_bytes > 0 ? control.data() : nullptr;
            msg.msg_controllen = control_bytes;
            msg.msg_flags = 0;
            // MSG_CMSG_CLOEXEC: the received descriptors are never inherited by an exec.
            return ::recvmsg(fd_.get(), &msg, flags | MSG_CMSG_CLOEXEC | truncation_flag);
        });
    if (c.status != Status::ok) {
        result.io = {c.status, 0};
        return result;
    }
    if (c.n < 0) {
        if (c.err == ECONNRESET) {
            result.io = {Status::closed, 0};
            return result;
        }
        throw_errno("recvmsg", description_, c.err);
    }
    // Own every descriptor that arrived before anything can throw, so none can leak.
    for (cmsghdr* header = CMSG_FIRSTHDR(&msg); header != nullptr; header = CMSG_NXTHDR(&msg, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof fd);
            result.fds.emplace_back(fd);
        }
    }
    const auto n = static_cast<std::size_t>(c.n);
    if ((msg.msg_flags & MSG_CTRUNC) != 0)
        throw Error(std::make_error_code(std::errc::message_size),
                    "recvmsg(" + description_ + "): the message carried more descriptors than max_fds (" +
                        std::to_string(max_fds) + "); the kernel discarded the extra ones and the " +
                        std::to_string(result.fds.size()) + " received were closed");
    if (n > buffer.size() || (msg.msg_flags & MSG_TRUNC) != 0)
        detail::throw_truncated("recvmsg", description_, n, buffer.size());
    if (n == 0 && type_ != SocketType::datagram && !buffer.empty()) {
        result.io = {Status::closed, 0};
        return result;
    }
    result.io = {Status::ok, n};
    return result;
}

PeerCredentials UnixSocket::peer_credentials() const {
    ucred credentials{};
    socklen_t size = sizeof credentials;
    if (::getsockopt(fd_.get(), SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0)
        throw_errno("getsockopt(SO_PEERCRED)", description_);
    return {credentials.pid, credentials.uid, credentials.gid};
}

void UnixSocket::shutdown_write() {
    if (::shutdown(fd_.get(), SHUT_WR) != 0) throw_errno("shutdown", description_);
}

// ---------------------------------------------------------------------------------------------
// UnixListener

UnixListener UnixListener::bind(const UnixAddress& address, SocketType type, unsigned mode, int backlog) {
    const std::string object = describe(address, type);
    if (type == SocketType::datagram)
        throw_error(std::errc::invalid_argument,
                    "bind(" + object + "): datagram sockets do not listen; use UnixDatagram::bind");
    // Non-blocking so that accept honours its deadline even when another process takes the
    // client between our poll and our accept.
    Fd fd = new_socket(type, SOCK_NONBLOCK, object);
    bind_replacing_stale(fd.get(), address, object);
    struct stat identity {};
    if (!address.is_abstract()) {
        // Race-free: until listen(2) every connect is refused, so nobody gets in while the file
        // still has the umask's permissions.
        try {
            set_file_mode(address, mode);
            identity = identity_of(address);
        } catch (...) {
            ::unlink(address.name().c_str());
            throw;
        }
    }
    UnixListener listener(std::move(fd), address, type, identity.st_dev, identity.st_ino);
    if (::listen(listener.fd_.get(), backlog) != 0) throw_errno("listen", object);
    return listener;
}

UnixListener UnixListener::adopt(Fd fd) {
    const std::string object = "unix listening socket fd " + std::to_string(fd.get());
    const int kind = unix_socket_kind(fd.get(), object);
    if (socket_option(fd.get(), SO_ACCEPTCONN, "getsockopt(SO_ACCEPTCONN)", object) == 0 ||
        kind == SOCK_DGRAM)
        throw_error(std::errc::invalid_argument, object + " is not listening");
    sockaddr_un sa{};
    socklen_t length = sizeof sa;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &length) != 0)
        throw_errno("getsockname", object);
    const std::optional<UnixAddress> address = UnixAddress::from_sockaddr(sa, length);
    if (!address) throw_error(std::errc::invalid_argument, object + " has no name");
    const SocketType type = kind == SOCK_SEQPACKET ? SocketType::seqpacket : SocketType::stream;
    struct stat identity {};
    if (!address->is_abstract()) identity = identity_of(*address);
    fd.set_nonblocking(true);  // as bind's: accept honours its deadline
    return UnixListener(std::move(fd), *address, type, identity.st_dev, identity.st_ino);
}

std::optional<UnixSocket> UnixListener::accept(Deadline deadline) {
    const std::string object = describe(address_, type_);
    for (;;) {
        Fd client(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (client) return UnixSocket(std::move(client), type_, object);
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) throw_errno("accept", object);
        if (deadline.is_immediate()) return std::nullopt;
        if (wait_readable(fd_.get(), deadline, object) != Status::ok) return std::nullopt;
    }
}

// ---------------------------------------------------------------------------------------------
// UnixDatagram

UnixDatagram UnixDatagram::bind(const UnixAddress& address, unsigned mode) {
    const std::string object = describe(address, SocketType::datagram);
    Fd fd = new_socket(SocketType::datagram, 0, object);
    if (address.is_abstract()) {
        bind_replacing_stale(fd.get(), address, object);
        return UnixDatagram(std::move(fd), address, 0, 0);
    }
    {
        // A datagram socket takes messages from the moment it is bound, so its file must be
        // born with the final permissions: the umask is narrowed for the bind. umask is
        // process-wide; a file another thread creates meanwhile can only get fewer
        // permissions, never more.
        const std::lock_guard lock(umask_mutex);
        const mode_t old = ::umask(static_cast<mode_t>(~mode & 0777));
        try {
            bind_replacing_stale(fd.get(), address, object);
        } catch (...) {
            ::umask(old);
            throw;
        }
        ::umask(old);
    }
    struct stat identity {};
    try {
        set_file_mode(address, mode);  // a default ACL on the directory overrides the umask
        identity = identity_of(address);
    } catch (...) {
        ::unlink(address.name().c_str());
        throw;
    }
    return UnixDatagram(std::move(fd), address, identity.st_dev, identity.st_ino);
}

UnixDatagram UnixDatagram::unnamed() {
    return UnixDatagram(new_socket(SocketType::datagram, 0, "unix+dgram (unnamed)"), std::nullopt, 0, 0);
}

UnixDatagram UnixDatagram::autobind() {
    Fd fd = new_socket(SocketType::datagram, 0, "unix+dgram (autobind)");
    // Binding with only the family asks the kernel for a unique abstract name.
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa_family_t)) != 0)
        throw_errno("bind", "unix+dgram (autobind)");
    return UnixDatagram(std::move(fd), std::nullopt, 0, 0);
}

std::optional<UnixAddress> UnixDatagram::local_address() const {
    sockaddr_un sa{};
    socklen_t length = sizeof sa;
    if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&sa), &length) != 0)
        throw_errno("getsockname", "unix+dgram");
    return UnixAddress::from_sockaddr(sa, length);
}

IoResult UnixDatagram::send_to(std::span<const std::byte> data, const UnixAddress& to, Deadline deadline) {
    const std::string object = describe(to, SocketType::datagram);
    sockaddr_un sa{};
    const socklen_t length = to.to_sockaddr(sa);
    // poll(2) cannot see a receiver's full queue from an unconnected socket (it would report
    // writable at once and spin), so with a deadline the wait for room is a bounded back-off.
    const int flags = deadline.is_never() ? MSG_NOSIGNAL : MSG_NOSIGNAL | MSG_DONTWAIT;
    auto backoff = detail::Backoff::for_message();
    for (;;) {
        const ssize_t n = ::sendto(fd_.get(), data.data(), data.size(), flags,
                                   reinterpret_cast<const sockaddr*>(&sa), length);
        if (n >= 0) return {Status::ok, static_cast<std::size_t>(n)};
        const int err = errno;
        if (err == EINTR) continue;
        if (err == ECONNREFUSED) return {Status::closed, 0};
        if (err == EMSGSIZE)
            throw Error(std::make_error_code(std::errc::message_size),
                        "sendto(" + object + "): a datagram of " + std::to_string(data.size()) +
                            " bytes is over what this socket can carry (see SO_SNDBUF)");
        if (err != EAGAIN && err != EWOULDBLOCK) throw_errno("sendto", object, err);
        if (deadline.is_immediate()) return {Status::would_block, 0};
        if (!backoff.pause(deadline)) return {Status::timed_out, 0};
    }
}

UnixDatagram::Received UnixDatagram::recv_from(std::span<std::byte> buffer, Deadline deadline) {
    const std::string object = address_ ? describe(*address_, SocketType::datagram) : "unix+dgram";
    sockaddr_un sa{};
    socklen_t length = 0;
    const detail::SocketCall c =
        detail::retry_socket_call(fd_.get(), detail::Readiness::readable, deadline, object, [&](int flags) {
            length = sizeof sa;
            return ::recvfrom(fd_.get(), buffer.data(), buffer.size(), flags | MSG_TRUNC,
                              reinterpret_cast<sockaddr*>(&sa), &length);
        });
    if (c.status != Status::ok) return {{c.status, 0}, std::nullopt};
    if (c.n < 0) throw_errno("recvfrom", object, c.err);
    const auto n = static_cast<std::size_t>(c.n);
    if (n > buffer.size()) detail::throw_truncated("recvfrom", object, n, buffer.size());
    return {{Status::ok, n}, UnixAddress::from_sockaddr(sa, length)};
}

}  // namespace ipckit
