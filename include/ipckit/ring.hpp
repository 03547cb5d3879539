// ipckit/ring.hpp — a lock-free single-producer, single-consumer ring of variable-size records
// in shared memory: ipckit's fastest path between two processes.
//
// The ring lives in a region of memory both processes map (POSIX or System V shared memory, a
// MAP_SHARED mapping inherited across fork); it does not care how the region was obtained. One
// side formats the region, then one producer and one consumer attach to it. Records keep their
// boundaries, arrive in order, and are always contiguous, so the producer can fill a record in
// place (`loan`/`commit`) and the consumer can read it in place (`read`/`release`).
//
// Example:
//     ipckit::Ring::format(region);                        // the creator, once
//     auto tx = ipckit::RingProducer::attach(region);      // process A
//     auto rx = ipckit::RingConsumer::attach(region);      // process B
//     tx.send(ipckit::as_bytes("hello"));
//     std::vector<std::byte> message;
//     if (rx.recv(message, ipckit::Deadline::after(1s)).ok()) { ... }
//
// Waiting (`WaitMode`): `adaptive` (the default) spins a few microseconds, yields a few times,
// then sleeps on a futex; `spin` only polls (lowest latency, burns a core); `block` sleeps at
// once. Sleepers are counted in the ring, so send and recv make no system call unless the other
// side sleeps.
//
// Ends (layout version 2, docs/ring-layout.md): an end whose process died, or that was closed,
// is claimed by the next attach (pid + start time decide "died"): a new consumer resumes at the
// last consumed record and gets every committed record exactly once (one it had read but not
// released comes again); a new producer continues after the last committed record (a loan it
// never committed is dropped). An end held by a live process is refused, naming its pid.
//
// Results: `ok`, `would_block` (try_ forms, or a zero deadline), `timed_out`, or `closed`: the
// peer closed, or its process died (noticed within about 20 ms while waiting). Everything
// committed before a close or death is delivered first.
// Errors (`ipckit::Error`): a region too small or misaligned (invalid_argument); a header or
// cursor that is not a valid version-2 ring (protocol_error; a version-1 region says so); an end
// held by a live process (device_or_resource_busy); a corrupt commit word (bad_message); a message
// over `max_message_size()` or larger than the caller's buffer (message_size; nothing is lost,
// the record stays queued). The other process is never trusted: every cursor and length read
// from the region is checked before use, so a buggy or hostile peer causes an error, not a crash.
// Thread-safety: one thread at a time per RingProducer or RingConsumer; the producer and the
// consumer may run in different threads or processes. The region must outlive both.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "ipckit/deadline.hpp"
#include "ipckit/detail/endpoint.hpp"
#include "ipckit/detail/sleeper.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/io.hpp"
#include "ipckit/loan.hpp"
#include "ipckit/wait_mode.hpp"

namespace ipckit {

namespace detail::ring {
struct RingHeader;
}

struct RingOptions {
    // Bytes of record space, a power of two (64 B … 4 GiB). 0: the largest that fits the region.
    std::size_t capacity = 0;
    // stats=latency: records carry their commit time and the consumer keeps a histogram of
    // commit-to-consume times (docs/ring-layout.md, "The latency histogram"). Off: records keep
    // their 8-byte header.
    bool latency = false;
};

class Ring {
public:
    // Bytes of region a ring of `capacity` needs (header included).
    [[nodiscard]] static std::size_t region_size(std::size_t capacity) noexcept;
    // Initialises `region` as an empty ring with nobody attached; returns its capacity. The region
    // must be 128-byte aligned (any mapping is) and nobody may be attached while it is formatted.
    static std::size_t format(std::span<std::byte> region, RingOptions options = {});
    // The largest message a ring of `capacity` carries: a record may take half the ring, so one
    // always fits however the free space is split around the end (8 bytes less with latency).
    [[nodiscard]] static std::size_t max_message_size(std::size_t capacity, bool latency = false) noexcept;
};

namespace detail {
// Closes one end when its handle goes (a move leaves nothing behind to close): the deleter of
// RingProducer's and RingConsumer's header pointer, so their moves can be `= default`.
struct RingEndCloser {
    std::uint32_t epoch = 0;  // this holder's claim (release_endpoint leaves a successor's alone)
    bool producer = false;
    void operator()(detail::ring::RingHeader* header) const noexcept;
};
using RingEndHandle = std::unique_ptr<detail::ring::RingHeader, RingEndCloser>;

// The wait line words of one ring, for a receiver that sleeps on many rings at once (the lanes
// of `senders=N`, with futex_waitv): count yourself in `consumer_sleepers` (then a seq_cst
// fence), re-check `RingConsumer::has_data()`, then sleep on `data_event`.
struct RingWaitWords {
    std::atomic<std::uint32_t>* consumer_sleepers = nullptr;
    std::atomic<std::uint32_t>* data_event = nullptr;
    std::atomic<std::uint64_t>* sleeps = nullptr;  // the consumer's sleeps counter
};
}  // namespace detail

class RingProducer {
public:
    // Validates the ring in `region` and claims its producer end (one producer per ring). An end
    // whose holder closed or died is taken over: the new producer continues after the last
    // committed record (a loan the dead one never committed is dropped). A live holder: Error
    // device_or_resource_busy naming its pid.
    [[nodiscard]] static RingProducer attach(std::span<std::byte> region, WaitMode mode = WaitMode::adaptive);

    RingProducer(RingProducer&&) noexcept = default;
    RingProducer& operator=(RingProducer&&) noexcept = default;  // closes what it replaces
    ~RingProducer() = default;                                   // closes

    // Copies one whole message into the ring. `closed`: the consumer closed, or it died and the
    // ring is full (a dead consumer's successor gets what the ring holds, so sending goes on while
    // there is room). A consumer that never attached, or had closed before this producer
    // attached, is waited for when the ring is full.
    [[nodiscard]] IoResult send(std::span<const std::byte> message, Deadline deadline = Deadline::never());
    [[nodiscard]] IoResult try_send(std::span<const std::byte> message) {
        return send(message, Deadline::immediate());
    }

    // Zero-copy: reserves a record of up to `size` bytes and returns it, to be filled in place and
    // published with `commit`. A second loan before commit replaces the first.
    [[nodiscard]] Loan loan(std::size_t size, Deadline deadline = Deadline::never());
    // Publishes the first `size` bytes of the loan (size <= the loaned size) as one message.
    void commit(std::size_t size);

    // Marks the producer end closed: the consumer drains what was sent, then sees `closed`. The
    // end can then be claimed by a new producer.
    void close() noexcept;

    // Delivery (what a channel's sender promises, docs/channels.md): nothing is committed for
    // nobody, and a close lingers until what was committed is taken.
    // A consumer is attached and its process alive (it may be slow; it may close at any time).
    [[nodiscard]] bool consumer_present();
    // Waits until a consumer is present: ok, timed_out, or would_block for a zero deadline.
    [[nodiscard]] Status wait_for_consumer(Deadline deadline);
    // Waits until every committed record was consumed: ok; `closed` when the consumer closed or
    // died first (a consumer that never attached is waited for); timed_out.
    [[nodiscard]] Status drain(Deadline deadline);

    [[nodiscard]] std::size_t max_message_size() const noexcept { return max_message_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

private:
    RingProducer() = default;
    [[nodiscard]] Status reserve(std::size_t size, Deadline deadline);
    [[nodiscard]] bool has_space(std::uint64_t need) const noexcept {
        return capacity_ - (head_ - cached_tail_) >= need;
    }
    void refresh_tail();
    // Before sleeping for space: wake me once `bytes` are free (WaitLine::space_wanted).
    void want_space(std::uint64_t bytes) noexcept;
    void publish(std::size_t size);
    [[nodiscard]] bool consumer_gone(std::chrono::steady_clock::time_point now);
    [[nodiscard]] bool consumer_closed() const noexcept;

    detail::RingEndHandle header_;
    std::byte* data_ = nullptr;
    std::uint64_t capacity_ = 0;
    std::uint64_t mask_ = 0;
    std::size_t max_message_ = 0;
    std::uint32_t record_header_ = 8;  // the commit word, and with stats=latency the commit time
    WaitMode mode_ = WaitMode::adaptive;
    detail::SleeperBarrier sleeper_;  // ours when we wait for space
    // Local, authoritative copies: the producer cursor is ours; the consumer cursor is cached and
    // reloaded from shared memory only when the ring looks full.
    std::uint64_t head_ = 0;
    std::uint64_t cached_tail_ = 0;
    // The reservation between reserve() and publish(): padding before it and its position and size.
    std::uint64_t pending_padding_ = 0;
    std::uint64_t pending_position_ = 0;
    std::size_t pending_size_ = 0;
    bool pending_ = false;
    detail::ring::EndpointWatch consumer_;
    Fd bell_sender_;  // an unbound datagram socket, made at the first doorbell rung
    // The consumer end's epoch if it was already closed when we attached (epochs are 24-bit).
    std::uint32_t closed_before_attach_ = 0xffffffff;
};

class RingConsumer {
public:
    // Validates the ring in `region` and claims its consumer end (one consumer per ring). An end
    // whose holder closed or died is taken over: the new consumer resumes at the last consumed
    // record (a record read in place but not released is delivered again). A live holder: Error
    // device_or_resource_busy naming its pid.
    [[nodiscard]] static RingConsumer attach(std::span<std::byte> region, WaitMode mode = WaitMode::adaptive);

    RingConsumer(RingConsumer&&) noexcept = default;
    RingConsumer& operator=(RingConsumer&&) noexcept = default;  // closes what it replaces
    ~RingConsumer() = default;                                   // closes

    // Copies the next message into `buffer`; `bytes` is its size. A message larger than the
    // buffer throws an Error naming both sizes and stays queued.
    [[nodiscard]] IoResult recv(std::span<std::byte> buffer, Deadline deadline = Deadline::never());
    // Copies the next message into `message`, resized to fit (its capacity is reused).
    [[nodiscard]] IoResult recv(std::vector<std::byte>& message, Deadline deadline = Deadline::never());
    [[nodiscard]] IoResult try_recv(std::span<std::byte> buffer) {
        return recv(buffer, Deadline::immediate());
    }
    [[nodiscard]] IoResult try_recv(std::vector<std::byte>& message) {
        return recv(message, Deadline::immediate());
    }

    // Zero-copy: the next message in place, without consuming it. It stays valid (and the
    // producer cannot reuse its space) until `release`. A hostile producer could still change
    // the bytes under the reader: copy what must be validated before it is trusted.
    [[nodiscard]] RecordView read(Deadline deadline = Deadline::never());
    // Consumes the message `read` returned.
    void release();

    // Marks the consumer end closed: a producer then gets `closed` instead of filling the ring.
    // The end can then be claimed by a new consumer, which resumes where this one stopped.
    void close() noexcept;

    // What attach found: the previous consumer had died without closing (this one took its end
    // over), and how many messages were waiting (committed, not consumed) at that moment.
    [[nodiscard]] bool took_over() const noexcept { return took_over_; }
    [[nodiscard]] std::size_t pending_at_attach() const noexcept { return pending_at_attach_; }

    [[nodiscard]] std::size_t max_message_size() const noexcept { return max_message_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

    // ---- The doorbell, for a wait set (PollSet) that sleeps in poll(2), never on a timer ----
    // The doorbell is a Unix datagram socket (its abstract name in the ring's doorbell line) that
    // polls readable when the producer commits, attaches or closes while it is armed. `arm`
    // returns false when a message (or the producer's end) is there already: then do not sleep.
    // While armed the consumer counts as a sleeper, so each commit costs the producer a futex
    // wake and one sendto; `disarm` after the wait (it also empties the socket).
    // `producer_fd` is a pidfd of the producer's process (polls readable when it dies), or -1.
    // Errors: socket/bind failures (Error naming the doorbell).
    [[nodiscard]] int doorbell_fd();
    [[nodiscard]] bool arm();
    void disarm() noexcept;
    [[nodiscard]] int producer_fd();

    // A message (or a held read) is there now: one load of the commit word at the cursor (two
    // after a padding record); consumes nothing, never waits, never throws.
    [[nodiscard]] bool has_data() const noexcept;

private:
    friend class LanesReceiver;  // sleeps on every lane's words at once
    // The futex words a consumer sleeps on (see detail::RingWaitWords).
    [[nodiscard]] detail::RingWaitWords wait_words() const noexcept;

    RingConsumer() = default;
    // Finds the next data record (skipping padding); on ok fills record_offset_/record_payload_.
    [[nodiscard]] Status next_record(Deadline deadline);
    [[nodiscard]] Status wait_for_data(Deadline deadline);
    void consume();

    detail::RingEndHandle header_;
    const std::byte* data_ = nullptr;
    std::uint64_t capacity_ = 0;
    std::uint64_t mask_ = 0;
    std::size_t max_message_ = 0;
    std::uint32_t record_header_ = 8;  // the commit word, and with stats=latency the commit time
    WaitMode mode_ = WaitMode::adaptive;
    detail::SleeperBarrier sleeper_;  // ours when we wait for data (or arm the doorbell)
    // The consumer cursor: ours, stored to shared memory after each record.
    std::uint64_t tail_ = 0;
    std::uint64_t record_offset_ = 0;
    std::uint32_t record_payload_ = 0;
    bool holding_ = false;  // a record returned by read() awaits release()
    bool took_over_ = false;
    std::size_t pending_at_attach_ = 0;
    detail::ring::EndpointWatch producer_;
    Fd doorbell_;  // bound at the first doorbell_fd()
};

}  // namespace ipckit
