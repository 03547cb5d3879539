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
// Results: `ok`, `would_block` (try_ forms, or a zero deadline), `timed_out`, or `closed`: the
// peer closed, or its process died (noticed within about 20 ms while waiting). Everything
// committed before a close or death is delivered first.
// Errors (`ipckit::Error`): a region too small or misaligned (invalid_argument); a header or
// cursor that is not a valid ring (protocol_error); a corrupt record (bad_message); a message
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
#include <span>
#include <vector>

#include "ipckit/deadline.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/io.hpp"

namespace ipckit {

namespace detail::ring {
struct RingHeader;
}

enum class WaitMode {
    spin,      // busy-poll with a pause instruction; checks the deadline and the peer as it goes
    block,     // sleep on a futex at once
    adaptive,  // spin ~5 µs, yield a few times, then sleep on a futex
};

struct RingOptions {
    // Bytes of record space, a power of two (64 B … 4 GiB). 0: the largest that fits the region.
    std::size_t capacity = 0;
};

class Ring {
public:
    // Bytes of region a ring of `capacity` needs (header included).
    [[nodiscard]] static std::size_t region_size(std::size_t capacity) noexcept;
    // Initialises `region` as an empty ring with nobody attached; returns its capacity. The region
    // must be 128-byte aligned (any mapping is) and nobody may be attached while it is formatted.
    static std::size_t format(std::span<std::byte> region, RingOptions options = {});
    // The largest message a ring of `capacity` carries: a record may take half the ring, so one
    // always fits however the free space is split around the end.
    [[nodiscard]] static std::size_t max_message_size(std::size_t capacity) noexcept;
};

namespace detail {
// Knows whether the peer process is still there: its state word, then a pidfd (which, unlike
// kill(pid, 0), also sees a dead child that nobody has reaped yet).
class RingPeer {
public:
    RingPeer() = default;
    RingPeer(const std::atomic<std::uint32_t>* state, const std::atomic<std::int32_t>* pid) noexcept
        : state_(state), pid_(pid) {}
    // Closed cleanly, or its process is gone (looked up at most every `kCheckInterval`).
    [[nodiscard]] bool gone(std::chrono::steady_clock::time_point now);
    // Closed cleanly: one load, cheap enough for every send.
    [[nodiscard]] bool closed() const noexcept;
    static constexpr std::chrono::milliseconds kCheckInterval{20};

private:
    const std::atomic<std::uint32_t>* state_ = nullptr;
    const std::atomic<std::int32_t>* pid_ = nullptr;
    Fd pidfd_;
    std::int32_t watched_pid_ = 0;
    std::chrono::steady_clock::time_point next_check_{};
    bool dead_ = false;
};
}  // namespace detail

// What `loan` gives: on ok, `buffer` is writable record space inside the ring.
struct Loan {
    Status status = Status::ok;
    std::span<std::byte> buffer;
    [[nodiscard]] bool ok() const noexcept { return status == Status::ok; }
};

// What `read` gives: on ok, `message` is the next record in place, valid until `release`.
struct RecordView {
    Status status = Status::ok;
    std::span<const std::byte> message;
    [[nodiscard]] bool ok() const noexcept { return status == Status::ok; }
};

class RingProducer {
public:
    // Validates the ring in `region` and claims its producer side (one producer per ring).
    [[nodiscard]] static RingProducer attach(std::span<std::byte> region, WaitMode mode = WaitMode::adaptive);

    RingProducer(RingProducer&& other) noexcept;
    RingProducer& operator=(RingProducer&& other) noexcept;
    RingProducer(const RingProducer&) = delete;
    RingProducer& operator=(const RingProducer&) = delete;
    ~RingProducer();  // closes

    // Copies one whole message into the ring. `closed`: the consumer closed or died.
    [[nodiscard]] IoResult send(std::span<const std::byte> message, Deadline deadline = Deadline::never());
    [[nodiscard]] IoResult try_send(std::span<const std::byte> message) {
        return send(message, Deadline::immediate());
    }

    // Zero-copy: reserves a record of up to `size` bytes and returns it, to be filled in place and
    // published with `commit`. A second loan before commit replaces the first.
    [[nodiscard]] Loan loan(std::size_t size, Deadline deadline = Deadline::never());
    // Publishes the first `size` bytes of the loan (size <= the loaned size) as one message.
    void commit(std::size_t size);

    // Marks the producer side closed: the consumer drains what was sent, then sees `closed`.
    void close() noexcept;

    [[nodiscard]] std::size_t max_message_size() const noexcept { return max_message_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

private:
    RingProducer() = default;
    [[nodiscard]] Status reserve(std::size_t size, Deadline deadline);
    [[nodiscard]] bool has_space(std::uint64_t need) const noexcept {
        return capacity_ - (head_ - cached_tail_) >= need;
    }
    void refresh_tail();
    void publish(std::size_t size);
    void release_ownership() noexcept;

    detail::ring::RingHeader* header_ = nullptr;
    std::byte* data_ = nullptr;
    std::uint64_t capacity_ = 0;
    std::uint64_t mask_ = 0;
    std::size_t max_message_ = 0;
    WaitMode mode_ = WaitMode::adaptive;
    // Local, authoritative copies: the producer cursor is ours; the consumer cursor is cached and
    // reloaded from shared memory only when the ring looks full.
    std::uint64_t head_ = 0;
    std::uint64_t cached_tail_ = 0;
    // The reservation between reserve() and publish(): padding before it and its offset and size.
    std::uint64_t pending_padding_ = 0;
    std::uint64_t pending_offset_ = 0;
    std::size_t pending_size_ = 0;
    bool pending_ = false;
    detail::RingPeer consumer_;
};

class RingConsumer {
public:
    // Validates the ring in `region` and claims its consumer side (one consumer per ring).
    [[nodiscard]] static RingConsumer attach(std::span<std::byte> region, WaitMode mode = WaitMode::adaptive);

    RingConsumer(RingConsumer&& other) noexcept;
    RingConsumer& operator=(RingConsumer&& other) noexcept;
    RingConsumer(const RingConsumer&) = delete;
    RingConsumer& operator=(const RingConsumer&) = delete;
    ~RingConsumer();  // closes

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

    // Marks the consumer side closed: a producer then gets `closed` instead of filling the ring.
    void close() noexcept;

    [[nodiscard]] std::size_t max_message_size() const noexcept { return max_message_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

private:
    RingConsumer() = default;
    // Finds the next data record (skipping padding); on ok fills record_offset_/record_payload_.
    [[nodiscard]] Status next_record(Deadline deadline);
    [[nodiscard]] Status wait_for_data(Deadline deadline);
    bool refresh_head();
    void consume();
    void release_ownership() noexcept;

    detail::ring::RingHeader* header_ = nullptr;
    const std::byte* data_ = nullptr;
    std::uint64_t capacity_ = 0;
    std::uint64_t mask_ = 0;
    std::size_t max_message_ = 0;
    WaitMode mode_ = WaitMode::adaptive;
    // Local, authoritative copies: the consumer cursor is ours; the producer cursor is cached and
    // reloaded from shared memory only when the ring looks empty.
    std::uint64_t tail_ = 0;
    std::uint64_t cached_head_ = 0;
    std::uint64_t record_offset_ = 0;
    std::uint32_t record_payload_ = 0;
    bool holding_ = false;  // a record returned by read() awaits release()
    detail::RingPeer producer_;
};

}  // namespace ipckit
