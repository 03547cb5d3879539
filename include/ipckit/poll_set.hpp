// ipckit/poll_set.hpp — waiting on several receivers at once.
//
// A PollSet watches receivers of any transports and says which have a message ready (or
// have reached end of stream, so that their next recv returns `closed` at once). Receivers
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
//
// Receivers are not owned: each must outlive the set and stay where it is.
// Thread-safety: one thread at a time.
#pragma once

#include <cstddef>
#include <vector>

#include "ipckit/channel.hpp"

namespace ipckit {

class PollSet {
public:
    // Adds a receiver; returns its index in the set.
    std::size_t add(Receiver& receiver);
    [[nodiscard]] std::size_t size() const noexcept { return receivers_.size(); }
    [[nodiscard]] Receiver& operator[](std::size_t index) const { return *receivers_.at(index); }

    // The indices of the receivers ready now, waiting until at least one is or the deadline
    // passes (then the result is empty).
    [[nodiscard]] std::vector<std::size_t> wait(Deadline deadline = Deadline::never());

private:
    std::vector<Receiver*> receivers_;
};

}  // namespace ipckit
