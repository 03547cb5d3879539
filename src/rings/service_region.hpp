// Internal: the service region (layout kind 4, docs/ring-layout.md "Kind 4: service"): one
// server, C client slots, each slot two kind-1 rings (requests: the client produces, the server
// consumes; responses: the server produces, the client consumes). Every ring is claimed and
// used with the ring's own code; what is here is the header, the request ids, the server's
// round robin and its in-flight ids, and the waits that make a server's death end every call
// in flight at once. The channel layer (src/channels/channel_service.cpp) finds the memory and
// re-attaches a client whose server went away; ipckit/service.hpp is the API.
//
//   +0     ControlLine      kind 4; capacity: a request ring's; kind_words: [0] client slots C,
//                           [1] slot stride, [2] calls in flight per client F, [3] a response
//                           ring's capacity
//   +128   EndpointLine     the server
//   +256   ServerLine       the server's counters (calls, replies, replies_dropped, takeovers)
//   +384   ServiceWaitLine  the server's sleepers and request event; the server event (clients
//                           waiting for a server)
//   +512   DoorbellLine     the server's doorbell, when it waits in a PollSet
//   +640   reserved (zero) to 1024
//   +1024  slot i at 1024 + i * stride: a kind-1 ring of requests, then one of responses
//
// A record in either ring is a ring record whose first 8 bytes are the request id (little
// endian), then the request or response. A client's ids are (its request end's epoch << 40) |
// its own counter, so a request left by a client that died and was replaced is told from the
// new client's, and a reply meant for the old one is never taken for the new one's.
//
// Thread-safety: a ServiceClient is used by one thread at a time. A ServiceServer's recv by one
// thread at a time; reply, loan_reply/commit_reply and counts from any thread, concurrently.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "ipckit/deadline.hpp"
#include "ipckit/detail/sleeper.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/ring.hpp"
#include "ipckit/service_types.hpp"
#include "ipckit/wait_mode.hpp"
#include "ring_layout.hpp"

namespace ipckit::detail::service {

using ring::EndpointLine;
using ring::kLineSize;

// What the server counts (ServerCounts): written by the server's threads (relaxed fetch_add),
// read by anyone (ipckit ls, top). Kept across servers: a takeover continues them.
struct alignas(kLineSize) ServerLine {
    std::atomic<std::uint64_t> calls;            // requests received
    std::atomic<std::uint64_t> replies;          // replies written
    std::atomic<std::uint64_t> replies_dropped;  // to a client gone, replaced, or whose ring was full
    std::atomic<std::uint64_t> takeovers;        // servers that took the server end from a dead one
};

struct alignas(kLineSize) ServiceWaitLine {
    std::atomic<std::uint32_t> server_sleepers;  // a server asleep (or armed) waiting for a request
    std::atomic<std::uint32_t> request_event;    // futex word: bumped by a client after a request it sent
    std::atomic<std::uint32_t> server_event;     // futex word: bumped when a server has attached or closed
};

struct ServiceHeader {
    region::ControlLine control;
    EndpointLine server_end;
    ServerLine server;
    ServiceWaitLine wait;
    ring::DoorbellLine doorbell;
    std::byte reserved[3 * kLineSize];
};
inline constexpr std::size_t kServiceHeaderSize = sizeof(ServiceHeader);
static_assert(kServiceHeaderSize == 1024, "the service header is eight lines");
static_assert(offsetof(ServiceHeader, server_end) == 128 && offsetof(ServiceHeader, server) == 256 &&
                  offsetof(ServiceHeader, wait) == 384 && offsetof(ServiceHeader, doorbell) == 512,
              "the service header of layout version 3, kind 4");

inline constexpr std::size_t kIdSize = 8;  // the request id before every request and response
// Two ring ends per slot and the server's own: 2047 of the 2048 ends one process can hold.
inline constexpr std::uint32_t kMaxClients = 1023;
inline constexpr std::uint32_t kMaxInflight = 64;
inline constexpr unsigned kSequenceBits = 40;  // a client's counter; the epoch above it
// A request larger than this is refused unless the address says max=.
inline constexpr std::size_t kDefaultMaxMessage = 64u << 10;

struct ServiceOptions {
    std::uint32_t clients = 16;                    // 1 … 1023 slots
    std::uint32_t inflight = 4;                    // 1 … 64 calls in flight per client
    std::size_t max_message = kDefaultMaxMessage;  // largest request or response
};

// Bytes of one ring of a slot: F records of the largest message (id included) and one more,
// so F replies always fit however the free space is split around the end; a power of two.
[[nodiscard]] std::uint64_t ring_capacity(std::uint32_t inflight, std::size_t max_message);
// The largest request or response a ring of `capacity` carries with F in flight: at least the
// max_message it was made for (the power of two may leave more).
[[nodiscard]] std::size_t message_limit(std::uint64_t capacity, std::uint32_t inflight) noexcept;
[[nodiscard]] std::size_t region_size(const ServiceOptions& options);
// Initialises `region` as a service nobody is attached to. Throws invalid_argument for options
// out of range or a region too small.
void format(std::span<std::byte> region, const ServiceOptions& options);

// A service region's header, read once into locals and checked against the region.
struct Geometry {
    ServiceHeader* header;
    std::uint32_t clients;
    std::uint32_t inflight;
    std::uint64_t stride;
    std::uint64_t request_capacity;
    std::uint64_t response_capacity;
    std::size_t max_message;
};
// Error(protocol_error) "service header: …" for anything that is not a valid kind-4 region.
[[nodiscard]] Geometry validate(std::span<std::byte> region);
[[nodiscard]] std::span<std::byte> request_ring(std::span<std::byte> region, const Geometry& g,
                                                std::uint32_t slot);
[[nodiscard]] std::span<std::byte> response_ring(std::span<std::byte> region, const Geometry& g,
                                                 std::uint32_t slot);

// What `ipckit ls` shows of a service: read only, never claims anything.
struct Census {
    std::uint32_t clients = 0;   // slots
    std::uint32_t attached = 0;  // slots held by a live client
    bool server_alive = false;
    std::uint32_t server_pid = 0;  // in the server's own PID namespace
    ServerCounts counts;
};
[[nodiscard]] Census census(std::span<std::byte> region);

class ServiceServer {
public:
    // Claims the server end (a live server: Error device_or_resource_busy naming its pid; a dead
    // one is taken over), then every slot's request consumer and response producer end, and
    // empties every request ring: what is there was sent to an earlier server, whose callers
    // were told `closed`. Clients see the server only when all of it is done.
    ServiceServer(std::span<std::byte> region, WaitMode mode);
    ServiceServer(const ServiceServer&) = delete;
    ServiceServer& operator=(const ServiceServer&) = delete;
    ~ServiceServer();

    [[nodiscard]] IoResult recv(Request& request, Deadline deadline);
    [[nodiscard]] IoResult reply(const ReplyHandle& to, std::span<const std::byte> response);
    // Holds the slot's response producer (other replies to that client wait) until commit_reply.
    [[nodiscard]] Loan loan_reply(const ReplyHandle& to, std::size_t size);
    void commit_reply(const ReplyHandle& to, std::size_t size);
    [[nodiscard]] std::size_t max_message_size() const noexcept { return max_message_; }
    [[nodiscard]] ServerCounts counts() const noexcept;
    [[nodiscard]] bool took_over() const noexcept { return took_over_; }
    // Releases every end (clients' calls in flight end closed) and wakes clients. Idempotent.
    void close() noexcept;

    // For a wait set: a request is there now; arm the doorbell (false: do not sleep); disarm.
    [[nodiscard]] bool has_request() const noexcept;
    [[nodiscard]] bool arm(std::vector<int>& fds);
    void disarm() noexcept;

private:
    struct Slot;
    [[nodiscard]] bool take(Request& request);
    Slot& slot_of(const ReplyHandle& to, const char* call);
    // Under the slot's mutex: removes `to` from the slot's in-flight ids (throws when absent) and
    // says whether its client is still the one that asked, alive.
    bool settle(Slot& slot, const ReplyHandle& to);
    void check_size(std::size_t size, const char* what) const;

    ServiceHeader* header_ = nullptr;
    std::vector<std::unique_ptr<Slot>> slots_;
    std::uint32_t epoch_ = 0;
    bool open_ = false;
    bool took_over_ = false;
    std::size_t max_message_ = 0;
    std::size_t next_ = 0;
    WaitMode mode_;
    SleeperBarrier sleeper_;
    Fd doorbell_;
    bool armed_ = false;
};

class ServiceClient {
public:
    // Claims the first free slot (vacant, closed, or its client dead), and discards what its
    // response ring holds. None free: Error device_or_resource_busy naming the slot count.
    // Request ids continue from `first_sequence`.
    ServiceClient(std::span<std::byte> region, WaitMode mode, std::uint64_t first_sequence);
    ServiceClient(const ServiceClient&) = delete;
    ServiceClient& operator=(const ServiceClient&) = delete;
    ~ServiceClient();

    enum class Server { ready, absent, dead, closed };
    // The server now: attached and alive (ready); never came or still attaching (absent); its
    // process died (dead); it closed (closed).
    [[nodiscard]] Server server() const noexcept;
    // Sleeps until a server is ready (ok) or the deadline (timed_out).
    [[nodiscard]] Status wait_for_server(Deadline deadline);

    // Sends a request. `closed`: no server is ready now (wait for one and try again); ok with a
    // CallId; timed_out when the request ring stayed full.
    [[nodiscard]] CallStarted start(std::span<const std::byte> request, Deadline deadline);
    [[nodiscard]] Loan loan(std::size_t size, Deadline deadline);
    [[nodiscard]] CallStarted commit_call(std::size_t size);
    [[nodiscard]] IoResult wait(CallId call, std::vector<std::byte>& response, Deadline deadline);
    [[nodiscard]] RecordView read(CallId call, Deadline deadline);
    void release();

    // Whether `call` is one of this client's calls in flight; and all of them (for a channel that
    // drops this client when its server went away: they ended closed).
    [[nodiscard]] bool in_flight(CallId call) const noexcept;
    [[nodiscard]] std::vector<std::uint64_t> calls() const;
    [[nodiscard]] std::uint64_t next_sequence() const noexcept { return sequence_; }
    [[nodiscard]] std::size_t max_message_size() const noexcept { return max_message_; }
    [[nodiscard]] std::uint32_t slot() const noexcept { return slot_; }

    // For a wait set: a response is there, or a call in flight lost its server.
    [[nodiscard]] bool ready() noexcept;
    [[nodiscard]] bool arm(std::vector<int>& fds);
    void disarm() noexcept;
    // The server's death can be polled (a pidfd): it is in this PID namespace.
    [[nodiscard]] bool server_pollable() const noexcept;

private:
    struct Call {
        std::uint64_t id;
        std::uint32_t server_epoch;
        bool answered;
        std::vector<std::byte> response;
    };
    [[nodiscard]] CallStarted prepare(std::size_t size);
    [[nodiscard]] CallStarted sent(std::uint64_t id);
    [[nodiscard]] std::uint64_t next_id() noexcept;
    [[nodiscard]] std::vector<Call>::iterator find(CallId call, const char* what);
    // Takes the next response from the ring: true if one was taken (copied to its call, or
    // dropped as unknown). `keep` with id `want`: left in place and shown in `view` instead.
    bool pull(std::uint64_t want, RecordView* view);
    [[nodiscard]] bool server_left(std::uint32_t epoch) const noexcept;
    // Waits for the response to `it`: ok (answered, or in place in `view`), closed, timed_out.
    [[nodiscard]] Status await(std::vector<Call>::iterator& it, Deadline deadline, RecordView* view);
    // One wait for a response or the server's death (see service_region.cpp).
    void sleep(std::uint32_t epoch, Deadline deadline);
    void wake_other_clients() noexcept;

    ServiceHeader* header_ = nullptr;
    ring::RingHeader* responses_header_ = nullptr;
    std::optional<RingProducer> requests_;
    std::optional<RingConsumer> responses_;
    std::uint32_t slot_ = 0;
    std::uint32_t epoch_ = 0;  // of our request end: the high bits of our ids
    std::uint32_t inflight_ = 0;
    std::uint64_t sequence_ = 0;
    std::size_t max_message_ = 0;
    std::vector<Call> calls_;
    WaitMode mode_;
    SleeperBarrier sleeper_;
    bool loaned_ = false;
    std::byte* loan_start_ = nullptr;  // the id's place in the loaned record
    std::size_t loan_size_ = 0;
    // A read() response: in the ring (release consumes it) or copied (release forgets the call).
    enum class Held { none, in_ring, copied } held_ = Held::none;
    std::uint64_t held_id_ = 0;
    ring::EndpointWatch server_watch_;
};

}  // namespace ipckit::detail::service
