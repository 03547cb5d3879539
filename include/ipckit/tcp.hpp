// ipckit/tcp.hpp — TCP streams and listeners: the same stream API as Unix sockets, across machines.
//
// `TcpListener::listen(host, port)` binds (SO_REUSEADDR, so a restarted server does not wait
// out TIME_WAIT) and listens; port 0 picks a free port, read back with `local_port()`.
// `TcpStream::connect(host, port, deadline)` resolves the host with getaddrinfo (IPv4, IPv6,
// "localhost", literal addresses with or without [brackets]) and tries each address in turn
// until one connects. TCP_NODELAY is on: ipckit sends whole messages, and Nagle's algorithm
// would hold a small message back waiting for an acknowledgement.
//
// Example:
//     auto listener = ipckit::TcpListener::listen("127.0.0.1", 0);
//     auto port = listener.local_port();
//     // another process:
//     auto stream = ipckit::TcpStream::connect("127.0.0.1", port, ipckit::Deadline::after(2s));
//     (void)stream.send(ipckit::as_bytes("ping"));
//     // the server:
//     if (auto peer = listener.accept(ipckit::Deadline::after(2s))) {
//         std::array<std::byte, 4> buffer;
//         auto r = ipckit::read_exact(peer->fd().get(), buffer, ipckit::Deadline::after(2s), "tcp peer");
//     }
//
// Results: send/recv as for `UnixSocket` streams: `ok`, `would_block`, `timed_out`, or `closed`
// (the peer closed, reset, or died). `accept` returns no stream on timeout.
// Errors: `ipckit::Error` naming the call and "tcp://host:port". `connect` throws for a refused
// connection (econnrefused), an unreachable network or host, a timeout (code
// `std::errc::timed_out`), and a name that does not resolve (category `resolver_category()`,
// the message is gai_strerror's). `listen` throws for an address in use.
// Thread-safety: distinct objects are independent; one object, one thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "ipckit/deadline.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/io.hpp"

namespace ipckit {

// Error category for getaddrinfo's EAI_* codes.
[[nodiscard]] const std::error_category& resolver_category() noexcept;

class TcpStream {
public:
    [[nodiscard]] static TcpStream connect(std::string_view host, std::uint16_t port,
                                           Deadline deadline = Deadline::never());
    // Adopts a connected TCP socket; TCP_NODELAY is left as it is.
    [[nodiscard]] static TcpStream adopt(Fd fd);

    // Sends all of `data`; once the first byte is out the rest follows whatever the deadline.
    [[nodiscard]] IoResult send(std::span<const std::byte> data, Deadline deadline = Deadline::never());
    // Reads what is there: at least one byte, or `closed` at end of stream or reset.
    [[nodiscard]] IoResult recv(std::span<std::byte> buffer, Deadline deadline = Deadline::never());

    void set_nodelay(bool on);
    [[nodiscard]] bool nodelay() const;
    // Half-close: the peer reads end of stream, we can still receive.
    void shutdown_write();
    // "127.0.0.1:5000" or "[::1]:5000".
    [[nodiscard]] std::string local_address() const;
    [[nodiscard]] std::string peer_address() const;
    void set_nonblocking(bool on) const { fd_.set_nonblocking(on); }
    [[nodiscard]] const Fd& fd() const noexcept { return fd_; }
    [[nodiscard]] const std::string& description() const noexcept { return description_; }

private:
    TcpStream(Fd fd, std::string description) : fd_(std::move(fd)), description_(std::move(description)) {}
    friend class TcpListener;
    Fd fd_;
    std::string description_;
};

class TcpListener {
public:
    // `host` "" or "*" listens on every address (IPv6 and IPv4 where the system allows);
    // otherwise the first address of `host` that binds. Port 0 picks a free port.
    [[nodiscard]] static TcpListener listen(std::string_view host, std::uint16_t port, int backlog = 128);

    // The next client (TCP_NODELAY on), or nullopt when the deadline passes first.
    [[nodiscard]] std::optional<TcpStream> accept(Deadline deadline = Deadline::never());
    [[nodiscard]] std::uint16_t local_port() const;
    [[nodiscard]] std::string local_address() const;
    // Always non-blocking (accept waits with poll), ready for epoll.
    [[nodiscard]] const Fd& fd() const noexcept { return fd_; }

private:
    TcpListener(Fd fd, std::string description) : fd_(std::move(fd)), description_(std::move(description)) {}
    Fd fd_;
    std::string description_;
};

}  // namespace ipckit
