// The server behind `ipckit bench`'s `nats` rows: Debian's nats-server on a free loopback port,
// started when the first row needs it and killed when the tool exits (and, through
// PR_SET_PDEATHSIG, if the tool is killed), so the rows measure what the engine costs on one
// machine: two TCP hops through a broker instead of one socket.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "ipckit/fd.hpp"
#include "ipckit/nats.hpp"

namespace ipckit::bench {
namespace {

std::string server_binary() {
    for (const char* path : {"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"})
        if (::access(path, X_OK) == 0) return path;
    return {};
}

bool accepts(std::uint16_t port) {
    Fd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    return probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
}

std::uint16_t pick_port() {
    Fd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (!probe || ::bind(probe.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(probe.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
        throw std::runtime_error("nats: no free loopback port for nats-server");
    return ntohs(address.sin_port);
}

class Server {
public:
    Server() : port_(pick_port()) {
        std::string binary = server_binary(), port = std::to_string(port_), host = "127.0.0.1";
        char* argv[] = {binary.data(), const_cast<char*>("-a"),
                        host.data(),   const_cast<char*>("-p"),
                        port.data(),   nullptr};
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("nats: fork for nats-server failed");
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(120);
            const int null = ::open("/dev/null", O_WRONLY);
            ::dup2(null, 1);
            ::dup2(null, 2);
            ::execv(argv[0], argv);
            ::_exit(127);
        }
        for (int i = 0; i < 500 && !accepts(port_); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (!accepts(port_))
            throw std::runtime_error("nats: nats-server did not listen on 127.0.0.1:" + port);
    }
    ~Server() {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    [[nodiscard]] std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

private:
    std::uint16_t port_;
    pid_t pid_ = -1;
};

}  // namespace

std::string nats_bench_server() {
    static Server server;  // one for every row of the run; the tool's exit stops it
    return server.url();
}

std::optional<std::string> nats_bench_absent() {
    if (!nats_available()) return std::string("not built: libnats-dev was absent when ipckit was configured");
    if (server_binary().empty())
        return std::string("absent: nats-server is not installed (Debian package nats-server)");
    return std::nullopt;
}

}  // namespace ipckit::bench
