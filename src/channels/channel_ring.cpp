// Ring transports (shm:/NAME, sysvshm:KEY): the lock-free ring in POSIX or System V shared
// memory. The creating side makes the object, sizes it for the ring and formats it; the
// opening side maps what is there and validates it (Ring*::attach checks the header).
#include <fcntl.h>

#include <optional>
#include <thread>

#include "channel_backend.hpp"
#include "ipckit/error.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/posix_shm.hpp"
#include "ipckit/ring.hpp"
#include "ipckit/sysv_key.hpp"
#include "ipckit/sysv_shm.hpp"

namespace ipckit::detail {
namespace {

using namespace std::chrono_literals;

// Enough for 1 MiB messages (a record may take half the ring) without the user asking.
constexpr std::size_t kDefaultRingCapacity = 4u << 20;
// An opener may arrive between the creator's shm_open and its format: it retries this long.
constexpr auto kFormatGrace = 1s;

WaitMode wait_mode(const Address& address) {
    if (address.wait == "spin") return WaitMode::spin;
    if (address.wait == "block") return WaitMode::block;
    return WaitMode::adaptive;
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

private:
    void create(const Address& address) {
        if (address.sysv_id >= 0) {
            throw_error(
                std::errc::invalid_argument,
                "address \"" + address.text + "\": an id names an existing segment; create one by key");
        }
        const std::size_t capacity = address.capacity.value_or(kDefaultRingCapacity);
        const std::size_t size = Ring::region_size(capacity);
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
        } else {
            sysv_.emplace(SysvShm::create(SysvKey::parse(address.target), size, address.mode));
            if (address.keep) sysv_->keep();
            attachment_.emplace(sysv_->attach(Access::read_write));
            bytes_ = attachment_->bytes();
        }
        Ring::format(bytes_, RingOptions{capacity});
    }

    void open(const Address& address, Deadline deadline) {
        if (address.transport == Transport::shm) {
            posix_.emplace(connect_retrying(
                deadline, [&] { return PosixShm::open(address.target, Access::read_write); }));
            // The creator sizes the object just after shm_open: an opener that came in between
            // sees 0 bytes (mmap would fail), so it waits for the size as for the format.
            for (const auto grace = Deadline::after(kFormatGrace); posix_->size() == 0 && !grace.expired();)
                std::this_thread::sleep_for(1ms);
            mapping_.emplace(posix_->map(Access::read_write));
            bytes_ = mapping_->bytes();
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
    std::span<std::byte> bytes_;
};

// Attaches one side, giving a creator that is still formatting a moment to finish.
template <class Side>
Side attach_side(const RingRegion& region, const Address& address, Role role) {
    const auto grace = Deadline::after(kFormatGrace);
    for (;;) {
        try {
            return Side::attach(region.bytes(), wait_mode(address));
        } catch (const Error& e) {
            if (role == Role::create || e.code() != std::errc::protocol_error || grace.expired()) throw;
        }
        std::this_thread::sleep_for(1ms);
    }
}

class RingSender final : public SenderBackend {
public:
    RingSender(const Address& address, Role role, Deadline deadline)
        : SenderBackend(address),
          region_(address, role, deadline),
          producer_(attach_side<RingProducer>(region_, address, role)) {}

    IoResult send(std::span<const std::byte> message, Deadline deadline) override {
        return producer_.send(message, deadline);
    }
    std::size_t max_message_size() const override { return producer_.max_message_size(); }
    Loan loan(std::size_t size, Deadline deadline) override { return producer_.loan(size, deadline); }
    void commit(std::size_t size) override { producer_.commit(size); }

private:
    RingRegion region_;  // declared first: outlives the producer
    RingProducer producer_;
};

class RingReceiver final : public ReceiverBackend {
public:
    RingReceiver(const Address& address, Role role, Deadline deadline)
        : ReceiverBackend(address),
          region_(address, role, deadline),
          consumer_(attach_side<RingConsumer>(region_, address, role)) {}

    IoResult recv(std::span<std::byte> buffer, Deadline deadline) override {
        return consumer_.recv(buffer, deadline);
    }
    IoResult recv(std::vector<std::byte>& message, Deadline deadline) override {
        return consumer_.recv(message, deadline);
    }
    std::size_t max_message_size() const override { return consumer_.max_message_size(); }
    // read() finds the next record without consuming it: a peek.
    bool ready() override { return consumer_.read(Deadline::immediate()).status != Status::would_block; }
    RecordView read(Deadline deadline) override { return consumer_.read(deadline); }
    void release() override { consumer_.release(); }

private:
    RingRegion region_;
    RingConsumer consumer_;
};

}  // namespace

std::unique_ptr<SenderBackend> make_ring_sender(const Address& address, Role role, Deadline deadline) {
    return std::make_unique<RingSender>(address, role, deadline);
}

std::unique_ptr<ReceiverBackend> make_ring_receiver(const Address& address, Role role, Deadline deadline) {
    return std::make_unique<RingReceiver>(address, role, deadline);
}

}  // namespace ipckit::detail
