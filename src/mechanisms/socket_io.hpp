// Private: the send/recv loops shared by Unix and TCP sockets (src/mechanisms/unix_socket.cpp,
// src/mechanisms/tcp.cpp).
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "ipckit/deadline.hpp"
#include "ipckit/error.hpp"
#include "ipckit/io.hpp"

namespace ipckit::detail {

enum class Readiness { readable, writable };

// The outcome of one socket call retried across EINTR and EAGAIN: either the wait ended for an
// expected reason (`status` not ok), or the call returned `n` (>= 0) or failed with `err`.
struct SocketCall {
    Status status = Status::ok;
    ssize_t n = -1;
    int err = 0;
};

// Runs `call(flags)` until it does something. With a finite deadline the call is made with
// MSG_DONTWAIT and poll(2) waits between attempts, so a ready socket costs one system call and
// a socket that is blocking for others still honours our deadline. With `never` the call
// blocks in the kernel (unless the socket is non-blocking: then poll waits forever).
template <class Call>
SocketCall retry_socket_call(int fd, Readiness readiness, Deadline deadline, std::string_view object,
                             Call call) {
    const int flags = deadline.is_never() ? 0 : MSG_DONTWAIT;
    for (;;) {
        const ssize_t n = call(flags);
        if (n >= 0) return {Status::ok, n, 0};
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return {Status::ok, -1, errno};
        if (deadline.is_immediate()) return {Status::would_block, -1, EAGAIN};
        const Status s = readiness == Readiness::readable ? wait_readable(fd, deadline, object)
                                                          : wait_writable(fd, deadline, object);
        if (s != Status::ok) return {s, -1, EAGAIN};
    }
}

// Sends all of `data` on a stream socket without SIGPIPE. Once the first byte is out the rest
// follows whatever the deadline (a record is never torn by a timeout); a peer that closed or
// died ends it with `closed` and the count sent.
inline IoResult stream_send(int fd, std::span<const std::byte> data, Deadline deadline,
                            std::string_view object, std::size_t already_sent = 0) {
    std::size_t done = already_sent;
    while (done < data.size()) {
        const Deadline now_deadline = done > 0 ? Deadline::never() : deadline;
        const SocketCall c = retry_socket_call(fd, Readiness::writable, now_deadline, object, [&](int flags) {
            return ::send(fd, data.data() + done, data.size() - done, flags | MSG_NOSIGNAL);
        });
        if (c.status != Status::ok) return {c.status, done};
        if (c.n < 0) {
            if (c.err == EPIPE || c.err == ECONNRESET || c.err == ENOTCONN) return {Status::closed, done};
            throw_errno("send", object, c.err);
        }
        done += static_cast<std::size_t>(c.n);
    }
    return {Status::ok, done};
}

// Reads what a stream socket has (at least one byte); end of stream or a reset is `closed`.
inline IoResult stream_recv(int fd, std::span<std::byte> buffer, Deadline deadline, std::string_view object) {
    const SocketCall c = retry_socket_call(fd, Readiness::readable, deadline, object, [&](int flags) {
        return ::recv(fd, buffer.data(), buffer.size(), flags);
    });
    if (c.status != Status::ok) return {c.status, 0};
    if (c.n < 0) {
        if (c.err == ECONNRESET) return {Status::closed, 0};
        throw_errno("recv", object, c.err);
    }
    if (c.n == 0 && !buffer.empty()) return {Status::closed, 0};
    return {Status::ok, static_cast<std::size_t>(c.n)};
}

// The error for a whole message that did not fit: it names both sizes.
[[noreturn]] inline void throw_truncated(std::string_view call, std::string_view object, std::size_t message,
                                         std::size_t buffer) {
    throw Error(std::make_error_code(std::errc::message_size),
                std::string(call) + "(" + std::string(object) + "): a message of " + std::to_string(message) +
                    " bytes does not fit in the " + std::to_string(buffer) +
                    "-byte buffer; it was truncated and discarded");
}

}  // namespace ipckit::detail
