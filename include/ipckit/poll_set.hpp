// ipckit/poll_set.hpp — waiting on several receivers, servers and clients at once.
//
// A PollSet watches receivers of any transports and says which have a message ready (or
// have reached end of stream, so that their next recv returns `closed` at once). It also
// watches services (service.hpp): a Server is ready when a request is there (its next try_recv
// takes it), a Client when a response is there or a call in flight lost its server (`wait` with
// Deadline::immediate() on each call in flight then says which: ok, closed, or would_block for
// one still to come). A service server arms a doorbell the clients ring after a request; a
// client arms its response ring's doorbell and the server's pidfd (a server in another PID
// namespace is looked at every 50 ms instead). Receivers
// with a descriptor (pipes, FIFOs, sockets, POSIX queues) are waited on with poll(2); a topic
// subscriber (topic:) and a ring receiver (shm:, sysvshm:, and each lane of senders=N) arm a
// doorbell, a Unix datagram socket the other side rings after a commit, and add the peer's
// pidfd, so they too are woken by the kernel, never by a timer. Those without either (System V
// queues, which the kernel cannot poll) are checked between short sleeps that grow from 50 µs
// to 2 ms: that bounds the extra latency they see here, at the cost of a wake-up every 2 ms
// while idle.
//
// Example:
//     ipckit::PollSet set;
//     set.add(jobs);        // a Receiver
//     set.add(control);     // another
//     for (std::size_t i : set.wait(ipckit::Deadline::after(1s))) { ... set[i].recv(...) ... }
//     std::size_t s = set.add(server);  // an ipckit::Server: set.server(s).try_recv(request)
//
// Nothing is owned: each receiver, server and client must outlive the set and stay where it is.
// Thread-safety: one thread at a time.
#pragma once

#include <cstddef>
#include <vector>

#include "ipckit/channel.hpp"
#include "ipckit/service.hpp"

namespace ipckit {

namespace detail {
class Waitable;
}

class PollSet {
public:
    // Adds a receiver, a server or a client; returns its index in the set (one sequence of
    // indices for all three).
    std::size_t add(Receiver& receiver);
    std::size_t add(Server& server);
    std::size_t add(Client& client);
    [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
    // The receiver, server or client at `index`; Error invalid_argument when it is another.
    [[nodiscard]] Receiver& operator[](std::size_t index) const;
    [[nodiscard]] Server& server(std::size_t index) const;
    [[nodiscard]] Client& client(std::size_t index) const;

    // The indices of those ready now, waiting until at least one is or the deadline passes
    // (then the result is empty).
    [[nodiscard]] std::vector<std::size_t> wait(Deadline deadline = Deadline::never());

private:
    struct Entry {
        Receiver* receiver = nullptr;
        Server* server = nullptr;
        Client* client = nullptr;
    };
    [[nodiscard]] detail::Waitable& waitable(const Entry& entry) const;
    const Entry& entry(std::size_t index, const char* what) const;
    std::vector<Entry> entries_;
};

}  // namespace ipckit
