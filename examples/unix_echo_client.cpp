// unix_echo_client — sends each line of standard input to a unix_echo_server and prints the
// echo that comes back.
//
// With --wait SECONDS it keeps trying to connect while the server is not there yet (no socket,
// or nobody listening), so a script can start both at once.
//
//     $ printf 'one\ntwo\n' | build/bin/unix_echo_client @echo --wait 5
//     echo: one
//     echo: two
#include <charconv>
#include <chrono>
#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "ipckit/unix_socket.hpp"

namespace {

using namespace std::chrono_literals;

int usage(const std::string& problem) {
    std::fprintf(stderr,
                 "unix_echo_client: %s\n"
                 "usage: unix_echo_client ADDRESS [--wait SECONDS]\n"
                 "  ADDRESS         the server's socket path, or @name\n"
                 "  --wait SECONDS  retry while the server is not up yet (default: fail at once)\n",
                 problem.c_str());
    return 2;
}

ipckit::UnixSocket connect_with_retries(const ipckit::UnixAddress& address, std::chrono::seconds wait) {
    const auto give_up = ipckit::Deadline::after(wait);
    for (;;) {
        try {
            return ipckit::UnixSocket::connect(address, ipckit::SocketType::stream,
                                               ipckit::Deadline::after(5s));
        } catch (const ipckit::Error& e) {
            const bool not_up_yet =
                e.code() == std::errc::no_such_file_or_directory || e.code() == std::errc::connection_refused;
            if (!not_up_yet || give_up.expired()) throw;
        }
        std::this_thread::sleep_for(20ms);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage("no address given");
    long wait_seconds = 0;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--wait" && i + 1 < argc) {
            const std::string_view value = argv[++i];
            const auto [end, error] =
                std::from_chars(value.data(), value.data() + value.size(), wait_seconds);
            if (error != std::errc() || end != value.data() + value.size() || wait_seconds < 0)
                return usage("--wait needs a number of seconds");
        } else {
            return usage("unknown argument " + std::string(arg));
        }
    }
    try {
        auto socket =
            connect_with_retries(ipckit::UnixAddress::parse(argv[1]), std::chrono::seconds(wait_seconds));
        std::string line;
        std::string pending;  // echoed bytes not yet printed
        std::array<std::byte, 4096> buffer;
        while (std::getline(std::cin, line)) {
            line += '\n';
            if (socket.send(ipckit::as_bytes(line)).status != ipckit::Status::ok) {
                std::fprintf(stderr, "unix_echo_client: the server closed the connection\n");
                return 1;
            }
            // The echo may come back in pieces: read until the whole line is here.
            while (pending.find('\n') == std::string::npos) {
                const auto r = socket.recv(buffer, ipckit::Deadline::after(30s));
                if (r.status != ipckit::Status::ok) {
                    std::fprintf(stderr, "unix_echo_client: no echo: %s\n",
                                 std::string(ipckit::to_string(r.status)).c_str());
                    return 1;
                }
                pending.append(reinterpret_cast<const char*>(buffer.data()), r.bytes);
            }
            const auto end = pending.find('\n');
            std::printf("echo: %s\n", pending.substr(0, end).c_str());
            pending.erase(0, end + 1);
        }
        socket.shutdown_write();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unix_echo_client: %s\n", e.what());
        return 1;
    }
}
