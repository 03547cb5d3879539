// `ipckit bench` baselines: raw-spin (the machine's floor for a round trip) and raw-memcpy (one
// core's copy bandwidth, the bar for a channel that copies).
#include <sched.h>

#include <cstring>

#include "bench_harness.hpp"

namespace ipckit::bench {
namespace {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

// Spins until `line` holds a value `done` accepts. Bounded: every few thousand turns it looks
// at the stop request and the abort flags and yields, because on a two-core machine a spinner
// can hold the very core its peer needs.
template <typename Done>
std::uint64_t spin_until(const std::atomic<std::uint64_t>& line, const Control& control, Done done) {
    for (std::uint32_t turns = 0;; ++turns) {
        const std::uint64_t value = line.load(std::memory_order_acquire);
        if (done(value)) return value;
        cpu_relax();
        if ((turns & 4095) == 4095) {
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
        Measurement m;
        m.rtt_ns.reserve(std::min<std::size_t>(plan.budget.max_count, 1'000'000));
        const std::int64_t end = now_ns() + std::chrono::nanoseconds(plan.budget.duration).count();
        while (m.rtt_ns.size() < plan.budget.max_count) {
            const std::int64_t start = now_ns();
            round_trip();
            const std::int64_t stop = now_ns();
            m.rtt_ns.push_back(static_cast<std::uint64_t>(stop - start));
            if (stop >= end) break;
        }
        m.count = m.rtt_ns.size();
        return m;
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
        Measurement m;
        const auto start = Clock::now();
        const auto end = start + plan.budget.duration;
        auto last = start;
        while (m.count < plan.budget.max_count && last < end) {
            const std::size_t batch = std::min<std::size_t>(64, plan.budget.max_count - m.count);
            for (std::size_t i = 0; i < batch; ++i)
                copy();
            m.count += batch;
            check_abort("copying");
            last = Clock::now();
        }
        m.seconds = std::chrono::duration<double>(last - start).count();
        m.bytes = static_cast<std::uint64_t>(m.count) * plan.size;
        return m;
    }
};

}  // namespace

void add_baselines(ContenderList& list) {
    list.push_back(std::make_unique<RawSpin>());
    list.push_back(std::make_unique<RawMemcpy>());
}

}  // namespace ipckit::bench
