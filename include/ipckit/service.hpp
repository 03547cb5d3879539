// ipckit/service.hpp — request/response: many clients ask, one server answers.
//
// A service is named by an address, as a channel is (docs/services.md):
//
//     service:/NAME    the service region in POSIX shared memory (/dev/shm/NAME)
//     service:@NAME    the same in a sealed memfd served on the abstract socket @NAME
//     nats://HOST:PORT/SUBJECT   NATS request/reply: the same client code reaches a remote server
//
// Options: clients=C (client slots, 1..1023, default 16), inflight=F (calls in flight per client,
// default 4), max=SIZE (largest request or response), wait=MODE, mode=OCTAL, keep=1.
//
// Example:
//     auto server = ipckit::Server::create("service:/upper");                 // process A
//     ipckit::Request request;
//     while (server.recv(request).ok()) {
//         auto text = to_upper(request.message);
//         (void)server.reply(request.handle, ipckit::as_bytes(text));
//     }
//     auto client = ipckit::Client::open("service:/upper");                    // process B
//     std::vector<std::byte> response;
//     auto r = client.call(ipckit::as_bytes("hello"), response, ipckit::Deadline::after(1s));
//
// Results, never exceptions, for what a caller must expect:
//   - `call`/`wait`: ok (the response is in `response`); timed_out (no response by the deadline:
//     no server came, or it did not answer in time; a late answer to that call is dropped);
//     closed (the server died or closed while the call was in flight: it may or may not have
//     acted on the request; said as soon as the kernel marks the server dead, not at the
//     deadline). A client outlives its server: the next call waits for a new server.
//     `wait`/`read` with Deadline::immediate() (after a PollSet said the client is ready): also
//     would_block, when that call's response is not there yet; the call stays in flight.
//   - `Server::recv`: ok, timed_out, would_block (try_recv).
//   - `Server::reply`: ok, or closed (the client that asked has closed or died, or gave up on the
//     call: the reply is dropped and counted, and the server is never blocked by it).
// Errors (`ipckit::Error`): a malformed address; a request or response larger than
// `max_message_size()` (message_size, naming the limit); a reply to a handle this server never
// received or already answered (invalid_argument, "stale or unknown request id"); more than
// `inflight=` calls in flight from one client (resource_unavailable_try_again); a second live
// server on the name (device_or_resource_busy, naming its pid); a region that is not a service
// (protocol_error).
// Thread-safety: a Client is used by one thread at a time. A Server's `recv` by one thread at a
// time; `reply` may be called from any thread of the server's process, concurrently with recv and
// with other replies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ipckit/deadline.hpp"
#include "ipckit/loan.hpp"
#include "ipckit/service_types.hpp"

namespace ipckit {

namespace detail {
class ServerBackend;
class ClientBackend;
}  // namespace detail

class Server {
public:
    // Creates the service (or takes over the region of a server that died: no `ipckit rm`
    // needed). A live server on the name: Error device_or_resource_busy.
    [[nodiscard]] static Server create(std::string_view address);

    Server(Server&&) noexcept;
    Server& operator=(Server&&) noexcept;
    ~Server();

    // The next request from any client (in turn, so one busy client cannot starve the others).
    [[nodiscard]] IoResult recv(Request& request, Deadline deadline = Deadline::never());
    [[nodiscard]] IoResult try_recv(Request& request) { return recv(request, Deadline::immediate()); }
    // Answers one request, once. See the header comment for the results.
    [[nodiscard]] IoResult reply(const ReplyHandle& to, std::span<const std::byte> response);
    // Zero copy: space for the reply to `to` in the client's response ring; `commit_reply`
    // publishes its first `size` bytes. The loan's status is closed when the client is gone.
    [[nodiscard]] Loan loan_reply(const ReplyHandle& to, std::size_t size);
    void commit_reply(const ReplyHandle& to, std::size_t size);

    [[nodiscard]] std::size_t max_message_size() const;
    [[nodiscard]] const std::string& address() const;
    [[nodiscard]] ServerCounts counts() const;
    // Ends the service: every client's call in flight ends closed. Destruction does the same.
    void close();

private:
    friend class PollSet;
    explicit Server(std::unique_ptr<detail::ServerBackend> backend);
    std::unique_ptr<detail::ServerBackend> backend_;
};

class Client {
public:
    // Names the service. No server need be there yet: a call waits for one up to its deadline.
    [[nodiscard]] static Client open(std::string_view address);

    Client(Client&&) noexcept;
    Client& operator=(Client&&) noexcept;
    ~Client();

    // Sends `request` and waits for its response.
    [[nodiscard]] IoResult call(std::span<const std::byte> request, std::vector<std::byte>& response,
                                Deadline deadline = Deadline::never());
    // Several calls in flight: `start` sends a request and returns its id (status not ok: it was
    // not sent); `wait` waits for that call's response, whatever order responses come in.
    using Started = CallStarted;
    [[nodiscard]] Started start(std::span<const std::byte> request, Deadline deadline = Deadline::never());
    [[nodiscard]] IoResult wait(CallId call, std::vector<std::byte>& response,
                                Deadline deadline = Deadline::never());
    // Zero copy: request space to fill in place; `commit_call` sends its first `size` bytes.
    [[nodiscard]] Loan loan(std::size_t size, Deadline deadline = Deadline::never());
    [[nodiscard]] Started commit_call(std::size_t size);
    // Zero copy: the response to `call` in place, valid until `release`.
    [[nodiscard]] RecordView read(CallId call, Deadline deadline = Deadline::never());
    void release();

    [[nodiscard]] std::size_t max_message_size() const;
    [[nodiscard]] const std::string& address() const;

private:
    friend class PollSet;
    explicit Client(std::unique_ptr<detail::ClientBackend> backend);
    std::unique_ptr<detail::ClientBackend> backend_;
};

}  // namespace ipckit
