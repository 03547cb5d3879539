// Test support: one address per transport, unique to the test that makes it.
//
// The channel tests and the fault suites run the same scenarios over every transport; this
// is the one place that knows how to name a fresh object of each kind (a path in the test's
// TempDir, a unique POSIX name, a random System V key, a free TCP port).
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace ipckit::test {

struct TransportCase {
    std::string name;  // also the gtest parameter name: letters, digits and '_'
    // Makes a fresh address (unique name) for one test; paths go inside `dir`.
    std::function<std::string(const TempDir& dir)> address;
    // Connectionless: a receiver learns nothing of its senders, so no `closed` on their exit.
    bool connectionless = false;
    // Publish/subscribe: a sender is never `closed` by its receivers leaving or dying (it goes
    // on publishing to whoever is subscribed, possibly nobody).
    bool broadcast = false;
};

// gtest prints a parameter with this: the name, not the object's bytes.
inline void PrintTo(const TransportCase& transport, std::ostream* out) {
    *out << transport.name;
}

// Every transport a channel address can name except fd: (an inherited descriptor has no
// address to create: tests make the pipe themselves).
[[nodiscard]] std::vector<TransportCase> all_transports();

// A System V key in a range ipckit's tests keep to (0x1c……), random: collisions with another
// run are unlikely, and creation is exclusive, so one would fail loudly rather than share.
[[nodiscard]] std::uint32_t random_sysv_key();
// "0x1c2a3b4c": the key as a sysvmq:/sysvshm: address takes it.
[[nodiscard]] std::string hex_key(std::uint32_t key);
// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it).
[[nodiscard]] std::uint16_t free_tcp_port();

}  // namespace ipckit::test
