// ipckit/service_types.hpp — the plain values a service's calls pass (service.hpp): a request
// as the server received it, where its reply goes, a call in flight, and the server's counts.
// Their own header because the shared-memory service region (the rings layer) fills them too.
// Errors: none. Thread-safety: plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ipckit/status.hpp"

namespace ipckit {

// Where a reply goes: the client's slot, the client's epoch in it when it asked (a client that
// died and was replaced makes the handle stale), and the request id the client chose.
struct ReplyHandle {
    std::uint32_t slot = 0;
    std::uint32_t epoch = 0;
    std::uint64_t id = 0;
};

// One request as the server received it: its bytes, and where its reply goes.
struct Request {
    std::vector<std::byte> message;  // resized to fit; its capacity is reused
    ReplyHandle handle;
};

// A call in flight, as `Client::start` returns it.
struct CallId {
    std::uint64_t id = 0;
};

// What `Client::start` (Client::Started) gives: on ok, the call is sent and `call` names it.
struct CallStarted {
    Status status = Status::ok;
    CallId call;
    [[nodiscard]] bool ok() const noexcept { return status == Status::ok; }
};

// What a server counted (also in the region, for `ipckit top` and `ipckit ls`).
struct ServerCounts {
    std::uint64_t calls = 0;            // requests received
    std::uint64_t replies = 0;          // replies written
    std::uint64_t replies_dropped = 0;  // replies to a client that closed, died or gave up
    std::uint64_t takeovers = 0;        // times this service's server end was taken over
};

}  // namespace ipckit
