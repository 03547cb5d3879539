// Ring transports (shm:/NAME, shm:@NAME, sysvshm:KEY): the lock-free ring in POSIX or System V
// shared memory, or in a sealed memfd served on an abstract socket (rings/region_memory.hpp). The
// creating side makes the object, sizes it for the ring and formats it; the opening side maps
// what is there and validates it (Ring*::attach checks the header).
//
// Delivery (docs/channels.md): a sender waits for a receiver before its first record, and its
// close lingers until what it committed is taken or the reader is gone. A POSIX shm file can be
// truncated under us: its mapping is guarded (BusGuard), which also wakes a sleeper on it.
#include <algorithm>
#include <chrono>

#include "channel_backend.hpp"
#include "ipckit/error.hpp"
#include "ipckit/lanes.hpp"
#include "ipckit/ring.hpp"
#include "ipckit/sysv_key.hpp"
#include "rings/region_memory.hpp"

namespace ipckit::detail {
namespace {

using namespace std::chrono_literals;

// Enough for 1 MiB messages (a record may take half the ring) without the user asking.
constexpr std::size_t kDefaultRingCapacity = 4u << 20;
// Per lane, for senders=N (N of them in one region): 256 KiB messages by default.
constexpr std::size_t kDefaultLaneCapacity = 512u << 10;

// How long a sender's close waits for its records to be taken when nobody says otherwise.
constexpr auto kDrainLinger = std::chrono::seconds(10);

// Bytes, and the format, of what `address` names: a 1:1 ring, or lanes for senders=N.
std::size_t region_capacity(const Address& address) {
    return address.capacity.value_or(address.region.senders > 0 ? kDefaultLaneCapacity
                                                                : kDefaultRingCapacity);
}
std::size_t region_size_for(const Address& address) {
    const std::size_t capacity = region_capacity(address);
    return address.region.senders > 0 ? Lanes::region_size(address.region.senders, capacity)
                                      : Ring::region_size(capacity);
}
void format_for(const Address& address, std::span<std::byte> region) {
    const std::size_t capacity = region_capacity(address);
    if (address.region.senders > 0) {
        Lanes::format(region, LanesOptions{address.region.senders, capacity, address.region.latency});
    } else {
        Ring::format(region, RingOptions{capacity, address.region.latency});
    }
}

}  // namespace

RegionPlace region_place(const Address& address) {
    RegionPlace place;
    place.object = address.text;
    place.mode = address.mode;
    place.keep = address.keep;
    if (address.transport == Transport::sysvshm) {
        place.backing = RegionPlace::Backing::sysv;
        place.sysv_id = address.sysv.id;
        if (address.sysv.id < 0) place.key = address.sysv_key();
    } else if (address.target.starts_with('@')) {
        place.backing = RegionPlace::Backing::memfd;
        place.name = address.target.substr(1);
    } else {
        place.name = address.target;
    }
    return place;
}

namespace {

// The shared memory under a ring, owned: removed by the creator unless keep=1, unmapped last.
class RingRegion {
public:
    RingRegion(const Address& address, Role role, Deadline deadline)
        : memory_(role == Role::create ? RegionMemory::create(region_place(address), region_size_for(address),
                                                              [&](std::span<std::byte> region) {
                                                                  format_for(address, region);
                                                              })
                                       : RegionMemory::open(region_place(address), deadline)),
          guard_(memory_.truncatable() ? BusGuard(memory_.bytes(), address.text, memory_.file_fd())
                                       : BusGuard()) {}
    [[nodiscard]] std::span<std::byte> bytes() const { return memory_.bytes(); }
    // A named POSIX file can be truncated under us; the other kinds cannot.
    [[nodiscard]] const BusGuard& guard() const { return guard_; }

private:
    RegionMemory memory_;
    BusGuard guard_;  // declared after the memory: unregistered before it is unmapped
};

// Runs `call` and reports a truncated region (the guard) as the Error it is, also when the ring
// raised one because it read zeros. A `shm:/` file can be truncated by anyone who may write it;
// its guard watches the file, so a call asleep on the ring when the file is cut is woken at once
// (docs/reliability.md). Where the kernel refused the watch, the call waits in slices of
// kTruncationCheck and the guard is checked between them.
constexpr auto kTruncationCheck = std::chrono::seconds(1);

template <class Call>
auto guarded(const BusGuard& guard, Deadline deadline, Call call) -> decltype(call(deadline)) {
    if (!guard.active()) return call(deadline);
    try {
        for (;;) {
            const auto slice_end =
                guard.watched()
                    ? deadline.when()
                    : std::min(deadline.when(), std::chrono::steady_clock::now() + kTruncationCheck);
            auto r = call(deadline.is_immediate() || guard.watched() ? deadline : Deadline::at(slice_end));
            guard.check();
            if (r.status != Status::timed_out || slice_end >= deadline.when()) return r;
        }
    } catch (const Error&) {
        guard.check();
        throw;
    }
}

// Producer: RingProducer, or LanesSender for senders=N (the same calls).
template <class Producer>
class RingSender final : public SenderBackend {
public:
    RingSender(const Address& address, Role role, Deadline deadline)
        : SenderBackend(address),
          region_(address, role, deadline),
          producer_(attach_formatted<Producer>(region_.bytes(), address.region.wait, role)),
          // A receiver that is there already counts as come: if it closes before the first
          // send, that send is `closed`, as a FIFO writer's would be, not a wait for another.
          consumer_seen_(producer_.consumer_present()) {}

    ~RingSender() override {
        try {
            (void)finish();
        } catch (const Error&) {
        }
    }

    IoResult send(std::span<const std::byte> message, Deadline deadline) override {
        const IoResult waited = wait_for_receiver(deadline);
        if (!waited.ok()) return waited;
        const IoResult r =
            guarded(region_.guard(), deadline, [&](Deadline d) { return producer_.send(message, d); });
        if (r.ok()) ++sent_;
        return r;
    }
    std::size_t max_message_size() const override { return producer_.max_message_size(); }
    Loan loan(std::size_t size, Deadline deadline) override {
        const IoResult waited = wait_for_receiver(deadline);
        if (!waited.ok()) return {waited.status, {}};
        return guarded(region_.guard(), deadline, [&](Deadline d) { return producer_.loan(size, d); });
    }
    void commit(std::size_t size) override {
        producer_.commit(size);
        region_.guard().check();
        ++sent_;
    }

    // Lingers until every committed record was taken, or the reader closed or died.
    SenderClose finish() override {
        if (finished_) return {};
        finished_ = true;
        if (sent_ == 0) return {};
        const IoResult drained = guarded(region_.guard(), Deadline::after(kDrainLinger), [&](Deadline d) {
            return IoResult{producer_.drain(d), 0};
        });
        return {0, drained.status != Status::ok};
    }

private:
    // Like a FIFO writer: nothing is committed for nobody. A record sent before any receiver
    // came would be lost with the ring if this sender gave up.
    IoResult wait_for_receiver(Deadline deadline) {
        if (consumer_seen_) return {Status::ok, 0};
        const IoResult waited = guarded(region_.guard(), deadline, [&](Deadline d) {
            return IoResult{producer_.wait_for_consumer(d), 0};
        });
        consumer_seen_ = waited.ok();
        return waited;
    }

    RingRegion region_;  // declared first: outlives the producer
    Producer producer_;
    bool consumer_seen_;
    bool finished_ = false;
    std::uint64_t sent_ = 0;
};

// Consumer: RingConsumer, or LanesReceiver for senders=N (the same calls).
template <class Consumer>
class RingReceiver final : public ReceiverBackend {
public:
    RingReceiver(const Address& address, Role role, Deadline deadline)
        : ReceiverBackend(address),
          region_(address, role, deadline),
          consumer_(attach_formatted<Consumer>(region_.bytes(), address.region.wait, role)) {}

    IoResult recv(std::span<std::byte> buffer, Deadline deadline) override {
        return guarded(region_.guard(), deadline, [&](Deadline d) { return consumer_.recv(buffer, d); });
    }
    IoResult recv(std::vector<std::byte>& message, Deadline deadline) override {
        return guarded(region_.guard(), deadline, [&](Deadline d) { return consumer_.recv(message, d); });
    }
    std::size_t max_message_size() const override { return consumer_.max_message_size(); }
    // read() finds the next record without consuming it: a peek.
    bool ready() override {
        const bool found = consumer_.read(Deadline::immediate()).status != Status::would_block;
        region_.guard().check();
        return found;
    }
    std::size_t waiting_at_open() const override { return consumer_.pending_at_attach(); }
    RecordView read(Deadline deadline) override {
        return guarded(region_.guard(), deadline, [&](Deadline d) { return consumer_.read(d); });
    }
    void release() override {
        consumer_.release();
        region_.guard().check();
    }
    // Rings and lanes have doorbells, so a PollSet sleeps in poll(2), never on a timer.
    Arm arm(std::vector<int>& fds) override {
        if constexpr (requires { consumer_.arm(fds); }) {
            const bool armed = consumer_.arm(fds);  // lanes: every lane's doorbell and live senders
            region_.guard().check();
            return armed ? Arm::armed : Arm::ready;
        } else {
            const bool armed = consumer_.arm();
            region_.guard().check();
            if (!armed) return Arm::ready;
            fds.push_back(consumer_.doorbell_fd());
            if (const int pidfd = consumer_.producer_fd(); pidfd >= 0) fds.push_back(pidfd);  // its death
            return Arm::armed;
        }
    }
    void disarm() noexcept override { consumer_.disarm(); }

private:
    RingRegion region_;
    Consumer consumer_;
};

}  // namespace

std::unique_ptr<SenderBackend> make_ring_sender(const Address& address, Role role, Deadline deadline) {
    if (address.region.senders > 0) return std::make_unique<RingSender<LanesSender>>(address, role, deadline);
    return std::make_unique<RingSender<RingProducer>>(address, role, deadline);
}

std::unique_ptr<ReceiverBackend> make_ring_receiver(const Address& address, Role role, Deadline deadline) {
    if (address.region.senders > 0)
        return std::make_unique<RingReceiver<LanesReceiver>>(address, role, deadline);
    return std::make_unique<RingReceiver<RingConsumer>>(address, role, deadline);
}

}  // namespace ipckit::detail
