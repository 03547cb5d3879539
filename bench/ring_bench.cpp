// Micro-benchmarks of the shared-memory ring, with the baselines DESIGN.md measures it against.
//
//   BM_RingSendRecv/N      try_send + try_recv of N bytes in one thread: the cost of one message
//   BM_RingLoanRead/N      loan + commit + read + release in one thread: the zero-copy path's cost
//   BM_RawPingPong         two processes flipping one cache line: this machine's latency floor
//   BM_RingPingPong/M      two processes, a 64-byte message there and back through two rings
//                          (M = 0 spin, 2 adaptive); counters p50_ns/p99_ns are per round trip
//   BM_Memcpy/N            one core copying N bytes between the same two buffers (raw-memcpy)
//   BM_RingStream/N        two processes, a producer sending N-byte messages to a consumer
//   BM_RingStreamLoan/N    the same with loan/commit and read/release: the producer writes every
//                          byte in place and the consumer reads every byte in place, through the
//                          touch routine `ipckit bench`'s loan rows and raw-loan-ring use
//                          (tools/bench/bench_touch.hpp)
//
// Where a 64-byte message's nanoseconds go (docs/ring.md, "Where a small message's time goes"):
//   BM_RingSendRecvSpin/N  BM_RingSendRecv with both ends in WaitMode::spin (no sleeper fences)
//   BM_ChannelSendRecv/N   try_send + try_recv of N bytes in one thread through ipckit::Sender and
//                          Receiver on shm:/NAME?wait=spin: the channel layer over the bare ring
//   BM_SlotSendRecv/N      the same through a bare ring of 64-byte-aligned slots with cached
//                          cursors (raw-copy-ring's algorithm): the least a copying ring can cost
//   BM_SlotStream/B        two processes, 64-byte messages through that bare ring, each side
//                          publishing its cursor every B messages (1: a cursor line crosses
//                          between the cores with every message; 16: raw-copy-ring's batch)
//   BM_ChannelStream/N     two processes, N-byte messages through Sender/Receiver (shm?wait=spin)
//
// Run: build-ring/bin/ring_bench (Release build); the ratios of interest are
// RingPingPong/0 p50 ÷ RawPingPong p50 (target ≤ 1.5), RingPingPong/2 p50 ÷ RawPingPong p50 (≤ 2),
// RingStream/1048576 bytes/s ÷ Memcpy/1048576 (≥ 0.9) and RingStreamLoan ÷ RingStream (≥ 1.5).
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <x86intrin.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_touch.hpp"
#include "ipckit/channel.hpp"
#include "ipckit/ring.hpp"

namespace {

using namespace std::chrono_literals;

class SharedRegion {
public:
    explicit SharedRegion(std::size_t size) : size_(size) {
        void* p =
            ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
        base_ = static_cast<std::byte*>(p);
    }
    SharedRegion(const SharedRegion&) = delete;
    SharedRegion& operator=(const SharedRegion&) = delete;
    ~SharedRegion() { ::munmap(base_, size_); }
    [[nodiscard]] std::span<std::byte> span() const { return {base_, size_}; }
    [[nodiscard]] std::byte* data() const { return base_; }

private:
    std::byte* base_;
    std::size_t size_;
};

// A forked helper process, killed and reaped if it is still there at the end.
class Peer {
public:
    template <typename F>
    explicit Peer(F&& body) {
        pid_ = ::fork();
        if (pid_ == 0) {
            int code = 1;
            try {
                code = body();
            } catch (...) {
            }
            ::_exit(code);
        }
    }
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;
    ~Peer() {
        if (pid_ <= 0) return;
        for (int i = 0; i < 2000; ++i) {  // up to 2 s for a clean exit
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
            std::this_thread::sleep_for(1ms);
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }

private:
    pid_t pid_ = -1;
};

// Nanoseconds per TSC tick, measured once: rdtsc is cheaper than the clock and timing each round
// trip with it adds less to what is measured.
double ns_per_tick() {
    static const double value = [] {
        const auto t0 = std::chrono::steady_clock::now();
        const auto c0 = __rdtsc();
        std::this_thread::sleep_for(50ms);
        const auto c1 = __rdtsc();
        const auto t1 = std::chrono::steady_clock::now();
        return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()) /
               static_cast<double>(c1 - c0);
    }();
    return value;
}

void report_percentiles(benchmark::State& state, std::vector<std::uint64_t>& ticks) {
    if (ticks.empty()) return;
    std::sort(ticks.begin(), ticks.end());
    const double k = ns_per_tick();
    auto at = [&](double q) {
        return static_cast<double>(
                   ticks[static_cast<std::size_t>(q * static_cast<double>(ticks.size() - 1))]) *
               k;
    };
    state.counters["p50_ns"] = at(0.50);
    state.counters["p99_ns"] = at(0.99);
    state.counters["p999_ns"] = at(0.999);
}

void cpu_relax() {
    _mm_pause();
}

// ---- one thread: the cost of the calls themselves ----

void send_recv(benchmark::State& state, ipckit::WaitMode mode) {
    const auto size = static_cast<std::size_t>(state.range(0));
    SharedRegion region(ipckit::Ring::region_size(8 << 20));
    ipckit::Ring::format(region.span());
    auto tx = ipckit::RingProducer::attach(region.span(), mode);
    auto rx = ipckit::RingConsumer::attach(region.span(), mode);
    std::vector<std::byte> in(size, std::byte{1}), out(size);
    for (auto _ : state) {
        if (!tx.try_send(in).ok()) state.SkipWithError("send");
        if (!rx.try_recv(std::span(out)).ok()) state.SkipWithError("recv");
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
void BM_RingSendRecv(benchmark::State& state) {
    send_recv(state, ipckit::WaitMode::adaptive);
}
// Both ends spin: each side's sleeper handshake fence is a compiler barrier only.
void BM_RingSendRecvSpin(benchmark::State& state) {
    send_recv(state, ipckit::WaitMode::spin);
}
BENCHMARK(BM_RingSendRecv)->Arg(8)->Arg(64)->Arg(1024)->Arg(64 << 10)->Arg(1 << 20);
BENCHMARK(BM_RingSendRecvSpin)->Arg(64);

void BM_RingLoanRead(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    SharedRegion region(ipckit::Ring::region_size(8 << 20));
    ipckit::Ring::format(region.span());
    auto tx = ipckit::RingProducer::attach(region.span());
    auto rx = ipckit::RingConsumer::attach(region.span());
    for (auto _ : state) {
        const ipckit::Loan loan = tx.loan(size, ipckit::Deadline::immediate());
        if (!loan.ok()) state.SkipWithError("loan");
        loan.buffer[0] = std::byte{1};
        tx.commit(size);
        const ipckit::RecordView view = rx.read(ipckit::Deadline::immediate());
        benchmark::DoNotOptimize(view.message[0]);
        rx.release();
    }
}
BENCHMARK(BM_RingLoanRead)->Arg(8)->Arg(64)->Arg(1 << 20);

void BM_Memcpy(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    std::vector<std::byte> from(size, std::byte{1}), to(size);
    for (auto _ : state) {
        std::memcpy(to.data(), from.data(), size);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK(BM_Memcpy)->Arg(64)->Arg(1 << 20);

// ---- two processes: latency ----

void BM_RawPingPong(benchmark::State& state) {
    SharedRegion region(4096);
    auto* line = ::new (region.data()) std::atomic<std::uint64_t>(0);
    constexpr std::uint64_t kStop = ~std::uint64_t{0};
    Peer echo([line] {
        std::uint64_t seen = 0;
        for (unsigned spins = 0;; ++spins) {
            const std::uint64_t v = line->load(std::memory_order_acquire);
            if (v == kStop) return 0;
            if (v != seen && v % 2 == 1) {
                seen = v + 1;
                line->store(seen, std::memory_order_release);
                spins = 0;
            } else {
                cpu_relax();
                if (spins > (1u << 20)) ::sched_yield();  // bounded: a stalled parent gets the core back
            }
        }
    });
    std::vector<std::uint64_t> ticks;
    ticks.reserve(1 << 20);
    std::uint64_t v = 0;
    for (auto _ : state) {
        const auto t0 = __rdtsc();
        line->store(++v, std::memory_order_release);
        ++v;
        while (line->load(std::memory_order_acquire) != v)
            cpu_relax();
        ticks.push_back(__rdtsc() - t0);
    }
    line->store(kStop, std::memory_order_release);
    report_percentiles(state, ticks);
}
BENCHMARK(BM_RawPingPong)->Iterations(200'000);

void BM_RingPingPong(benchmark::State& state) {
    const auto mode = static_cast<ipckit::WaitMode>(state.range(0));
    constexpr std::size_t kSize = 64;
    SharedRegion there(ipckit::Ring::region_size(1 << 16)), back(ipckit::Ring::region_size(1 << 16));
    ipckit::Ring::format(there.span());
    ipckit::Ring::format(back.span());
    Peer echo([&] {
        auto rx = ipckit::RingConsumer::attach(there.span(), mode);
        auto tx = ipckit::RingProducer::attach(back.span(), mode);
        std::vector<std::byte> m(kSize);
        for (;;) {
            const ipckit::IoResult r = rx.recv(std::span(m), ipckit::Deadline::after(10s));
            if (!r.ok()) return 0;
            if (!tx.send(std::span(m).first(r.bytes), ipckit::Deadline::after(10s)).ok()) return 1;
        }
    });
    auto tx = ipckit::RingProducer::attach(there.span(), mode);
    auto rx = ipckit::RingConsumer::attach(back.span(), mode);
    std::vector<std::byte> out(kSize, std::byte{7}), in(kSize);
    std::vector<std::uint64_t> ticks;
    ticks.reserve(1 << 20);
    for (auto _ : state) {
        const auto t0 = __rdtsc();
        if (!tx.send(out).ok() || !rx.recv(std::span(in)).ok()) {
            state.SkipWithError("round trip failed");
            break;
        }
        ticks.push_back(__rdtsc() - t0);
    }
    tx.close();
    report_percentiles(state, ticks);
}
BENCHMARK(BM_RingPingPong)
    ->Arg(static_cast<int>(ipckit::WaitMode::spin))
    ->Arg(static_cast<int>(ipckit::WaitMode::adaptive))
    ->Iterations(200'000);

// ---- two processes: throughput ----

void stream(benchmark::State& state, bool zero_copy) {
    const auto size = static_cast<std::size_t>(state.range(0));
    // Room for several messages in flight, so neither side waits for the other's every step.
    const std::size_t capacity = std::max<std::size_t>(std::bit_ceil(size * 8), 1 << 16);
    SharedRegion region(ipckit::Ring::region_size(capacity));
    ipckit::Ring::format(region.span());
    Peer consumer([&] {
        auto rx = ipckit::RingConsumer::attach(region.span(), ipckit::WaitMode::adaptive);
        std::vector<std::byte> m(size);
        for (;;) {
            if (zero_copy) {
                const ipckit::RecordView view = rx.read(ipckit::Deadline::after(10s));
                if (!view.ok()) return 0;
                benchmark::DoNotOptimize(ipckit::bench::touch_read(view.message));
                rx.release();
            } else if (!rx.recv(std::span(m), ipckit::Deadline::after(10s)).ok()) {
                return 0;
            }
        }
    });
    auto tx = ipckit::RingProducer::attach(region.span(), ipckit::WaitMode::adaptive);
    std::vector<std::byte> source(size, std::byte{3});
    std::uint64_t sequence = 0;
    for (auto _ : state) {
        if (zero_copy) {
            // The producer writes the message where the consumer will read it: one copy in all.
            const ipckit::Loan loan = tx.loan(size);
            if (!loan.ok()) {
                state.SkipWithError("loan failed");
                break;
            }
            ipckit::bench::touch_write(loan.buffer, sequence++);
            tx.commit(size);
        } else if (!tx.send(source).ok()) {
            state.SkipWithError("send failed");
            break;
        }
    }
    tx.close();
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_RingStream(benchmark::State& state) {
    stream(state, false);
}
void BM_RingStreamLoan(benchmark::State& state) {
    stream(state, true);
}
BENCHMARK(BM_RingStream)->Arg(64)->Arg(1 << 20)->Arg(16 << 20)->UseRealTime();
BENCHMARK(BM_RingStreamLoan)->Arg(64)->Arg(1 << 20)->Arg(16 << 20)->UseRealTime();

// ---- where a small message's time goes ----

// A unique shm address for one benchmark run.
std::string channel_address(const char* what) {
    return "shm:/ipckit-ring-bench-" + std::to_string(::getpid()) + "-" + what + "?wait=spin";
}

void BM_ChannelSendRecv(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    const std::string address = channel_address("send-recv");
    auto rx = ipckit::Receiver::create(address);
    auto tx = ipckit::Sender::open(address, ipckit::Deadline::after(10s));
    std::vector<std::byte> in(size, std::byte{1}), out(size);
    for (auto _ : state) {
        if (!tx.try_send(in).ok()) state.SkipWithError("send");
        if (!rx.recv(std::span(out), ipckit::Deadline::immediate()).ok()) state.SkipWithError("recv");
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK(BM_ChannelSendRecv)->Arg(8)->Arg(64)->Arg(1024);

// The bare ring of raw-copy-ring (tools/bench/bench_baselines.cpp): two cursors on lines of their
// own, slots rounded to whole lines, each side caching the other's cursor and publishing its own
// every `batch` slots and before it waits.
struct SlotRing {
    static constexpr std::size_t kSlots = 1 << 16;
    alignas(128) std::atomic<std::uint64_t> head{0};
    alignas(128) std::atomic<std::uint64_t> tail{0};
    alignas(128) std::byte slots[kSlots][64];
};

// One end of the slot ring: the producer (`Producer`) copies into the slot at its cursor, the
// consumer out of it. Each keeps the other's cursor as last read and reads the shared one only
// when the ring looks full (producer) or empty (consumer).
template <bool Producer>
class SlotEnd {
public:
    SlotEnd(SlotRing& ring, std::uint64_t batch)
        : ring_(ring),
          mine_(Producer ? ring.head : ring.tail),
          theirs_(Producer ? ring.tail : ring.head),
          batch_(batch) {}
    // Producer: copies `message` in; consumer: copies the next message into it. False: must wait.
    bool move(std::span<std::byte> message) {
        const auto blocked = [&] { return Producer ? own_ - other_ == SlotRing::kSlots : own_ == other_; };
        if (blocked()) {
            publish();
            other_ = theirs_.load(std::memory_order_acquire);
            if (blocked()) return false;
        }
        std::byte* slot = ring_.slots[own_ & (SlotRing::kSlots - 1)];
        if (Producer)
            std::memcpy(slot, message.data(), message.size());
        else
            std::memcpy(message.data(), slot, message.size());
        if (++own_ - published_ >= batch_) publish();
        return true;
    }
    void publish() {
        mine_.store(own_, std::memory_order_release);
        published_ = own_;
    }

private:
    SlotRing& ring_;
    std::atomic<std::uint64_t>& mine_;
    const std::atomic<std::uint64_t>& theirs_;
    std::uint64_t batch_, own_ = 0, other_ = 0, published_ = 0;
};
using SlotProducer = SlotEnd<true>;
using SlotConsumer = SlotEnd<false>;

void BM_SlotSendRecv(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    SharedRegion region(sizeof(SlotRing));
    auto* ring = new (region.data()) SlotRing();
    SlotProducer tx(*ring, 1);
    SlotConsumer rx(*ring, 1);
    std::vector<std::byte> in(size, std::byte{1}), out(size);
    for (auto _ : state) {
        if (!tx.move(in)) state.SkipWithError("send");
        if (!rx.move(out)) state.SkipWithError("recv");
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK(BM_SlotSendRecv)->Arg(8)->Arg(64);

void BM_SlotStream(benchmark::State& state) {
    const auto batch = static_cast<std::uint64_t>(state.range(0));
    constexpr std::size_t kSize = 64;
    SharedRegion region(sizeof(SlotRing) + 4096);
    auto* ring = new (region.data()) SlotRing();
    auto* stop = new (region.data() + sizeof(SlotRing)) std::atomic<int>(0);
    Peer consumer([&] {
        SlotConsumer rx(*ring, batch);
        std::vector<std::byte> m(kSize);
        for (std::uint32_t idle = 0; stop->load(std::memory_order_relaxed) == 0;) {
            if (rx.move(m)) continue;
            cpu_relax();
            if ((++idle & 255) == 0) ::sched_yield();  // a small machine: let the producer run
        }
        return 0;
    });
    SlotProducer tx(*ring, batch);
    std::vector<std::byte> source(kSize, std::byte{3});
    std::uint32_t idle = 0;
    for (auto _ : state) {
        while (!tx.move(source)) {
            cpu_relax();
            if ((++idle & 255) == 0) ::sched_yield();
        }
    }
    tx.publish();
    stop->store(1);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kSize));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_SlotStream)->Arg(1)->Arg(16)->UseRealTime();

void BM_ChannelStream(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    const std::string address = channel_address("stream");
    std::optional<ipckit::Receiver> rx(ipckit::Receiver::create(address));
    Peer sender([&] {
        auto tx = ipckit::Sender::open(address, ipckit::Deadline::after(10s));
        std::vector<std::byte> source(size, std::byte{3});
        // One deadline for the run: a clock read per message would cost as much as the message.
        const auto deadline = ipckit::Deadline::after(600s);
        while (tx.send(source, deadline).ok()) {
        }
        return 0;
    });
    std::vector<std::byte> m(size);
    const auto deadline = ipckit::Deadline::after(600s);
    for (auto _ : state) {
        if (!rx->recv(std::span(m), deadline).ok()) {
            state.SkipWithError("recv failed");
            break;
        }
    }
    rx.reset();  // the sender sees the receiver gone and leaves
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_ChannelStream)->Arg(64)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
