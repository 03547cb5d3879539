// ipckit/lanes.hpp — many senders, one receiver, in shared memory without a shared cursor: a
// lanes region (layout kind 2, docs/ring-layout.md) holds N complete 1:1 rings ("lanes"); each
// sender claims a lane of its own and the one receiver takes from all of them in turn.
//
// This is `shm:/NAME?senders=N` (and shm:@NAME, sysvshm:KEY). A sender claims the first lane
// whose producer end is vacant, closed, or held by a process that died (the ring's own claim and
// takeover), so senders never contend on a cursor and each sends at the speed of a 1:1 ring. The
// receiver takes at most one record per lane per turn (round robin), so a busy sender cannot
// starve the others. Order is kept per sender; there is no total order between senders.
//
// Example:
//     ipckit::Lanes::format(region, {.lanes = 4});              // the creator, once
//     auto rx = ipckit::LanesReceiver::attach(region);          // the receiver
//     auto tx = ipckit::LanesSender::attach(region);            // each sender, in its process
//     tx.send(ipckit::as_bytes("hello"));
//     std::vector<std::byte> message;
//     if (rx.recv(message, ipckit::Deadline::after(1s)).ok()) { ... }
//
// Results are the ring's (`ok`, `would_block`, `timed_out`, `closed`). The receiver is `closed`
// once no lane has a live sender, at least one lane was ever used, and every lane is drained: a
// sender that closes or dies frees its lane, and what it committed is delivered first. A lane no
// sender ever claimed does not keep the receiver open, and does not close it either (a receiver
// that started first waits for its first sender).
// Waiting: an empty receiver counts itself as a sleeper in every lane and sleeps on all lanes'
// futex words at once (futex_waitv, Linux 5.16+; on older kernels it sleeps in 1 ms slices), in
// slices of at most 20 ms so that dead senders are noticed.
// Errors (`ipckit::Error`): those of RingProducer/RingConsumer, plus: a region that is not a valid
// lanes header (protocol_error; a kind-1 ring or a topic says so), or a lane whose ring has another
// capacity than the header says (protocol_error); a lane count outside 1..64
// (invalid_argument); every lane held by a live sender (device_or_resource_busy, naming N); a
// second live receiver (device_or_resource_busy, naming its pid).
// Thread-safety: one thread at a time per LanesSender or LanesReceiver. The region must outlive them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "ipckit/ring.hpp"

namespace ipckit {

struct LanesOptions {
    std::uint32_t lanes = 0;   // 1 … 64: the most senders at once
    std::size_t capacity = 0;  // bytes per lane, a power of two; 0: the largest that fits
    bool latency = false;      // stats=latency on every lane (RingOptions::latency)
};

class Lanes {
public:
    static constexpr std::uint32_t kMaxLanes = 64;
    // Bytes of region `lanes` lanes of `capacity` bytes each need (headers included).
    [[nodiscard]] static std::size_t region_size(std::uint32_t lanes, std::size_t capacity) noexcept;
    // Initialises `region` as empty lanes with nobody attached; returns the capacity per lane.
    static std::size_t format(std::span<std::byte> region, LanesOptions options);
};

namespace detail {
struct LanesReceiverCloser {
    std::uint32_t epoch = 0;
    void operator()(ring::EndpointLine* line) const noexcept;
};
}  // namespace detail

class LanesSender {
public:
    // Claims the first free lane (vacant, closed, or its sender dead). None free: Error
    // device_or_resource_busy "... all N lanes are held by live senders (senders=N)".
    [[nodiscard]] static LanesSender attach(std::span<std::byte> region, WaitMode mode = WaitMode::adaptive);

    [[nodiscard]] IoResult send(std::span<const std::byte> message, Deadline deadline = Deadline::never()) {
        return producer_.send(message, deadline);
    }
    [[nodiscard]] IoResult try_send(std::span<const std::byte> message) {
        return producer_.try_send(message);
    }
    [[nodiscard]] Loan loan(std::size_t size, Deadline deadline = Deadline::never()) {
        return producer_.loan(size, deadline);
    }
    void commit(std::size_t size) { producer_.commit(size); }
    void close() noexcept { producer_.close(); }

    [[nodiscard]] bool consumer_present() { return producer_.consumer_present(); }
    [[nodiscard]] Status wait_for_consumer(Deadline deadline) {
        return producer_.wait_for_consumer(deadline);
    }
    [[nodiscard]] Status drain(Deadline deadline) { return producer_.drain(deadline); }

    [[nodiscard]] std::size_t max_message_size() const noexcept { return producer_.max_message_size(); }
    [[nodiscard]] std::size_t capacity() const noexcept { return producer_.capacity(); }
    // Which lane this sender holds (0-based) and how many the region has.
    [[nodiscard]] std::uint32_t lane() const noexcept { return lane_; }
    [[nodiscard]] std::uint32_t lanes() const noexcept { return lanes_; }

private:
    LanesSender(RingProducer producer, std::uint32_t lane, std::uint32_t lanes)
        : producer_(std::move(producer)), lane_(lane), lanes_(lanes) {}
    RingProducer producer_;
    std::uint32_t lane_ = 0;
    std::uint32_t lanes_ = 0;
};

class LanesReceiver {
public:
    // Claims the receiver end and every lane's consumer end (a dead receiver is taken over; each
    // lane resumes at its last consumed record).
    [[nodiscard]] static LanesReceiver attach(std::span<std::byte> region,
                                              WaitMode mode = WaitMode::adaptive);

    [[nodiscard]] IoResult recv(std::span<std::byte> buffer, Deadline deadline = Deadline::never());
    [[nodiscard]] IoResult recv(std::vector<std::byte>& message, Deadline deadline = Deadline::never());
    [[nodiscard]] IoResult try_recv(std::span<std::byte> buffer) {
        return recv(buffer, Deadline::immediate());
    }
    [[nodiscard]] IoResult try_recv(std::vector<std::byte>& message) {
        return recv(message, Deadline::immediate());
    }
    // Zero-copy: the next message in place (from the next lane in turn), valid until `release`.
    [[nodiscard]] RecordView read(Deadline deadline = Deadline::never());
    void release();
    // Closes every lane's consumer end and the receiver end: senders then get `closed`.
    void close() noexcept;

    // Some lane has a message now (never waits).
    [[nodiscard]] bool has_data() const noexcept;
    // For a wait set (PollSet): arms every lane's doorbell (RingConsumer::arm) and appends to
    // `fds` each lane's doorbell and the pidfd of each live sender. Returns false when a message
    // is there already or the receiver is closed (then do not sleep). `disarm` after the wait.
    [[nodiscard]] bool arm(std::vector<int>& fds);
    void disarm() noexcept;
    [[nodiscard]] bool took_over() const noexcept { return took_over_; }
    [[nodiscard]] std::size_t pending_at_attach() const noexcept { return pending_at_attach_; }
    [[nodiscard]] std::size_t max_message_size() const noexcept { return max_message_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] std::uint32_t lanes() const noexcept { return static_cast<std::uint32_t>(lanes_.size()); }

private:
    LanesReceiver() = default;
    // Finds the next lane with a message, in turn; ok sets `lane`.
    [[nodiscard]] Status next_lane(Deadline deadline, std::size_t& lane);
    [[nodiscard]] bool scan(std::size_t& lane) const noexcept;
    [[nodiscard]] bool all_left(std::chrono::steady_clock::time_point now);
    void sleep_on_lanes(Deadline until);

    std::unique_ptr<detail::ring::EndpointLine, detail::LanesReceiverCloser> receiver_;
    std::vector<RingConsumer> lanes_;
    std::vector<detail::ring::EndpointWatch> senders_;
    std::vector<const detail::ring::EndpointLine*> sender_lines_;
    WaitMode mode_ = WaitMode::adaptive;
    detail::SleeperBarrier sleeper_;  // ours when every lane is empty and we sleep on them all
    std::size_t next_ = 0;            // the lane whose turn it is
    std::size_t held_ = 0;            // the lane of a read() awaiting release()
    bool holding_ = false;
    bool took_over_ = false;
    std::size_t pending_at_attach_ = 0;
    std::size_t max_message_ = 0;
    std::size_t capacity_ = 0;
};

}  // namespace ipckit
