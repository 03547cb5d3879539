// `ipckit bench` zero-copy rows: the ring of the shm: transport driven through its loan API
// instead of the copying send/recv, in a ring of the same size as the `shm` row's.
//   shm-loan, shm-loan?wait=block, shm-loan?wait=spin: the producer loans a record inside the
//     ring and writes every byte of the message there (as a producer that builds its data in
//     place would) and commits it; the consumer reads every byte in place and releases it.
//     Against the copying `shm` rows it saves the copy into the ring and the copy out of it:
//     each byte is written once and read once, through the same routine (bench_touch.hpp) the
//     bare raw-loan-ring uses, so the ratio to that ceiling is the ring's own cost.
//   shm-loan-header: "pass a frame by reference". The frame is already in the record (a camera
//     or a decoder wrote it there); the producer writes only its header, the consumer reads only
//     the header. Its cost should not grow with the frame.
#include <fcntl.h>

#include <bit>
#include <cstring>
#include <optional>

#include "bench_harness.hpp"
#include "bench_touch.hpp"
#include "ipckit/error.hpp"

#if IPCKIT_BENCH_CHANNEL
#include "ipckit/mapping.hpp"
#include "ipckit/posix_shm.hpp"
#include "ipckit/ring.hpp"
#endif

namespace ipckit::bench {
namespace {

#if IPCKIT_BENCH_CHANNEL

constexpr MapOptions kPopulated{.populate = true};

// As the copying shm row.
std::size_t capacity_for(std::size_t size) {
    return ring_bytes_for(size);
}

struct LoanSpec {
    const char* name;
    WaitMode wait;
    const char* wait_name;
    bool whole;  // every byte, or only the header
};

constexpr LoanSpec kLoanRows[] = {
    {"shm-loan", WaitMode::adaptive, "adaptive", true},
    {"shm-loan?wait=block", WaitMode::block, "block", true},
    {"shm-loan?wait=spin", WaitMode::spin, "spin", true},
    {"shm-loan-header", WaitMode::adaptive, "adaptive", false},
};

std::string region_name(const RowPlan& plan, int direction) {
    return "/" + plan.stem + (direction == 0 ? "-loan-ping" : "-loan-pong");
}

// One direction: the shared memory and its mapping, created (side A) or opened (side B).
struct Region {
    std::optional<PosixShm> shm;
    std::optional<Mapping> mapping;
};

class LoanSide final : public Side {
public:
    LoanSide(const LoanSpec& spec, const RowPlan& plan, bool creator)
        : spec_(spec),
          deadline_(Deadline::after(plan.budget.warmup + plan.budget.duration + std::chrono::seconds(10))) {
        const int legs = plan.mode == Mode::latency ? 2 : 1;
        for (int direction = 0; direction < legs; ++direction) {
            Region& region = regions_[direction];
            if (creator) {
                const std::size_t capacity = capacity_for(plan.size);
                region.shm.emplace(
                    PosixShm::create(region_name(plan, direction), Ring::region_size(capacity)));
                // Reserved at creation and mapped populated, as the shm: channel does, so no row
                // allocates or faults a page in while measured.
                const auto bytes = static_cast<off_t>(Ring::region_size(capacity));
                if (const int err = ::posix_fallocate(region.shm->fd().get(), 0, bytes); err != 0)
                    throw_errno("posix_fallocate", region_name(plan, direction), err);
                region.mapping.emplace(region.shm->map(Access::read_write, kPopulated));
                Ring::format(region.mapping->bytes(), RingOptions{capacity});
            } else {
                region.shm.emplace(PosixShm::open(region_name(plan, direction), Access::read_write));
                region.mapping.emplace(region.shm->map(Access::read_write, kPopulated));
            }
        }
        // A sends on ping and receives on pong; B the other way round. Throughput: B sends.
        const bool sends_on_ping = creator == (plan.mode == Mode::latency);
        if (plan.mode == Mode::latency) {
            producer_.emplace(
                RingProducer::attach(regions_[sends_on_ping ? 0 : 1].mapping->bytes(), spec.wait));
            consumer_.emplace(
                RingConsumer::attach(regions_[sends_on_ping ? 1 : 0].mapping->bytes(), spec.wait));
        } else if (creator) {
            consumer_.emplace(RingConsumer::attach(regions_[0].mapping->bytes(), spec.wait));
        } else {
            producer_.emplace(RingProducer::attach(regions_[0].mapping->bytes(), spec.wait));
        }
    }

    void send(std::span<const std::byte> message) override {
        const Loan loan = producer_->loan(message.size(), deadline_);
        check(loan.status, "loan");
        // The message is built where it will be read; `message` only gives its size.
        touch_write(spec_.whole ? loan.buffer : loan.buffer.first(std::min(kHeaderBytes, message.size())),
                    ++sequence_);
        producer_->commit(message.size());
    }
    void recv(std::span<std::byte> buffer) override { take(consumer_->read(deadline_), buffer); }
    bool try_recv(std::span<std::byte> buffer) override {
        const RecordView view = consumer_->read(Deadline::immediate());
        if (view.status == Status::would_block || view.status == Status::timed_out) return false;
        take(view, buffer);
        return true;
    }

private:
    // Reads the record in place (every byte, or the header) and releases it.
    void take(const RecordView& view, std::span<std::byte> buffer) {
        check(view.status, "read");
        const auto bytes =
            spec_.whole ? view.message : view.message.first(std::min(kHeaderBytes, view.message.size()));
        checksum_ ^= touch_read(bytes);
        if (!buffer.empty()) buffer[0] = static_cast<std::byte>(checksum_);
        consumer_->release();
    }
    static void check(Status status, const char* what) {
        if (status == Status::ok) return;
        if (status == Status::closed) throw PeerGone(std::string("loan: peer closed during ") + what);
        check_abort(what);
        throw PeerGone(std::string("loan: ") + what + " " + std::string(to_string(status)));
    }

    LoanSpec spec_;
    Deadline deadline_;
    std::uint64_t sequence_ = 0, checksum_ = 0;
    Region regions_[2];  // declared before the ring ends: outlives them
    std::optional<RingProducer> producer_;
    std::optional<RingConsumer> consumer_;
};

class LoanContender final : public Contender {
public:
    explicit LoanContender(const LoanSpec& spec)
        : Contender(spec.name, Category::channel, spec.wait_name), spec_(spec) {}
    std::optional<std::string> cannot_carry(std::size_t size) const override {
        if (size > Ring::max_message_size(capacity_for(size)))
            return std::string("over the ring's largest message");
        return {};
    }
    std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch&) override {
        return std::make_unique<LoanSide>(spec_, plan, true);
    }
    std::unique_ptr<Side> join(const RowPlan& plan, const std::vector<std::string>&) override {
        return std::make_unique<LoanSide>(spec_, plan, false);
    }

private:
    LoanSpec spec_;
};

#endif

}  // namespace

void add_loan(ContenderList& list) {
#if IPCKIT_BENCH_CHANNEL
    for (const auto& spec : kLoanRows)
        list.push_back(std::make_unique<LoanContender>(spec));
#else
    for (const char* name : {"shm-loan", "shm-loan?wait=block", "shm-loan?wait=spin", "shm-loan-header"})
        list.push_back(std::make_unique<NotBuilt>(
            name, "adaptive", "not built: the ring (src/rings/ring.cpp) is not in this build"));
#endif
}

}  // namespace ipckit::bench
