// Ring transports (shm:/NAME, shm:@NAME, sysvshm:KEY): the lock-free ring in POSIX or System V
// shared memory, or in a sealed memfd served on an abstract socket (shared_region.hpp). The
// creating side makes the object, sizes it for the ring and formats it; the opening side maps
// what is there and validates it (Ring*::attach checks the header).
//
// Delivery (docs/channels.md): a sender waits for a receiver before its first record, and its
// close lingers until what it committed is taken or the reader is gone. A POSIX shm file can be
// truncated under us: its mapping is guarded (BusGuard), checked before and after every wait.
#include <fcntl.h>

#include <optional>
#include <thread>

#include "channel_backend.hpp"
#include "ipckit/error.hpp"
#include "ipckit/lanes.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/posix_shm.hpp"
#include "ipckit/ring.hpp"
#include "ipckit/sysv_key.hpp"
#include "ipckit/sysv_shm.hpp"
#include "shared_region.hpp"

namespace ipckit::detail {
namespace {

using namespace std::chrono_literals;

// Enough for 1 MiB messages (a record may take half the ring) without the user asking.
constexpr std::size_t kDefaultRingCapacity = 4u << 20;
// Per lane, for senders=N (N of them in one region): 256 KiB messages by default.
constexpr std::size_t kDefaultLaneCapacity = 512u << 10;

// How long a sender's close waits for its records to be taken when nobody says otherwise.
constexpr auto kDrainLinger = std::chrono::seconds(10);

// ---- The ring API the channel needs, whether or not this build's ring has it yet ----------
// (consumer_present, wait_for_consumer, drain, took_over, pending_at_attach: the ring's
// takeover work adds them; until then a producer assumes a consumer and does not linger.)
template <class P>
bool ring_consumer_present(P& producer) {
    if constexpr (requires { producer.consumer_present(); }) {
        return producer.consumer_present();
    } else {
        return true;
    }
}
template <class P>
Status ring_wait_for_consumer(P& producer, Deadline deadline) {
    if constexpr (requires { producer.wait_for_consumer(deadline); }) {
        return producer.wait_for_consumer(deadline);
    } else {
        return Status::ok;
    }
}
template <class P>
Status ring_drain(P& producer, Deadline deadline) {
    if constexpr (requires { producer.drain(deadline); }) {
        return producer.drain(deadline);
    } else {
        return Status::ok;
    }
}
template <class C>
std::size_t ring_pending_at_attach(const C& consumer) {
    if constexpr (requires { consumer.pending_at_attach(); }) {
        return consumer.pending_at_attach();
    } else {
        return 0;
    }
}

// Bytes, and the format, of what `address` names: a 1:1 ring, or lanes for senders=N.
std::size_t region_capacity(const Address& address) {
    return address.capacity.value_or(address.senders > 0 ? kDefaultLaneCapacity : kDefaultRingCapacity);
}
std::size_t region_size_for(const Address& address) {
    const std::size_t capacity = region_capacity(address);
    return address.senders > 0 ? Lanes::region_size(address.senders, capacity) : Ring::region_size(capacity);
}
void format_for(const Address& address, std::span<std::byte> region) {
    const std::size_t capacity = region_capacity(address);
    if (address.senders > 0) {
        Lanes::format(region, LanesOptions{address.senders, capacity});
    } else {
        Ring::format(region, RingOptions{capacity});
    }
}

// The shared memory under a ring, owned: removed by the creator unless keep=1, unmapped last.
class RingRegion {
public:
    RingRegion(const Address& address, Role role, Deadline deadline) {
        if (role == Role::create) {
            create(address);
        } else {
            open(address, deadline);
        }
    }
    [[nodiscard]] std::span<std::byte> bytes() const { return bytes_; }
    // A named POSIX file can be truncated under us; the other kinds cannot.
    [[nodiscard]] const BusGuard& guard() const { return guard_; }

private:
    static bool abstract(const Address& address) { return address.target.starts_with('@'); }

    void create(const Address& address) {
        if (address.transport == Transport::shm && abstract(address)) {
            if (address.keep) {
                throw_error(
                    std::errc::invalid_argument,
                    "address \"" + address.text +
                        "\": keep=1 cannot apply to shm:@NAME (it lives exactly as long as its holders)");
            }
            shared_.emplace(SharedRegion::create(
                address.target.substr(1), region_size_for(address),
                [&](std::span<std::byte> region) { format_for(address, region); }, address.text));
            bytes_ = shared_->bytes();
            return;
        }
        if (address.sysv_id >= 0) {
            throw_error(
                std::errc::invalid_argument,
                "address \"" + address.text + "\": an id names an existing segment; create one by key");
        }
        const std::size_t size = region_size_for(address);
        if (address.transport == Transport::shm) {
            posix_.emplace(PosixShm::create(address.target, size, address.mode));
            // ftruncate on tmpfs reserves nothing: a /dev/shm too small for the ring would
            // otherwise show as SIGBUS when the ring first reaches a page it cannot get.
            // Allocating every page now turns that into ENOSPC here, before anyone attaches.
            if (const int err = ::posix_fallocate(posix_->fd().get(), 0, static_cast<off_t>(size));
                err != 0) {
                throw_errno("posix_fallocate", address.target + ", " + std::to_string(size) + " bytes", err);
            }
            if (address.keep) posix_->keep();
            mapping_.emplace(posix_->map(Access::read_write));
            bytes_ = mapping_->bytes();
            guard_ = BusGuard(bytes_, address.text);
        } else {
            sysv_.emplace(SysvShm::create(SysvKey::parse(address.target), size, address.mode));
            if (address.keep) sysv_->keep();
            attachment_.emplace(sysv_->attach(Access::read_write));
            bytes_ = attachment_->bytes();
        }
        format_for(address, bytes_);
    }

    void open(const Address& address, Deadline deadline) {
        if (address.transport == Transport::shm && abstract(address)) {
            shared_.emplace(SharedRegion::open(address.target.substr(1), deadline, address.text));
            bytes_ = shared_->bytes();
        } else if (address.transport == Transport::shm) {
            posix_.emplace(connect_retrying(
                deadline, [&] { return PosixShm::open(address.target, Access::read_write); }));
            // The creator sizes the object just after shm_open: an opener that came in between
            // sees 0 bytes (mmap would fail), so it waits for the size as for the format.
            for (const auto grace = Deadline::after(kFormatGrace); posix_->size() == 0 && !grace.expired();)
                std::this_thread::sleep_for(1ms);
            mapping_.emplace(posix_->map(Access::read_write));
            bytes_ = mapping_->bytes();
            guard_ = BusGuard(bytes_, address.text);
        } else {
            sysv_.emplace(connect_retrying(deadline, [&] {
                return address.sysv_id >= 0 ? SysvShm::open_id(address.sysv_id)
                                            : SysvShm::open(SysvKey::parse(address.target));
            }));
            attachment_.emplace(sysv_->attach(Access::read_write));
            bytes_ = attachment_->bytes();
        }
    }

    std::optional<PosixShm> posix_;
    std::optional<Mapping> mapping_;
    std::optional<SysvShm> sysv_;
    std::optional<SysvAttachment> attachment_;
    std::optional<SharedRegion> shared_;
    std::span<std::byte> bytes_;
    BusGuard guard_;  // declared after the mappings: unregistered before they are unmapped
};

// Runs `call` with the caller's deadline when the region cannot be truncated; otherwise first
// without waiting, checking the guard (a region truncated before the wait is an Error naming it,
// never a sleep on zeroed memory), then with the caller's deadline, checking it again. No
// slices: an idle end sleeps until a message, a close or a death (docs/reliability.md says what
// a truncation during a sleep costs). An error the ring raised because it read zeros is
// reported as the truncation it is.
template <class Call>
auto guarded(const BusGuard& guard, Deadline deadline, Call call) -> decltype(call(deadline)) {
    if (!guard.active()) return call(deadline);
    try {
        auto r = call(Deadline::immediate());
        guard.check();
        const bool waits = r.status == Status::would_block || r.status == Status::timed_out;
        if (!waits || deadline.is_immediate()) return r;
        r = call(deadline);
        guard.check();
        return r;
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
          producer_(attach_formatted<Producer>(region_.bytes(), address.wait, role)),
          // A receiver that is there already counts as come: if it closes before the first
          // send, that send is `closed`, as a FIFO writer's would be, not a wait for another.
          consumer_seen_(ring_consumer_present(producer_)) {}

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
            return IoResult{ring_drain(producer_, d), 0};
        });
        return {0, drained.status != Status::ok};
    }

private:
    // Like a FIFO writer: nothing is committed for nobody. A record sent before any receiver
    // came would be lost with the ring if this sender gave up.
    IoResult wait_for_receiver(Deadline deadline) {
        if (consumer_seen_) return {Status::ok, 0};
        const IoResult waited = guarded(region_.guard(), deadline, [&](Deadline d) {
            return IoResult{ring_wait_for_consumer(producer_, d), 0};
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
          consumer_(attach_formatted<Consumer>(region_.bytes(), address.wait, role)) {}

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
    std::size_t waiting_at_open() const override { return ring_pending_at_attach(consumer_); }
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
    if (address.senders > 0) return std::make_unique<RingSender<LanesSender>>(address, role, deadline);
    return std::make_unique<RingSender<RingProducer>>(address, role, deadline);
}

std::unique_ptr<ReceiverBackend> make_ring_receiver(const Address& address, Role role, Deadline deadline) {
    if (address.senders > 0) return std::make_unique<RingReceiver<LanesReceiver>>(address, role, deadline);
    return std::make_unique<RingReceiver<RingConsumer>>(address, role, deadline);
}

}  // namespace ipckit::detail
