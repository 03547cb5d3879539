// ipckit/bridge.hpp — forwards every message from one channel to another.
//
// A bridge joins a fast local transport to one that crosses hosts, so local programs keep
// their fastest path and only the bridge talks to the network:
//
//     host A:  ipckit bridge topic:/cam nats://hub:4222/cam
//     host B:  ipckit bridge nats://hub:4222/cam topic:/cam
//
// It takes one message, hands it on, and only then takes the next: a slow destination holds
// the source back (its ring fills, its kernel buffer fills, or the NATS server keeps the
// stream) instead of the bridge buffering without bound. A stop request (`stop` set, e.g. by
// a SIGINT handler) ends the run between messages; the message in hand is still delivered,
// within `drain`, so nothing the source counted as taken is dropped. A JetStream source
// acknowledges a message only once it was passed on (see nats.hpp); one that could not be
// passed on is handed back to the server.
//
// Example:
//     std::atomic<bool> stop{false};
//     ipckit::Bridge bridge(ipckit::Receiver::create("shm:/cam"),
//                           ipckit::Sender::open("nats://localhost:4222/cam"));
//     const ipckit::BridgeCounts counts = bridge.run(stop);
//
// Results: `run` returns when the source closes, the destination closes, or `stop` is set;
// the counts say which (`ended`). Errors: what the channels throw (a message over the
// destination's max_message_size() is an Error naming both addresses and the limit).
// Thread-safety: one thread runs a bridge; `stop` may be set from any thread or a signal handler.
//
// A ServiceBridge exposes a service (service.hpp) on another address: each call that arrives at
// the exposed server is made on the service as a client, and the response goes back to its
// caller. `ipckit bridge service:/calc nats://hub:4222/calc` answers NATS requests on `calc`
// with the local service:/calc. One call at a time, each bounded by `call_timeout`; a call that
// fails there (timed out, or the service's server died) gets no reply, so its caller sees its
// own deadline pass, and it is counted in `undelivered`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "ipckit/channel.hpp"
#include "ipckit/service.hpp"

namespace ipckit {

struct BridgeCounts {
    std::uint64_t messages = 0;     // received and delivered
    std::uint64_t bytes = 0;        // of those messages
    std::uint64_t undelivered = 0;  // received, but the destination refused or closed (0 or 1;
                                    // a service bridge: calls that got no answer to pass back)
    double seconds = 0;             // since run() began
    std::string ended;              // why run() returned: "stopped", "source closed", ...
};

struct BridgeOptions {
    // Called about every `progress_interval` while the bridge runs (not at all when empty).
    std::function<void(const BridgeCounts&)> progress;
    std::chrono::milliseconds progress_interval{1000};
    // After a stop request, how long the message in hand may take to be delivered.
    std::chrono::milliseconds drain{5000};
    // A service bridge: how long one call to the service may take.
    std::chrono::milliseconds call_timeout{30000};
};

class Bridge {
public:
    Bridge(Receiver from, Sender to, BridgeOptions options = {});

    // Forwards until the source closes, the destination closes, or `stop` becomes true.
    [[nodiscard]] BridgeCounts run(const std::atomic<bool>& stop);

    [[nodiscard]] Receiver& from() { return from_; }
    [[nodiscard]] Sender& to() { return to_; }

private:
    Receiver from_;
    Sender to_;
    BridgeOptions options_;
};

class ServiceBridge {
public:
    ServiceBridge(Client service, Server exposed, BridgeOptions options = {});

    // Forwards calls until the exposed server is closed or `stop` becomes true (the call in
    // hand is finished first). `messages` counts calls answered, `bytes` their requests and
    // responses.
    [[nodiscard]] BridgeCounts run(const std::atomic<bool>& stop);

    [[nodiscard]] Client& service() { return service_; }
    [[nodiscard]] Server& exposed() { return exposed_; }

private:
    Client service_;
    Server exposed_;
    BridgeOptions options_;
};

}  // namespace ipckit
