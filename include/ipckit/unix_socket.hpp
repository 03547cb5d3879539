// ipckit/unix_socket.hpp — Unix domain sockets: stream, seqpacket and datagram, by path or
// abstract name, with descriptor passing (SCM_RIGHTS) and peer credentials (SO_PEERCRED).
//
// `UnixAddress` names a socket: a filesystem path ("/run/app.sock") or an abstract name
// ("@app", Linux only: no file, gone when the last socket closes). `UnixListener` binds and
// accepts (stream, seqpacket); `UnixSocket` is one connected end of any type; `UnixDatagram`
// is a bound or unnamed datagram socket that talks to many peers with send_to/recv_from.
//
// A filesystem socket is created with mode 0600 (or the mode asked for) before anybody can
// connect to it; a stale socket file left by a dead process is replaced; any other file at
// the path (regular file, FIFO, symlink, directory) is an error and stays untouched. The
// listener removes its file when it goes away, unless `keep()` was called.
//
// Example:
//     auto listener = ipckit::UnixListener::bind(ipckit::UnixAddress::parse("@echo"),
//                                                ipckit::SocketType::seqpacket);
//     // another process:
//     auto client = ipckit::UnixSocket::connect(ipckit::UnixAddress::parse("@echo"),
//                                               ipckit::SocketType::seqpacket,
//                                               ipckit::Deadline::after(1s));
//     (void)client.send(ipckit::as_bytes("hello"));
//     // back in the server:
//     if (auto peer = listener.accept(ipckit::Deadline::after(1s))) {
//         std::array<std::byte, 64> buffer;
//         auto r = peer->recv(buffer);                // one call = one whole message
//         auto who = peer->peer_credentials();        // {pid, uid, gid} of the client
//     }
//
// Results: send/recv return `Status::ok`, `would_block` (Deadline::immediate or a
// non-blocking socket), `timed_out`, or `closed` (the peer closed or died). Reading a
// stream returns what is there (at least one byte); `read_exact` in io.hpp completes records.
// Sending on a stream sends everything; once the first byte is out the rest follows whatever
// the deadline, so a record is never torn by a timeout (a dead peer still ends the wait).
// Errors: every failing call throws `ipckit::Error` naming the call and the address. A
// datagram or seqpacket message larger than the receive buffer, and descriptors that did not
// fit in `max_fds`, are errors that say so: a truncated message is never passed off as whole.
// `connect` throws on refusal, a missing socket and on timeout (code `std::errc::timed_out`);
// `accept` returns no socket on timeout, as a value.
// Thread-safety: like `Fd`: distinct objects are independent; one object, one thread.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ipckit/deadline.hpp"
#include "ipckit/detail/owned.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/io.hpp"

struct sockaddr_un;

namespace ipckit {

enum class SocketType {
    stream,     // bytes, like a pipe in both directions
    seqpacket,  // whole messages, in order, connection-oriented (Linux)
    datagram,   // whole messages, connectionless; reliable and ordered on a Unix socket
};

[[nodiscard]] std::string_view to_string(SocketType type) noexcept;

class UnixAddress {
public:
    // Longest name that fits in sockaddr_un::sun_path: 108 bytes less the terminating NUL of a
    // path (or the leading NUL of an abstract name).
    static constexpr std::size_t max_length = 107;

    // "@name" is an abstract name, anything else a path. Throws `Error` (invalid_argument or
    // filename_too_long) for an empty text, an embedded NUL or a name over `max_length`,
    // quoting the text and the limit.
    [[nodiscard]] static UnixAddress parse(std::string_view text);
    [[nodiscard]] static UnixAddress path(std::string_view path);
    [[nodiscard]] static UnixAddress abstract(std::string_view name);

    [[nodiscard]] bool is_abstract() const noexcept { return abstract_; }
    // The path, or the abstract name without its '@'.
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    // "@name" or the path: what `parse` accepts.
    [[nodiscard]] std::string to_string() const;

    // For the system calls: fills `out` and returns the length to pass with it.
    [[nodiscard]] unsigned to_sockaddr(sockaddr_un& out) const noexcept;
    // The address the kernel reported, or nullopt for an unnamed socket.
    [[nodiscard]] static std::optional<UnixAddress> from_sockaddr(const sockaddr_un& address,
                                                                  unsigned length);

    friend bool operator==(const UnixAddress&, const UnixAddress&) = default;

private:
    UnixAddress(std::string name, bool abstract) : name_(std::move(name)), abstract_(abstract) {}
    std::string name_;
    bool abstract_ = false;
};

struct PeerCredentials {
    pid_t pid = 0;  // the process that connected (or created the pair), as seen in our pid namespace
    uid_t uid = 0;
    gid_t gid = 0;
};

// What `recv_with_fds` received: the message's bytes and the descriptors that came with it,
// owned (close-on-exec), so none can leak.
struct FdMessage {
    IoResult io;
    std::vector<Fd> fds;
};

// Most descriptors one message may carry (the kernel's SCM_MAX_FD).
inline constexpr std::size_t max_fds_per_message = 253;

class UnixSocket {
public:
    // Connects to a listener (stream, seqpacket) or to a bound datagram socket. A Unix connect
    // completes at once or waits for room in the listener's backlog; the deadline bounds that
    // wait. Throws Error: connection refused (nobody listens), no such file, permission
    // denied, wrong socket type, or timed_out when the backlog stayed full.
    [[nodiscard]] static UnixSocket connect(const UnixAddress& address, SocketType type,
                                            Deadline deadline = Deadline::never());
    // Two connected sockets (socketpair), e.g. to share with a child across fork.
    [[nodiscard]] static std::pair<UnixSocket, UnixSocket> pair(SocketType type);
    // Adopts a connected Unix socket (inherited across exec, or received with SCM_RIGHTS).
    [[nodiscard]] static UnixSocket adopt(Fd fd);

    // Sends `data`: on a stream all of it, on seqpacket/datagram one message (an empty
    // seqpacket message is refused: its receiver could not tell it from end of stream; a
    // message over the socket's limit is an error naming both sizes).
    [[nodiscard]] IoResult send(std::span<const std::byte> data, Deadline deadline = Deadline::never());
    // Receives: on a stream what is there (at least one byte), on seqpacket/datagram one
    // whole message; a larger message is an error (`message_size`) and is lost, so size the
    // buffer with `next_message_size` when unsure.
    [[nodiscard]] IoResult recv(std::span<std::byte> buffer, Deadline deadline = Deadline::never());
    // Size of the next seqpacket/datagram message without taking it (MSG_PEEK|MSG_TRUNC).
    [[nodiscard]] IoResult next_message_size(Deadline deadline = Deadline::never());

    // Sends `data` with up to `max_fds_per_message` descriptors (SCM_RIGHTS). The descriptors
    // stay ours; the peer receives duplicates. A stream needs at least one byte of data.
    [[nodiscard]] IoResult send_with_fds(std::span<const std::byte> data, std::span<const int> fds,
                                         Deadline deadline = Deadline::never());
    // Receives like `recv`, plus up to `max_fds` descriptors. More descriptors than that is an
    // error (`message_size`): the kernel drops those that did not fit, and the ones that did
    // are closed before the throw, so nothing leaks.
    [[nodiscard]] FdMessage recv_with_fds(std::span<std::byte> buffer, std::size_t max_fds,
                                          Deadline deadline = Deadline::never());

    // Who is at the other end (SO_PEERCRED): captured at connect/socketpair time.
    [[nodiscard]] PeerCredentials peer_credentials() const;
    [[nodiscard]] SocketType type() const noexcept { return type_; }
    // Half-close: the peer reads end of stream, we can still receive.
    void shutdown_write();
    void set_nonblocking(bool on) const { fd_.set_nonblocking(on); }
    [[nodiscard]] const Fd& fd() const noexcept { return fd_; }
    // For error messages: the address connected to, or "unix socketpair".
    [[nodiscard]] const std::string& description() const noexcept { return description_; }

private:
    UnixSocket(Fd fd, SocketType type, std::string description)
        : fd_(std::move(fd)), type_(type), description_(std::move(description)) {}
    friend class UnixListener;
    Fd fd_;
    SocketType type_ = SocketType::stream;
    std::string description_;
};

class UnixListener {
public:
    // Binds and listens (stream or seqpacket; datagram servers use `UnixDatagram::bind`).
    // A filesystem socket gets `mode` before listen(2), so no client can connect while its
    // permissions are still the umask's. `mode` does not apply to abstract names: anyone in
    // the network namespace may connect there; check `peer_credentials()`.
    [[nodiscard]] static UnixListener bind(const UnixAddress& address, SocketType type, unsigned mode = 0600,
                                           int backlog = 128);
    // Adopts a listening Unix socket received with SCM_RIGHTS (or inherited), say from a server
    // that hands its name over as it closes: the name stays bound throughout, and connections
    // queued on it are kept. The address is the one it is bound to; a socket file is owned (and
    // removed) from now on by this listener, so the sender must `keep()` its own. Throws Error
    // for a descriptor that is not a listening, named Unix stream or seqpacket socket.
    [[nodiscard]] static UnixListener adopt(Fd fd);

    UnixListener(UnixListener&&) noexcept = default;
    UnixListener& operator=(UnixListener&&) noexcept = default;
    ~UnixListener() = default;

    // The next client, or nullopt when the deadline passes first (or would block).
    [[nodiscard]] std::optional<UnixSocket> accept(Deadline deadline = Deadline::never());
    // Leave the socket file in place when this listener goes away.
    void keep() noexcept { file_.keep(); }
    [[nodiscard]] const UnixAddress& address() const noexcept { return address_; }
    [[nodiscard]] SocketType type() const noexcept { return type_; }
    // Always non-blocking (accept waits with poll), ready for epoll.
    [[nodiscard]] const Fd& fd() const noexcept { return fd_; }

private:
    UnixListener(Fd fd, UnixAddress address, SocketType type, dev_t dev, ino_t ino)
        : fd_(std::move(fd)),
          address_(std::move(address)),
          type_(type),
          file_({address_.is_abstract() ? std::string() : address_.name(), S_IFSOCK, dev, ino},
                !address_.is_abstract()) {}
    Fd fd_;
    UnixAddress address_;
    SocketType type_;
    detail::OwnedFile file_;  // after fd_: unlinked (if still this socket) before the descriptor closes
};

// A datagram socket that talks to any number of peers by address.
class UnixDatagram {
public:
    // Binds to `address` (stale file replaced, other files refused, as for UnixListener); the
    // file is created under a umask that already yields `mode` (see docs/sockets.md).
    [[nodiscard]] static UnixDatagram bind(const UnixAddress& address, unsigned mode = 0600);
    // An unnamed socket: it can send but nobody can answer it.
    [[nodiscard]] static UnixDatagram unnamed();
    // Bound to a fresh abstract name chosen by the kernel (autobind), so peers can reply.
    [[nodiscard]] static UnixDatagram autobind();

    UnixDatagram(UnixDatagram&&) noexcept = default;
    UnixDatagram& operator=(UnixDatagram&&) noexcept = default;
    ~UnixDatagram() = default;

    // One datagram to `to`. `closed` when nobody is bound there any more (ECONNREFUSED).
    [[nodiscard]] IoResult send_to(std::span<const std::byte> data, const UnixAddress& to,
                                   Deadline deadline = Deadline::never());
    struct Received {
        IoResult io;
        std::optional<UnixAddress> from;  // nullopt: an unnamed sender
    };
    // One whole datagram; a larger one is an error (`message_size`) naming both sizes.
    [[nodiscard]] Received recv_from(std::span<std::byte> buffer, Deadline deadline = Deadline::never());

    [[nodiscard]] std::optional<UnixAddress> local_address() const;
    void keep() noexcept { file_.keep(); }
    void set_nonblocking(bool on) const { fd_.set_nonblocking(on); }
    [[nodiscard]] const Fd& fd() const noexcept { return fd_; }

private:
    UnixDatagram(Fd fd, std::optional<UnixAddress> address, dev_t dev, ino_t ino)
        : fd_(std::move(fd)),
          address_(std::move(address)),
          file_({address_ && !address_->is_abstract() ? address_->name() : std::string(), S_IFSOCK, dev, ino},
                address_ && !address_->is_abstract()) {}
    Fd fd_;
    std::optional<UnixAddress> address_;  // the path we own, if any
    detail::OwnedFile file_;              // unlinked (if still this socket) when it goes
};

}  // namespace ipckit
