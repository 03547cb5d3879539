// `ipckit bench` baselines: raw-spin (the machine's floor for a round trip), raw-memcpy (one
// core's copy bandwidth), and the two bare rings that are the ceilings of a channel between two
// processes: raw-copy-ring (copy in, copy out) and raw-loan-ring (write and read in place).
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "bench_harness.hpp"
#include "bench_touch.hpp"
#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"

namespace ipckit::bench {
namespace {

// Spins until `line` holds a value `done` accepts. Bounded: every few thousand turns it looks
// at the stop request and the abort flags and yields, because on a two-core machine a spinner
// can hold the very core its peer needs.
// `yield_mask`: the bare rings yield sooner (every 256 turns, a few microseconds) than raw-spin,
// because their waits last as long as a copy of a whole message: on a machine with more runnable
// processes than CPUs a spinner holding a core for that long starves the very peer it waits for.
template <typename Done>
std::uint64_t spin_until(const std::atomic<std::uint64_t>& line, const Control& control, Done done,
                         std::uint32_t yield_mask = 4095) {
    for (std::uint32_t turns = 0;; ++turns) {
        const std::uint64_t value = line.load(std::memory_order_acquire);
        if (done(value)) return value;
        cpu_relax();
        if ((turns & yield_mask) == yield_mask) {
            if (control.stop.load(std::memory_order_relaxed) != 0) throw PeerGone("stopped");
            check_abort("spinning on the shared line");
            ::sched_yield();
        }
    }
}

class NoLink final : public Side {
public:
    void send(std::span<const std::byte>) override {}
    void recv(std::span<std::byte>) override {}
    bool try_recv(std::span<std::byte>) override { return false; }
};

// Two processes pass one cache line back and forth in shared memory (the control block's
// memfd): A writes an odd number, B answers with the next even one. No kernel, no copy.
class RawSpin final : public Contender {
public:
    RawSpin() : Contender("raw-spin", Category::baseline, "spin") {}
    bool measures(Mode mode) const override { return mode == Mode::latency; }
    std::optional<std::size_t> only_size() const override { return 64; }
    std::unique_ptr<Side> prepare(const RowPlan&, PeerLaunch&) override { return std::make_unique<NoLink>(); }
    std::unique_ptr<Side> join(const RowPlan&, const std::vector<std::string>&) override {
        return std::make_unique<NoLink>();
    }
    bool custom_loops() const override { return true; }

    Measurement run_a(Side&, const RowPlan& plan, Control& control) override {
        std::uint64_t sequence = 1;
        auto round_trip = [&] {
            control.spin.store(sequence, std::memory_order_release);
            const std::uint64_t answer = sequence + 1;
            spin_until(control.spin, control, [answer](std::uint64_t v) { return v == answer; });
            sequence += 2;
        };
        const auto warm_end = Clock::now() + plan.budget.warmup;
        while (Clock::now() < warm_end)
            round_trip();
        return time_round_trips(plan.budget, round_trip);
    }

    void run_b(Side&, const RowPlan&, Control& control) override {
        std::uint64_t last = 0;
        for (;;) {
            last = spin_until(control.spin, control,
                              [last](std::uint64_t v) { return (v & 1) != 0 && v != last; });
            control.spin.store(last + 1, std::memory_order_release);
        }
    }
};

// One core copies a buffer of the row's size into another, the same two buffers over and over.
class RawMemcpy final : public Contender {
public:
    RawMemcpy() : Contender("raw-memcpy", Category::baseline, "none") {}
    bool measures(Mode mode) const override { return mode == Mode::throughput; }
    bool needs_peer() const override { return false; }
    std::unique_ptr<Side> prepare(const RowPlan&, PeerLaunch&) override { return std::make_unique<NoLink>(); }
    std::unique_ptr<Side> join(const RowPlan&, const std::vector<std::string>&) override {
        return std::make_unique<NoLink>();
    }

    Measurement measure_alone(const RowPlan& plan) override {
        std::vector<std::byte> source(plan.size), target(plan.size);
        fill_pattern(source);
        fill_pattern(target);
        auto copy = [&] {
            std::memcpy(target.data(), source.data(), plan.size);
            // Keeps the compiler from proving the copy useless and dropping it.
            asm volatile("" : : "r"(target.data()) : "memory");
        };
        const auto warm_end = Clock::now() + plan.budget.warmup;
        while (Clock::now() < warm_end)
            copy();
        return count_in_batches(plan.budget, plan.size, 64, copy, [] { check_abort("copying"); });
    }
};

// The bare ring: what a good single-producer single-consumer ring does, so that no channel row
// can honestly be above it. Two cursors on lines of their own; each side keeps a copy of the
// other's cursor and reads the shared one only when its copy says it must wait (the ring looks
// full, or empty); each side publishes its own cursor once per batch of slots, not once per slot,
// and before it waits. Fixed slots of the row's size, rounded to whole lines, in a memfd both
// processes map; no record headers, no peer watch, no wake-ups: both sides spin (bounded, like
// raw-spin). Its size in bytes is the channel ring's (ring_bytes_for), so it spans the same
// caches as the `shm` row it is the ceiling of.
struct RawRingHeader {
    alignas(128) std::atomic<std::uint64_t> head{0};  // slots published by the producer
    alignas(128) std::atomic<std::uint64_t> tail{0};  // slots released by the consumer
};
constexpr std::size_t kSlotsOffset = 4096;
// Slots per cursor publication: 16 slots of 64 B publish 1 KiB at a time. A ring of few slots
// (large messages) publishes every quarter of itself, at least every slot.
constexpr std::uint64_t kBatch = 16;

class RawRingSide final : public Side {
public:
    RawRingSide(Fd fd, std::size_t size, bool create) : fd_(std::move(fd)) {
        stride_ = (size + 63) / 64 * 64;
        slots_ = std::max<std::size_t>(2, ring_bytes_for(size) / stride_);
        mask_ = std::has_single_bit(slots_) ? slots_ - 1 : 0;
        batch_ = std::clamp<std::uint64_t>(slots_ / 4, 1, kBatch);
        bytes_ = kSlotsOffset + slots_ * stride_;
        if (create && ::ftruncate(fd_.get(), static_cast<off_t>(bytes_)) != 0)
            throw_errno("ftruncate", "raw ring");
        // Reserved at creation and mapped populated, as the channel's ring is (posix_fallocate,
        // MAP_POPULATE), so neither side allocates or faults in pages while it is measured.
        if (create) {
            if (const int err = ::posix_fallocate(fd_.get(), 0, static_cast<off_t>(bytes_)); err != 0)
                throw_errno("posix_fallocate", "raw ring", err);
        }
        void* memory =
            ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_.get(), 0);
        if (memory == MAP_FAILED) throw_errno("mmap", "raw ring");
        base_ = static_cast<std::byte*>(memory);
        if (create) new (base_) RawRingHeader();
    }
    RawRingSide(const RawRingSide&) = delete;
    RawRingSide& operator=(const RawRingSide&) = delete;
    ~RawRingSide() override { ::munmap(base_, bytes_); }
    void send(std::span<const std::byte>) override {}
    void recv(std::span<std::byte>) override {}
    bool try_recv(std::span<std::byte>) override { return false; }

    [[nodiscard]] RawRingHeader& header() const { return *reinterpret_cast<RawRingHeader*>(base_); }
    [[nodiscard]] std::span<std::byte> slot(std::uint64_t n, std::size_t size) const {
        const std::uint64_t index = mask_ != 0 ? n & mask_ : n % slots_;
        return {base_ + kSlotsOffset + index * stride_, size};
    }
    [[nodiscard]] std::uint64_t slots() const { return slots_; }
    [[nodiscard]] std::uint64_t batch() const { return batch_; }
    [[nodiscard]] int fd() const { return fd_.get(); }

private:
    Fd fd_;
    std::byte* base_ = nullptr;
    std::size_t bytes_ = 0, stride_ = 0;
    std::uint64_t slots_ = 0, mask_ = 0, batch_ = 1;
};

// One side's own cursor: advanced privately, stored to the shared line once per batch.
class Cursor {
public:
    Cursor(std::atomic<std::uint64_t>& shared, std::uint64_t batch) : shared_(shared), batch_(batch) {}
    [[nodiscard]] std::uint64_t value() const { return value_; }
    void advance() {
        if (++value_ - published_ >= batch_) publish();
    }
    // Before waiting for the other side, which may be waiting for this cursor.
    void publish() {
        if (published_ == value_) return;
        shared_.store(value_, std::memory_order_release);
        published_ = value_;
    }

private:
    std::atomic<std::uint64_t>& shared_;
    std::uint64_t batch_, value_ = 0, published_ = 0;
};

// raw-copy-ring and raw-loan-ring: the same ring, moved through by copying or by touching in
// place. Throughput only: B produces flat out, A consumes and counts.
class RawRing final : public Contender {
public:
    explicit RawRing(bool loan)
        : Contender(loan ? "raw-loan-ring" : "raw-copy-ring", Category::baseline, "spin"), loan_(loan) {}
    bool measures(Mode mode) const override { return mode == Mode::throughput; }
    std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch& launch) override {
        Fd fd(::memfd_create("ipckit-bench-raw-ring", MFD_CLOEXEC));
        if (!fd) throw_errno("memfd_create", "raw ring");
        auto side = std::make_unique<RawRingSide>(std::move(fd), plan.size, true);
        launch.args = {std::to_string(side->fd())};
        launch.inherit_fds.push_back(side->fd());
        return side;
    }
    std::unique_ptr<Side> join(const RowPlan& plan, const std::vector<std::string>& args) override {
        if (args.empty()) throw std::runtime_error("raw ring: no descriptor");
        const int fd = std::stoi(args[0]);
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        return std::make_unique<RawRingSide>(Fd(fd), plan.size, false);
    }
    bool custom_loops() const override { return true; }

    // Side A consumes: copies each slot out into its own buffer, or reads it in place.
    Measurement run_a(Side& side, const RowPlan& plan, Control& control) override {
        auto& ring = static_cast<RawRingSide&>(side);
        auto& header = ring.header();
        std::vector<std::byte> out(plan.size);
        Cursor tail(header.tail, ring.batch());
        std::uint64_t head = 0, checksum = 0;  // head: the producer's cursor as last read
        auto take = [&] {
            if (tail.value() == head) {
                tail.publish();
                head = spin_until(
                    header.head, control, [t = tail.value()](std::uint64_t v) { return v != t; }, 255);
            }
            const auto slot = ring.slot(tail.value(), plan.size);
            if (loan_) {
                checksum ^= touch_read(slot);
            } else {
                std::memcpy(out.data(), slot.data(), plan.size);
                asm volatile("" : : "r"(out.data()) : "memory");
            }
            tail.advance();
        };
        const auto warm_end = Clock::now() + plan.budget.warmup;
        take();  // the producer has started
        for (std::size_t warmed = 1; Clock::now() < warm_end || warmed < min_warmup_messages(plan.size);
             ++warmed)
            take();
        Measurement m;
        const auto start = Clock::now();
        const auto end = start + plan.budget.duration;
        auto last = start;
        while (m.count < plan.budget.max_count && last < end) {
            const std::size_t batch = std::min<std::size_t>(32, plan.budget.max_count - m.count);
            for (std::size_t i = 0; i < batch; ++i)
                take();
            m.count += batch;
            last = Clock::now();
        }
        asm volatile("" : : "r"(checksum));
        m.seconds = std::chrono::duration<double>(last - start).count();
        m.bytes = static_cast<std::uint64_t>(m.count) * plan.size;
        control.stop.store(1, std::memory_order_release);
        return m;
    }

    // Side B produces: copies its own message into each slot, or writes the slot in place.
    void run_b(Side& side, const RowPlan& plan, Control& control) override {
        auto& ring = static_cast<RawRingSide&>(side);
        auto& header = ring.header();
        std::vector<std::byte> message(plan.size);
        fill_pattern(message);
        const std::uint64_t slots = ring.slots();
        Cursor head(header.head, ring.batch());
        std::uint64_t tail = 0;  // the consumer's cursor as last read
        while (control.stop.load(std::memory_order_relaxed) == 0) {
            if (head.value() - tail == slots) {
                head.publish();
                tail = spin_until(
                    header.tail, control,
                    [h = head.value(), slots](std::uint64_t v) { return h - v < slots; }, 255);
            }
            const auto slot = ring.slot(head.value(), plan.size);
            if (loan_)
                touch_write(slot, head.value());
            else
                std::memcpy(slot.data(), message.data(), plan.size);
            head.advance();
        }
    }

private:
    bool loan_;
};

}  // namespace

void add_baselines(ContenderList& list) {
    list.push_back(std::make_unique<RawSpin>());
    list.push_back(std::make_unique<RawMemcpy>());
    list.push_back(std::make_unique<RawRing>(false));
    list.push_back(std::make_unique<RawRing>(true));
}

}  // namespace ipckit::bench
