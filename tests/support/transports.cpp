#include "support/transports.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <stdexcept>

namespace ipckit::test {

std::uint32_t random_sysv_key() {
    static std::mt19937 rng(std::random_device{}());
    return 0x1c000000u | (rng() & 0x00ffffffu);
}

std::string hex_key(std::uint32_t key) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%08x", key);
    return text;
}

std::uint16_t free_tcp_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket(AF_INET) failed");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    const bool picked = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    ::close(fd);
    if (!picked) throw std::runtime_error("could not pick a free TCP port on 127.0.0.1");
    return ntohs(address.sin_port);
}

std::vector<TransportCase> all_transports() {
    return {
        {"fifo", [](const TempDir& dir) { return "fifo:" + dir.file("channel.fifo"); }},
        {"sysvmq", [](const TempDir&) { return "sysvmq:" + hex_key(random_sysv_key()); }},
        {"posixmq", [](const TempDir&) { return "posixmq:/" + unique_name("ipckit-test"); }},
        {"shm", [](const TempDir&) { return "shm:/" + unique_name("ipckit-test"); }},
        // One sender per scenario takes lane 0; the rest stay vacant.
        {"shm_lanes", [](const TempDir&) { return "shm:/" + unique_name("ipckit-test") + "?senders=2"; }},
        {"shm_memfd", [](const TempDir&) { return "shm:@" + unique_name("ipckit-test"); }},
        {"sysvshm", [](const TempDir&) { return "sysvshm:" + hex_key(random_sysv_key()); }},
        {"unix_path", [](const TempDir& dir) { return "unix:" + dir.file("channel.sock"); }},
        {"unix_abstract", [](const TempDir&) { return "unix:@" + unique_name("ipckit-test"); }},
        {"unix_seqpacket", [](const TempDir&) { return "unix+seqpacket:@" + unique_name("ipckit-test"); }},
        {"unix_dgram", [](const TempDir& dir) { return "unix+dgram:" + dir.file("channel.dgram"); }, true},
        {"tcp", [](const TempDir&) { return "tcp://127.0.0.1:" + std::to_string(free_tcp_port()); }},
        // history=64: the channel scenarios may send before the receiver attaches, which a topic
        // (a subscriber sees what follows its join) keeps only in its history.
        {"topic", [](const TempDir&) { return "topic:/" + unique_name("ipckit-test") + "?history=64"; },
         false, true},
        {"topic_memfd", [](const TempDir&) { return "topic:@" + unique_name("ipckit-test") + "?history=64"; },
         false, true},
    };
}

}  // namespace ipckit::test
