#include "ipckit/tcp.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "ipckit/error.hpp"
#include "socket_io.hpp"

namespace ipckit {
namespace {

class ResolverCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "getaddrinfo"; }
    std::string message(int code) const override { return ::gai_strerror(code); }
};

// "[::1]" and "::1" name the same host; getaddrinfo wants it without brackets.
std::string bare_host(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return std::string(host);
}

bool is_wildcard(std::string_view host) {
    const std::string bare = bare_host(host);
    return bare.empty() || bare == "*";
}

std::string describe(std::string_view host, std::uint16_t port) {
    const std::string bare = bare_host(host);
    const bool ipv6_literal = bare.find(':') != std::string::npos;
    return "tcp://" + (ipv6_literal ? "[" + bare + "]" : bare) + ":" + std::to_string(port);
}

struct AddrinfoDeleter {
    void operator()(addrinfo* list) const noexcept { ::freeaddrinfo(list); }
};
using AddrinfoList = std::unique_ptr<addrinfo, AddrinfoDeleter>;

AddrinfoList resolve(std::string_view host, std::uint16_t port, bool passive, std::string_view object) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    const std::string bare = bare_host(host);
    const bool any = passive && is_wildcard(host);
    const std::string service = std::to_string(port);
    addrinfo* list = nullptr;
    const int rc = ::getaddrinfo(any ? nullptr : bare.c_str(), service.c_str(), &hints, &list);
    if (rc == EAI_SYSTEM) throw_errno("getaddrinfo", object);
    if (rc != 0) throw Error(std::error_code(rc, resolver_category()), "getaddrinfo", object);
    return AddrinfoList(list);
}

std::string format_address(const sockaddr_storage& address) {
    char text[INET6_ADDRSTRLEN] = {};
    if (address.ss_family == AF_INET6) {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
        ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
        return "[" + std::string(text) + "]:" + std::to_string(ntohs(v6.sin6_port));
    }
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    ::inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(v4.sin_port));
}

sockaddr_storage socket_name(int fd, bool peer, std::string_view object) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    const int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length)
                        : ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    if (rc != 0) throw_errno(peer ? "getpeername" : "getsockname", object);
    return address;
}

void set_int_option(int fd, int level, int option, int value, std::string_view call,
                    std::string_view object) {
    if (::setsockopt(fd, level, option, &value, sizeof value) != 0) throw_errno(call, object);
}

// One non-blocking connect, bounded by the deadline. Returns 0, or the errno it failed with;
// ETIMEDOUT when the deadline passed.
int connect_one(int fd, const addrinfo& address, Deadline deadline, std::string_view object) {
    if (::connect(fd, address.ai_addr, address.ai_addrlen) == 0) return 0;
    if (errno != EINPROGRESS && errno != EINTR) return errno;
    // The handshake goes on in the kernel; writable means it finished, one way or the other.
    if (wait_writable(fd, deadline, object) != Status::ok) return ETIMEDOUT;
    int err = 0;
    socklen_t size = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &size) != 0) throw_errno("getsockopt(SO_ERROR)", object);
    return err;
}

}  // namespace

const std::error_category& resolver_category() noexcept {
    static const ResolverCategory category;
    return category;
}

// ---------------------------------------------------------------------------------------------
// TcpStream

TcpStream TcpStream::connect(std::string_view host, std::uint16_t port, Deadline deadline) {
    const std::string object = describe(host, port);
    const AddrinfoList list = resolve(host, port, false, object);
    int last_error = EADDRNOTAVAIL;
    // Each address in getaddrinfo's order ("localhost" may be ::1 then 127.0.0.1), all within
    // the one deadline.
    for (const addrinfo* address = list.get(); address != nullptr; address = address->ai_next) {
        Fd fd(::socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                       address->ai_protocol));
        if (!fd) {
            last_error = errno;
            continue;
        }
        last_error = connect_one(fd.get(), *address, deadline, object);
        if (last_error == ETIMEDOUT && deadline.expired())
            throw Error(std::make_error_code(std::errc::timed_out),
                        "connect(" + object + "): timed out before the connection was established");
        if (last_error != 0) continue;
        fd.set_nonblocking(false);
        set_int_option(fd.get(), IPPROTO_TCP, TCP_NODELAY, 1, "setsockopt(TCP_NODELAY)", object);
        return TcpStream(std::move(fd), object);
    }
    throw_errno("connect", object, last_error);
}

TcpStream TcpStream::adopt(Fd fd) {
    std::string object = "tcp socket fd " + std::to_string(fd.get());
    const sockaddr_storage peer = socket_name(fd.get(), true, object);
    object = "tcp://" + format_address(peer);
    return TcpStream(std::move(fd), object);
}

IoResult TcpStream::send(std::span<const std::byte> data, Deadline deadline) {
    return detail::stream_send(fd_.get(), data, deadline, description_);
}

IoResult TcpStream::recv(std::span<std::byte> buffer, Deadline deadline) {
    return detail::stream_recv(fd_.get(), buffer, deadline, description_);
}

void TcpStream::set_nodelay(bool on) {
    set_int_option(fd_.get(), IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "setsockopt(TCP_NODELAY)", description_);
}

bool TcpStream::nodelay() const {
    int value = 0;
    socklen_t size = sizeof value;
    if (::getsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &value, &size) != 0)
        throw_errno("getsockopt(TCP_NODELAY)", description_);
    return value != 0;
}

void TcpStream::shutdown_write() {
    if (::shutdown(fd_.get(), SHUT_WR) != 0) throw_errno("shutdown", description_);
}

std::string TcpStream::local_address() const {
    return format_address(socket_name(fd_.get(), false, description_));
}

std::string TcpStream::peer_address() const {
    return format_address(socket_name(fd_.get(), true, description_));
}

// ---------------------------------------------------------------------------------------------
// TcpListener

TcpListener TcpListener::listen(std::string_view host, std::uint16_t port, int backlog) {
    const std::string object = describe(host, port);
    const AddrinfoList list = resolve(host, port, true, object);
    int last_error = EADDRNOTAVAIL;
    const char* last_call = "bind";
    // getaddrinfo lists the wildcard 0.0.0.0 before "::", but only "::" takes both families:
    // try IPv6 first, and IPv4 only where IPv6 is not available. A named host keeps its order.
    const bool wildcard = is_wildcard(host);
    std::vector<const addrinfo*> order;
    for (const addrinfo* address = list.get(); address != nullptr; address = address->ai_next)
        if (!wildcard || address->ai_family == AF_INET6) order.push_back(address);
    for (const addrinfo* address = list.get(); wildcard && address != nullptr; address = address->ai_next)
        if (address->ai_family != AF_INET6) order.push_back(address);
    for (const addrinfo* address : order) {
        Fd fd(::socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                       address->ai_protocol));
        if (!fd) {
            last_error = errno;
            last_call = "socket";
            continue;
        }
        // A restarted server can bind at once while old connections sit in TIME_WAIT.
        set_int_option(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)", object);
        if (address->ai_family == AF_INET6 && (address->ai_flags & AI_PASSIVE) != 0) {
            // The wildcard "::" also takes IPv4 clients, whatever net.ipv6.bindv6only says.
            const auto& v6 = reinterpret_cast<const sockaddr_in6&>(*address->ai_addr);
            if (IN6_IS_ADDR_UNSPECIFIED(&v6.sin6_addr))
                set_int_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 0, "setsockopt(IPV6_V6ONLY)", object);
        }
        if (::bind(fd.get(), address->ai_addr, address->ai_addrlen) != 0) {
            last_error = errno;
            last_call = "bind";
            continue;
        }
        if (::listen(fd.get(), backlog) != 0) {
            last_error = errno;
            last_call = "listen";
            continue;
        }
        return TcpListener(std::move(fd), object);
    }
    throw_errno(last_call, object, last_error);
}

std::optional<TcpStream> TcpListener::accept(Deadline deadline) {
    for (;;) {
        sockaddr_storage peer{};
        socklen_t length = sizeof peer;
        Fd client(::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &length, SOCK_CLOEXEC));
        if (client) {
            TcpStream stream(std::move(client), "tcp://" + format_address(peer));
            stream.set_nodelay(true);
            return stream;
        }
        // ECONNABORTED: the client gave up before we took it; the next one may be waiting.
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) throw_errno("accept", description_);
        if (deadline.is_immediate()) return std::nullopt;
        if (wait_readable(fd_.get(), deadline, description_) != Status::ok) return std::nullopt;
    }
}

std::uint16_t TcpListener::local_port() const {
    const sockaddr_storage address = socket_name(fd_.get(), false, description_);
    if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
    return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
}

std::string TcpListener::local_address() const {
    return format_address(socket_name(fd_.get(), false, description_));
}

}  // namespace ipckit
