// unix_echo_server — a Unix stream socket server that echoes what each client sends and shows
// who the client is (SO_PEERCRED), the way a daemon decides who may talk to it.
//
// Listens at a path (created 0600; a stale socket file is replaced, any other file refused) or
// at an abstract name (@name). Serves any number of clients at once from one poll(2) loop.
// SIGINT or SIGTERM end it cleanly, removing the socket file; so does --clients N, after N
// clients have come and gone.
//
//     $ build/bin/unix_echo_server /tmp/echo.sock &
//     unix_echo_server: listening on /tmp/echo.sock
//     $ printf 'hello\n' | build/bin/unix_echo_client /tmp/echo.sock
//     unix_echo_server: client 1 connected: pid=4242 uid=1000 gid=1000
//     echo: hello
//     unix_echo_server: client 1 disconnected
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <charconv>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/unix_socket.hpp"

namespace {

int usage(const std::string& problem) {
    std::fprintf(stderr,
                 "unix_echo_server: %s\n"
                 "usage: unix_echo_server ADDRESS [--clients N]\n"
                 "  ADDRESS      a socket path, or @name for an abstract name\n"
                 "  --clients N  exit after N clients have disconnected\n",
                 problem.c_str());
    return 2;
}

struct Client {
    ipckit::UnixSocket socket;
    int number;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage("no address given");
    long max_clients = -1;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--clients" && i + 1 < argc) {
            const std::string_view value = argv[++i];
            const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), max_clients);
            if (error != std::errc() || end != value.data() + value.size() || max_clients < 1)
                return usage("--clients needs a positive number");
        } else {
            return usage("unknown argument " + std::string(arg));
        }
    }
    try {
        // The signals arrive as readable data on a descriptor, so the poll loop sees them and the
        // listener's destructor gets to remove the socket file.
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        sigprocmask(SIG_BLOCK, &stop, nullptr);
        ipckit::Fd signals(::signalfd(-1, &stop, SFD_CLOEXEC));
        if (!signals) ipckit::throw_errno("signalfd", "SIGINT, SIGTERM");

        auto listener =
            ipckit::UnixListener::bind(ipckit::UnixAddress::parse(argv[1]), ipckit::SocketType::stream);
        std::printf("unix_echo_server: listening on %s\n", listener.address().to_string().c_str());
        std::fflush(stdout);

        std::map<int, Client> clients;  // by descriptor
        int next_number = 1;
        long finished = 0;
        std::vector<std::byte> buffer(64 * 1024);
        while (max_clients < 0 || finished < max_clients) {
            std::vector<pollfd> fds{{signals.get(), POLLIN, 0}, {listener.fd().get(), POLLIN, 0}};
            for (const auto& [fd, client] : clients)
                fds.push_back({fd, POLLIN, 0});
            if (::poll(fds.data(), fds.size(), -1) < 0) {
                if (errno == EINTR) continue;
                ipckit::throw_errno("poll", "clients");
            }
            if (fds[0].revents != 0) {
                std::printf("unix_echo_server: stopping on a signal\n");
                break;
            }
            if (fds[1].revents != 0) {
                if (auto socket = listener.accept(ipckit::Deadline::immediate())) {
                    const auto who = socket->peer_credentials();
                    std::printf("unix_echo_server: client %d connected: pid=%d uid=%u gid=%u\n", next_number,
                                static_cast<int>(who.pid), static_cast<unsigned>(who.uid),
                                static_cast<unsigned>(who.gid));
                    const int fd = socket->fd().get();
                    clients.emplace(fd, Client{std::move(*socket), next_number++});
                }
            }
            for (std::size_t i = 2; i < fds.size(); ++i) {
                if (fds[i].revents == 0) continue;
                Client& client = clients.at(fds[i].fd);
                auto received = client.socket.recv(buffer, ipckit::Deadline::immediate());
                if (received.ok()) {
                    // A slow client may hold us up for this echo; a dead one just ends it.
                    received = client.socket.send(std::span(buffer).first(received.bytes));
                }
                if (received.status == ipckit::Status::closed) {
                    std::printf("unix_echo_server: client %d disconnected\n", client.number);
                    clients.erase(fds[i].fd);
                    ++finished;
                }
            }
            std::fflush(stdout);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unix_echo_server: %s\n", e.what());
        return 1;
    }
}
