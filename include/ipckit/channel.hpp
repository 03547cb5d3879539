// ipckit/channel.hpp — one message API over every mechanism, chosen by an address.
//
// A channel carries whole messages one way, from a Sender to a Receiver, over the mechanism
// its address names (see docs/channels.md for the table):
//
//     fd:R  fd:W  fifo:PATH  sysvmq:KEY  sysvmq:PATH#PROJ  posixmq:/NAME  shm:/NAME  shm:@NAME
//     sysvshm:KEY  topic:/NAME  topic:@NAME  unix:PATH  unix:@NAME  unix+seqpacket:…
//     unix+dgram:…  tcp://HOST:PORT
//     nats://HOST:PORT/SUBJECT (a subject on a NATS server; see docs/nats.md and nats.hpp)
//     file:PATH (a recorded log: a sender appends, a receiver replays; docs/record-replay.md)
//
// One side creates the kernel object (`create`), the other opens it (`open`); the creating
// side removes it when it goes away unless the address says `keep=1`. Message boundaries are
// always kept: stream transports carry a length prefix (or, with `framing=line`, one message
// per line, to talk to the shell's own tools).
//
// Example:
//     auto rx = ipckit::Receiver::create("fifo:/tmp/telemetry");        // process A
//     auto tx = ipckit::Sender::open("fifo:/tmp/telemetry");            // process B
//     tx.send(ipckit::as_bytes("hello"));
//     std::vector<std::byte> message;
//     if (rx.recv(message, ipckit::Deadline::after(1s)).ok()) { ... }
//
// Results: `send`/`recv` return `Status::ok`, `would_block` (try_ forms), `timed_out`, or
// `closed` (the peer closed or died; a sender's object was removed): expected outcomes are values.
// Errors: a malformed address, a message over `max_message_size()`, a corrupt frame, a stream
// that ends inside a frame (bad_message, saying how far it got), a receiver's queue removed
// under it (identifier_removed) or a failing system call throw `ipckit::Error` that names the
// address and the limit or call.
// Zero copy (ring transports only: shm:, sysvshm:): `Sender::loan` hands out record space in
// the ring to fill in place and `commit` publishes it; `Receiver::read` shows the next message
// in place until `release`. Other transports throw an Error saying a ring transport is needed.
// Thread-safety: one thread at a time per Sender or Receiver; distinct channels are independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ipckit/deadline.hpp"
#include "ipckit/io.hpp"
#include "ipckit/loan.hpp"

namespace ipckit {

namespace detail {
class SenderBackend;
class ReceiverBackend;
struct BackendAccess;  // for transport-specific reports (nats.hpp)
}  // namespace detail

// What became of the messages a sender sent, as `Sender::close` found when it ended.
struct SenderClose {
    // Messages left in a queue that this sender created and that therefore stays, for a
    // receiver that is not there yet (`ipckit ls` shows it; `ipckit recv` takes them).
    std::size_t stored = 0;
    // A ring sender's committed records were not all taken: the reader closed or died first
    // and the ring went away with them. The ring cannot say how many.
    bool undelivered = false;
};

class Sender {
public:
    // Creates the kernel object named by the address (exclusively) and sends into it.
    [[nodiscard]] static Sender create(std::string_view address);
    // Opens an object another process created.
    [[nodiscard]] static Sender open(std::string_view address, Deadline deadline = Deadline::never());

    Sender(Sender&&) noexcept;
    Sender& operator=(Sender&&) noexcept;
    ~Sender();

    // Sends one whole message. `closed` means nobody will ever read it.
    [[nodiscard]] IoResult send(std::span<const std::byte> message, Deadline deadline = Deadline::never());
    [[nodiscard]] IoResult try_send(std::span<const std::byte> message) {
        return send(message, Deadline::immediate());
    }
    // Zero copy: reserves up to `size` bytes of record space (`closed`, `timed_out` as for send).
    // A second loan, or a send, before commit discards the first; so does dropping it.
    [[nodiscard]] Loan loan(std::size_t size, Deadline deadline = Deadline::never());
    // Publishes the first `size` bytes of the loan as one message.
    void commit(std::size_t size);
    [[nodiscard]] std::size_t max_message_size() const;
    [[nodiscard]] const std::string& address() const;

    // Ends the channel now, as destruction would, and reports what became of what was sent
    // (see the delivery table in docs/channels.md): a creating queue sender removes an empty
    // queue and keeps one that still holds messages; a ring sender lingers until its committed
    // records are taken or the reader is gone. Afterwards only destruction and assignment are
    // allowed. Closing twice returns an empty report.
    SenderClose close();

private:
    friend struct detail::BackendAccess;
    explicit Sender(std::unique_ptr<detail::SenderBackend> backend);
    std::unique_ptr<detail::SenderBackend> backend_;
};

class Receiver {
public:
    [[nodiscard]] static Receiver create(std::string_view address);
    [[nodiscard]] static Receiver open(std::string_view address, Deadline deadline = Deadline::never());

    Receiver(Receiver&&) noexcept;
    Receiver& operator=(Receiver&&) noexcept;
    ~Receiver();

    // Receives one whole message into `buffer` with no allocation; `bytes` is its size.
    // A message larger than the buffer is an error that says both sizes, and it stays queued
    // for a later call with a larger buffer.
    [[nodiscard]] IoResult recv(std::span<std::byte> buffer, Deadline deadline = Deadline::never());
    // Receives one whole message into `message`, resized to fit (its capacity is reused).
    [[nodiscard]] IoResult recv(std::vector<std::byte>& message, Deadline deadline = Deadline::never());
    [[nodiscard]] IoResult try_recv(std::vector<std::byte>& message) {
        return recv(message, Deadline::immediate());
    }
    // Zero copy: the next message in place, not consumed; valid until `release` (or the next
    // read or recv, which return the same message until it is released).
    [[nodiscard]] RecordView read(Deadline deadline = Deadline::never());
    // Consumes the message `read` returned.
    void release();

    [[nodiscard]] std::size_t max_message_size() const;
    [[nodiscard]] const std::string& address() const;
    // A descriptor that polls readable when a message may be ready, or -1 when the transport
    // has none (System V queues, rings); PollSet uses it.
    [[nodiscard]] int native_handle() const;
    // Messages lost just before the one the last recv delivered: nonzero only for a topic with
    // overflow=drop whose subscriber was lapped (every other transport loses nothing).
    [[nodiscard]] std::uint64_t missed() const;
    // Messages that were already waiting when this receiver opened its object: a queue a
    // sender left (it may have exited, its messages stay), or a ring whose dead receiver this
    // one took over. 0 for a receiver that created its object, and for other transports.
    [[nodiscard]] std::size_t waiting_at_open() const;

private:
    friend class PollSet;
    friend struct detail::BackendAccess;
    explicit Receiver(std::unique_ptr<detail::ReceiverBackend> backend);
    std::unique_ptr<detail::ReceiverBackend> backend_;
};

}  // namespace ipckit
