// `ipckit bench` zero-copy row, `shm-loan`: the ring of the shm: transport driven through its
// loan API instead of the copying send/recv. The producer loans a record inside the ring and
// writes every byte of the message there (as a producer that builds its data in place would)
// and commits it; the consumer reads every byte in place and releases it. Against the copying
// `shm` row (same ring, same wait strategy: block) it saves the consumer's copy out of the ring
// and the producer's separate buffer: each byte is written once and read once.
#include <bit>
#include <cstring>
#include <optional>

#include "bench_harness.hpp"
#include "ipckit/error.hpp"

#if IPCKIT_BENCH_CHANNEL
#include "ipckit/mapping.hpp"
#include "ipckit/posix_shm.hpp"
#include "ipckit/ring.hpp"
#endif

namespace ipckit::bench {
namespace {

#if IPCKIT_BENCH_CHANNEL

// As the copying shm row: room for a few of the largest messages, a power of two.
std::size_t capacity_for(std::size_t size) {
    return std::bit_ceil(std::max<std::size_t>(std::size_t{256} << 10, 4 * size + 4096));
}

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
    LoanSide(const RowPlan& plan, bool creator)
        : deadline_(Deadline::after(plan.budget.warmup + plan.budget.duration + std::chrono::seconds(10))) {
        const int legs = plan.mode == Mode::latency ? 2 : 1;
        for (int direction = 0; direction < legs; ++direction) {
            Region& region = regions_[direction];
            if (creator) {
                const std::size_t capacity = capacity_for(plan.size);
                region.shm.emplace(
                    PosixShm::create(region_name(plan, direction), Ring::region_size(capacity)));
                region.mapping.emplace(region.shm->map(Access::read_write));
                Ring::format(region.mapping->bytes(), RingOptions{capacity});
            } else {
                region.shm.emplace(PosixShm::open(region_name(plan, direction), Access::read_write));
                region.mapping.emplace(region.shm->map(Access::read_write));
            }
        }
        // A sends on ping and receives on pong; B the other way round. Throughput: B sends.
        const bool sends_on_ping = creator == (plan.mode == Mode::latency);
        if (plan.mode == Mode::latency) {
            producer_.emplace(
                RingProducer::attach(regions_[sends_on_ping ? 0 : 1].mapping->bytes(), WaitMode::block));
            consumer_.emplace(
                RingConsumer::attach(regions_[sends_on_ping ? 1 : 0].mapping->bytes(), WaitMode::block));
        } else if (creator) {
            consumer_.emplace(RingConsumer::attach(regions_[0].mapping->bytes(), WaitMode::block));
        } else {
            producer_.emplace(RingProducer::attach(regions_[0].mapping->bytes(), WaitMode::block));
        }
    }

    void send(std::span<const std::byte> message) override {
        const Loan loan = producer_->loan(message.size(), deadline_);
        check(loan.status, "loan");
        // The message is written where it will be read.
        std::memcpy(loan.buffer.data(), message.data(), message.size());
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
    // Reads every byte of the record in place (folded into one word, so the reads are real)
    // and releases it.
    void take(const RecordView& view, std::span<std::byte> buffer) {
        check(view.status, "read");
        std::uint64_t fold = 0;
        std::size_t i = 0;
        for (; i + sizeof fold <= view.message.size(); i += sizeof fold) {
            std::uint64_t word;
            std::memcpy(&word, view.message.data() + i, sizeof word);
            fold ^= word;
        }
        for (; i < view.message.size(); ++i)
            fold ^= std::to_integer<std::uint64_t>(view.message[i]);
        if (!buffer.empty()) buffer[0] = static_cast<std::byte>(fold);
        consumer_->release();
    }
    static void check(Status status, const char* what) {
        if (status == Status::ok) return;
        if (status == Status::closed) throw PeerGone(std::string("shm-loan: peer closed during ") + what);
        check_abort(what);
        throw PeerGone(std::string("shm-loan: ") + what + " " + std::string(to_string(status)));
    }

    Deadline deadline_;
    Region regions_[2];  // declared before the ring ends: outlives them
    std::optional<RingProducer> producer_;
    std::optional<RingConsumer> consumer_;
};

class LoanContender final : public Contender {
public:
    LoanContender() : Contender("shm-loan", Category::channel, "block") {}
    std::optional<std::string> cannot_carry(std::size_t size) const override {
        if (size > Ring::max_message_size(capacity_for(size)))
            return std::string("over the ring's largest message");
        return {};
    }
    std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch&) override {
        return std::make_unique<LoanSide>(plan, true);
    }
    std::unique_ptr<Side> join(const RowPlan& plan, const std::vector<std::string>&) override {
        return std::make_unique<LoanSide>(plan, false);
    }
};

#else

class LoanNotBuilt final : public Contender {
public:
    LoanNotBuilt() : Contender("shm-loan", Category::channel, "block") {}
    std::optional<std::string> absent() const override {
        return std::string("not built: the ring (src/rings/ring.cpp) is not in this build");
    }
    std::unique_ptr<Side> prepare(const RowPlan&, PeerLaunch&) override {
        throw std::logic_error("not built");
    }
    std::unique_ptr<Side> join(const RowPlan&, const std::vector<std::string>&) override {
        throw std::logic_error("not built");
    }
};

#endif

}  // namespace

void add_loan(ContenderList& list) {
#if IPCKIT_BENCH_CHANNEL
    list.push_back(std::make_unique<LoanContender>());
#else
    list.push_back(std::make_unique<LoanNotBuilt>());
#endif
}

}  // namespace ipckit::bench
