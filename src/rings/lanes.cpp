// Lanes (layout kind 2, docs/ring-layout.md): N complete kind-1 rings after a 1024-byte lanes
// header. Every lane is claimed and used with the ring's own code; what is here is the header,
// picking a free lane, the receiver's round robin, and sleeping on every lane at once.
#include "ipckit/lanes.hpp"

#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <new>
#include <string>
#include <thread>

#include "ipckit/error.hpp"
#include "region.hpp"
#include "ring_layout.hpp"
#include "wait.hpp"

namespace ipckit {

using namespace detail::ring;
using Clock = Deadline::Clock;

namespace {

using detail::cpu_relax;
using detail::kAdaptiveSpin;
using detail::kSpinYieldEvery;
using detail::region::str;

struct LanesGeometry {
    LanesHeader* header;
    std::uint32_t lanes;
    std::uint64_t stride;
};

void check_region(std::span<std::byte> region) {
    detail::region::check_span(region, Kind::lanes, kLanesHeaderSize + kHeaderSize + kMinCapacity);
}

// Every field read once into locals and checked against the region before use.
LanesGeometry validate(std::span<std::byte> region) {
    check_region(region);
    const auto control = detail::region::read_control(region, Kind::lanes, kLanesHeaderSize);
    const std::uint64_t lanes = control.kind_words[0];
    const std::uint64_t stride = control.kind_words[1];
    const auto corrupt = [](const std::string& what) { detail::region::corrupt_header(Kind::lanes, what); };
    if (lanes < 1 || lanes > Lanes::kMaxLanes) corrupt("lane count " + str(lanes) + " outside 1..64");
    if (stride != kHeaderSize + control.capacity)
        corrupt("lane stride " + str(stride) + ", expected " + str(kHeaderSize + control.capacity));
    if ((region.size() - kLanesHeaderSize) / stride < lanes) {
        corrupt(str(lanes) + " lanes of " + str(stride) + " bytes need a region of " +
                str(kLanesHeaderSize + lanes * stride) + " bytes, but it has " + str(region.size()));
    }
    return {std::launder(reinterpret_cast<LanesHeader*>(region.data())), static_cast<std::uint32_t>(lanes),
            stride};
}

std::span<std::byte> lane_bytes(std::span<std::byte> region, const LanesGeometry& g, std::uint32_t i) {
    return region.subspan(kLanesHeaderSize + i * g.stride, g.stride);
}

// A lane's own header may say a smaller capacity than the lanes header and still fit its stride,
// which the kind-1 attach accepts; but every lane must be the same ring, or the receiver's limit
// (lane 0's) would be wrong for the others.
void check_lane(const LanesGeometry& g, std::uint32_t i, std::size_t capacity) {
    if (capacity != g.stride - kHeaderSize) {
        throw_error(std::errc::protocol_error, "lanes: lane " + str(i) + " is a ring of " + str(capacity) +
                                                   " bytes, but the lanes header says " +
                                                   str(g.stride - kHeaderSize));
    }
}

}  // namespace

// ---- Lanes ----

std::size_t Lanes::region_size(std::uint32_t lanes, std::size_t capacity) noexcept {
    return kLanesHeaderSize + std::size_t{lanes} * (kHeaderSize + capacity);
}

std::size_t Lanes::format(std::span<std::byte> region, LanesOptions options) {
    if (options.lanes < 1 || options.lanes > kMaxLanes) {
        throw_error(std::errc::invalid_argument,
                    "lanes: " + str(options.lanes) + " senders, expected 1 to " + str(kMaxLanes));
    }
    check_region(region);
    // Each lane is a kind-1 ring: its header, then its records.
    const std::uint64_t room = (region.size() - kLanesHeaderSize) / options.lanes;
    if (room < kHeaderSize + kMinCapacity) {
        throw_error(std::errc::invalid_argument, "lanes region of " + str(region.size()) +
                                                     " bytes is too small for " + str(options.lanes) +
                                                     " lanes");
    }
    const std::uint64_t capacity =
        detail::region::choose_capacity(Kind::lanes, options.capacity, room - kHeaderSize,
                                        region_size(options.lanes, options.capacity), region.size());
    const std::uint64_t stride = kHeaderSize + capacity;
    auto* header = ::new (region.data()) LanesHeader{};
    for (std::uint32_t i = 0; i < options.lanes; ++i)
        Ring::format(region.subspan(kLanesHeaderSize + i * stride, stride),
                     RingOptions{capacity, options.latency});
    // Stamped after every lane is formatted: an attacher that sees the magic sees them all.
    detail::region::stamp(header->control, Kind::lanes, kLanesHeaderSize, capacity, {options.lanes, stride},
                          options.latency ? detail::region::kFlagLatency : 0);
    return static_cast<std::size_t>(capacity);
}

void detail::LanesReceiverCloser::operator()(EndpointLine* line) const noexcept {
    release_endpoint(*line, epoch);
}

// ---- LanesSender ----

LanesSender LanesSender::attach(std::span<std::byte> region, WaitMode mode) {
    const LanesGeometry g = validate(region);
    // The first lane whose producer end the ring's claim accepts: vacant, closed, or dead.
    for (std::uint32_t i = 0; i < g.lanes; ++i) {
        try {
            RingProducer producer = RingProducer::attach(lane_bytes(region, g, i), mode);
            check_lane(g, i, producer.capacity());
            return LanesSender(std::move(producer), i, g.lanes);
        } catch (const Error& e) {
            if (e.code() != std::errc::device_or_resource_busy) throw;
        }
    }
    throw_error(std::errc::device_or_resource_busy,
                "lanes sender: all " + str(g.lanes) +
                    " lanes are held by live senders (senders=" + str(g.lanes) + ")");
}

// ---- LanesReceiver ----

LanesReceiver LanesReceiver::attach(std::span<std::byte> region, WaitMode mode) {
    const LanesGeometry g = validate(region);
    LanesReceiver r;
    const Claim claim = claim_endpoint(g.header->receiver_end, "lanes receiver");
    r.receiver_ = decltype(r.receiver_)(&g.header->receiver_end, detail::LanesReceiverCloser{claim.epoch});
    r.took_over_ = claim.took_over;
    r.mode_ = mode;
    r.sleeper_ = detail::SleeperBarrier(mode);
    r.lanes_.reserve(g.lanes);
    for (std::uint32_t i = 0; i < g.lanes; ++i) {
        const std::span<std::byte> lane = lane_bytes(region, g, i);
        r.lanes_.push_back(RingConsumer::attach(lane, mode));
        check_lane(g, i, r.lanes_.back().capacity());
        r.took_over_ = r.took_over_ || r.lanes_.back().took_over();
        r.pending_at_attach_ += r.lanes_.back().pending_at_attach();
        const auto* ring = std::launder(reinterpret_cast<const RingHeader*>(lane.data()));
        r.senders_.emplace_back(&ring->producer_end, EndpointWatch::JoinAfter{});
    }
    r.max_message_ = r.lanes_.front().max_message_size();
    r.capacity_ = r.lanes_.front().capacity();
    return r;
}

void LanesReceiver::close() noexcept {
    lanes_.clear();
    senders_.clear();
    receiver_.reset();
    holding_ = false;
}

bool LanesReceiver::scan(std::size_t& lane) const noexcept {
    const std::size_t n = lanes_.size();
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = (next_ + k) % n;
        if (lanes_[i].has_data()) {
            lane = i;
            return true;
        }
    }
    return false;
}

bool LanesReceiver::has_data() const noexcept {
    std::size_t lane = 0;
    return holding_ || scan(lane);
}

// No lane has a live sender, and one was used: every sender that came has left.
bool LanesReceiver::all_left(Clock::time_point now) {
    bool used = false;
    for (auto& watch : senders_) {
        if (watch.owner().state == EndpointState::vacant) continue;
        used = true;
        if (!watch.gone(now)) return false;
    }
    return used;
}

bool LanesReceiver::arm(std::vector<int>& fds) {
    if (!receiver_) throw_error(std::errc::bad_file_descriptor, "lanes receiver is closed");
    if (holding_) return false;
    const auto now = Clock::now();
    for (std::size_t i = 0; i < lanes_.size(); ++i) {
        // Armed even when it returns false: a lane whose sender left still rings for the next one.
        if (!lanes_[i].arm() && lanes_[i].has_data()) return false;
        fds.push_back(lanes_[i].doorbell_fd());
        // Only a live sender's pidfd: a dead one's polls readable for ever.
        if (senders_[i].owner().state == EndpointState::attached && !senders_[i].gone(now)) {
            if (const int pidfd = lanes_[i].producer_fd(); pidfd >= 0) fds.push_back(pidfd);
        }
    }
    std::size_t lane = 0;
    if (scan(lane)) return false;
    return !all_left(now);
}

void LanesReceiver::disarm() noexcept {
    for (auto& lane : lanes_)
        lane.disarm();
}

void LanesReceiver::sleep_on_lanes(Deadline until) {
    const std::size_t n = lanes_.size();
    std::atomic<std::uint32_t>* events[Lanes::kMaxLanes];
    std::uint32_t keys[Lanes::kMaxLanes];
    std::atomic<std::uint32_t>* holders[Lanes::kMaxLanes];
    std::uint32_t holder_keys[Lanes::kMaxLanes];
    // The keys before the announcement: a notify after this changes a word, and futex_waitv then
    // returns at once. Then the announcement, a fence, and the re-check (the ring's handshake).
    for (std::size_t i = 0; i < n; ++i) {
        events[i] = lanes_[i].wait_words().data_event;
        keys[i] = events[i]->load(std::memory_order_acquire);
        holders[i] = senders_[i].holder_word();  // a sender's claim, close or death wakes us too
        holder_keys[i] = holders[i]->load(std::memory_order_acquire);  // before all_left looks
    }
    for (std::size_t i = 0; i < n; ++i)
        lanes_[i].wait_words().consumer_sleepers->fetch_add(1, std::memory_order_relaxed);
    sleeper_.pass();
    std::size_t lane = 0;
    if (!scan(lane) && !all_left(Clock::now())) {
        const Deadline wake = sleeper_.sliced()
                                  ? Deadline::at(std::min(until.when(), Clock::now() + detail::kSleepSlice))
                                  : until;
        // Every lane's consumer sleeps: each lane counts the sleep.
        for (std::size_t i = 0; i < n; ++i)
            detail::region::count(*lanes_[i].wait_words().sleeps);
        detail::sleep_on(events, keys, n, holders, holder_keys, n, wake);
    }
    for (std::size_t i = 0; i < n; ++i)
        lanes_[i].wait_words().consumer_sleepers->fetch_sub(1, std::memory_order_relaxed);
}

Status LanesReceiver::next_lane(Deadline deadline, std::size_t& lane) {
    if (!receiver_) throw_error(std::errc::bad_file_descriptor, "lanes receiver is closed");
    if (holding_) {
        lane = held_;
        return Status::ok;
    }
    const auto start = Clock::now();
    auto next_yield = start + kSpinYieldEvery;
    for (;;) {
        if (scan(lane)) return Status::ok;
        const auto now = Clock::now();
        // A sender's close is a release after its last commit: seen closed, a re-scan sees it all.
        if (all_left(now)) return scan(lane) ? Status::ok : Status::closed;
        if (deadline.is_immediate()) return Status::would_block;
        if (now >= deadline.when()) return Status::timed_out;
        if (mode_ == WaitMode::spin || (mode_ == WaitMode::adaptive && now - start < kAdaptiveSpin)) {
            cpu_relax();
            if (now >= next_yield) {
                ::sched_yield();
                next_yield = now + kSpinYieldEvery;
            }
            continue;
        }
        sleep_on_lanes(deadline);
    }
}

IoResult LanesReceiver::recv(std::span<std::byte> buffer, Deadline deadline) {
    std::size_t lane = 0;
    const Status s = next_lane(deadline, lane);
    if (s != Status::ok) return {s, 0};
    const IoResult r = lanes_[lane].recv(buffer, Deadline::immediate());
    if (r.ok()) {
        holding_ = false;
        next_ = (lane + 1) % lanes_.size();
    }
    return r;
}

IoResult LanesReceiver::recv(std::vector<std::byte>& message, Deadline deadline) {
    std::size_t lane = 0;
    const Status s = next_lane(deadline, lane);
    if (s != Status::ok) return {s, 0};
    const IoResult r = lanes_[lane].recv(message, Deadline::immediate());
    if (r.ok()) {
        holding_ = false;
        next_ = (lane + 1) % lanes_.size();
    }
    return r;
}

RecordView LanesReceiver::read(Deadline deadline) {
    std::size_t lane = 0;
    const Status s = next_lane(deadline, lane);
    if (s != Status::ok) return {s, {}};
    const RecordView v = lanes_[lane].read(Deadline::immediate());
    if (v.ok()) {
        holding_ = true;
        held_ = lane;
    }
    return v;
}

void LanesReceiver::release() {
    if (!holding_) {
        if (!receiver_) throw_error(std::errc::bad_file_descriptor, "lanes receiver is closed");
        throw_error(std::errc::invalid_argument, "LanesReceiver::release without a read");
    }
    lanes_[held_].release();
    holding_ = false;
    next_ = (held_ + 1) % lanes_.size();
}

}  // namespace ipckit
