// `ipckit bench` internals: contenders, the two-process row runner, and results.
//
// A row is one contender at one message size in one mode. The tool's process (side A) creates
// the kernel objects, then starts side B by executing itself again (`/proc/self/exe bench
// --peer SPEC`), so the two sides are unrelated programs exactly as in real use; a contender
// with several peers (a topic's subscribers, the senders of `shm?senders=N`) gets that many B
// processes, each told its index. A small control block in a memfd, inherited across exec,
// carries readiness (A starts the peers' loops once every one of them is ready), the stop
// request and the first failing peer's error text; raw-spin's cache line lives in it too.
//
// Latency: A sends a message and waits for every peer's echo (two one-way links), every round
// trip timed, after a warm-up: with several peers the round trip ends at the slowest echo.
// Throughput: B sends flat out (or, for a contender that says so, one peer sends and the others
// receive too), A receives and counts for a fixed time after a warm-up. Waits are blocking
// unless a contender says otherwise (its `wait`).
//
// Errors: a contender that cannot carry a size says why (`cannot_carry`); a failure while a
// row runs becomes that row's `error`, never the end of the run, and so does a peer that dies
// before the row is over. Ctrl-C stops after the current row; every peer is killed and reaped
// and every object the row created is removed.
// Thread-safety: single-threaded by design (the tool runs one row at a time).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ipckit::bench {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

enum class Mode { latency, throughput };
[[nodiscard]] std::string_view to_string(Mode mode) noexcept;

enum class Category { baseline, raw, channel, peer };
[[nodiscard]] std::string_view to_string(Category category) noexcept;

// How long each row runs.
struct Budget {
    milliseconds warmup{200};
    milliseconds duration{1000};
    std::size_t max_count = 1'000'000;  // latency samples, or messages counted, at most
};

// What both sides know about the row they run.
struct RowPlan {
    Mode mode = Mode::latency;
    std::size_t size = 64;
    Budget budget;
    std::string stem;  // unique name stem for this row's objects: "ipckit-bench-<pid>-<n>"
    std::string dir;   // the run's private directory (FIFOs, socket paths)
    int peer = 0;      // side B: this process's index among the row's peers (side A: 0)
    int peers = 1;     // how many peer processes the row has (Contender::peers)
};

// The most peer processes one row may have.
constexpr int kMaxPeers = 8;

// Shared by the processes of a row.
struct Control {
    std::atomic<std::uint32_t> peer_ready{0};  // peers that have joined
    // A saw every peer ready: the peers' loops may start. A topic's publisher must not publish
    // before every subscriber has joined, or the late ones would miss what A counts.
    std::atomic<std::uint32_t> go{0};
    std::atomic<std::uint32_t> stop{0};
    std::atomic<std::uint32_t> peer_done{0};      // peers that left their loop normally
    std::atomic<std::uint32_t> error_claimed{0};  // the first peer to fail writes peer_error
    char peer_error[1024] = {};
    // raw-spin's line, on a cache line of its own so the flags above do not share it.
    alignas(128) std::atomic<std::uint64_t> spin{0};
    alignas(128) char pad[128] = {};
};

// The peer went away (closed, died) or the row was aborted (deadline, Ctrl-C).
struct PeerGone : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Set by signal handlers; polled by every loop that may wait.
[[nodiscard]] bool row_aborted() noexcept;
[[nodiscard]] bool interrupted() noexcept;
// Throws PeerGone naming `what` when the row was aborted.
void check_abort(std::string_view what);
// A System V queue to remove from the signal handler if the row must be aborted: it wakes a
// side blocked in msgrcv/msgsnd, which nothing else can. Cleared at the end of each row.
void add_emergency_msq(int msqid) noexcept;

// One side's end of a row's link(s).
class Side {
public:
    virtual ~Side() = default;
    // Side A, once the peer process runs: finish whatever needs both sides (accept, create
    // channels whose creation waits for the other end).
    virtual void connect() {}
    // Whole message; throw PeerGone when the peer is gone.
    virtual void send(std::span<const std::byte> message) = 0;
    virtual void recv(std::span<std::byte> buffer) = 0;
    // Non-blocking receive while draining; false when nothing is there now.
    virtual bool try_recv(std::span<std::byte> buffer) = 0;
    // Buffers the loops should use for messages of `size` bytes when the contender needs room
    // around them (a System V message's type word): the raw loops then copy nothing extra.
    // Empty: the loops use their own.
    [[nodiscard]] virtual std::span<std::byte> send_buffer(std::size_t) { return {}; }
    [[nodiscard]] virtual std::span<std::byte> recv_buffer(std::size_t) { return {}; }
};

// Arguments and descriptors handed to side B.
struct PeerLaunch {
    std::vector<std::string> args;
    std::vector<int> inherit_fds;  // made inheritable in the child only
};

struct Measurement {
    std::size_t count = 0;
    std::vector<std::uint64_t> rtt_ns;  // latency: every sample, sorted by the caller
    double seconds = 0;                 // throughput: measured interval
    std::uint64_t bytes = 0;
};

class Contender {
public:
    Contender(std::string name, Category category, std::string wait = "block")
        : name_(std::move(name)), category_(category), wait_(std::move(wait)) {}
    virtual ~Contender() = default;

    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] Category category() const { return category_; }
    [[nodiscard]] const std::string& wait() const { return wait_; }
    [[nodiscard]] virtual bool measures(Mode) const { return true; }
    // Peer processes a row starts (at most kMaxPeers). In latency every peer echoes each message;
    // in throughput every peer sends, unless peer_sends says otherwise.
    [[nodiscard]] virtual int peers() const { return 1; }
    // Throughput, on side B: whether the peer `plan.peer` sends flat out. One that does not
    // receives and discards until the row ends (a topic's other subscribers).
    [[nodiscard]] virtual bool peer_sends(const RowPlan&) const { return true; }
    // The one size this contender measures, when size means nothing to it (raw-spin: a line).
    [[nodiscard]] virtual std::optional<std::size_t> only_size() const { return {}; }
    // Why this contender cannot run at `size`, when it cannot; checked before a row starts.
    [[nodiscard]] virtual std::optional<std::string> cannot_carry(std::size_t) const { return {}; }
    // Why it cannot run at all (not built in): every row of it is an error row saying so.
    [[nodiscard]] virtual std::optional<std::string> absent() const { return {}; }

    // Contenders that need no second process (raw-memcpy) measure here.
    [[nodiscard]] virtual bool needs_peer() const { return true; }
    [[nodiscard]] virtual Measurement measure_alone(const RowPlan&) { return {}; }

    // Side A, before B starts: create what B must inherit or find by name.
    [[nodiscard]] virtual std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch& launch) = 0;
    // Side B, in each peer process (plan.peer says which).
    [[nodiscard]] virtual std::unique_ptr<Side> join(const RowPlan& plan,
                                                     const std::vector<std::string>& args) = 0;

    // Contenders with their own measuring loops (raw-spin) override both; `side` is theirs.
    [[nodiscard]] virtual bool custom_loops() const { return false; }
    [[nodiscard]] virtual Measurement run_a(Side&, const RowPlan&, Control&) { return {}; }
    virtual void run_b(Side&, const RowPlan&, Control&) {}

private:
    std::string name_;
    Category category_;
    std::string wait_;
};

// A contender this build leaves out: every row of it is an error row saying why.
class NotBuilt final : public Contender {
public:
    NotBuilt(std::string name, std::string wait, std::string why, bool latency = true)
        : Contender(std::move(name), Category::channel, std::move(wait)),
          why_(std::move(why)),
          latency_(latency) {}
    [[nodiscard]] bool measures(Mode mode) const override { return mode == Mode::throughput || latency_; }
    [[nodiscard]] std::optional<std::string> absent() const override { return why_; }
    [[nodiscard]] std::unique_ptr<Side> prepare(const RowPlan&, PeerLaunch&) override {
        throw std::logic_error("not built");
    }
    [[nodiscard]] std::unique_ptr<Side> join(const RowPlan&, const std::vector<std::string>&) override {
        throw std::logic_error("not built");
    }

private:
    std::string why_;
    bool latency_;
};

using ContenderList = std::vector<std::unique_ptr<Contender>>;
// Each file adds its contenders, in the order of the table.
void add_baselines(ContenderList& list);
void add_raw_loops(ContenderList& list);
void add_channels(ContenderList& list);
void add_loan(ContenderList& list);      // shm-loan: the ring's zero-copy path
void add_services(ContenderList& list);  // service: a call's round trip (bench_service.cpp)
void add_peers(ContenderList& list);
// The iceoryx peer (bench_iceoryx.cpp), or null when it was not built in. The contenders it makes
// while one is alive share one RouDi (the usual row and the polling one).
[[nodiscard]] std::unique_ptr<Contender> make_iceoryx();
[[nodiscard]] ContenderList all_contenders();

// One pair of interleaved slices (bench_pairs.hpp): a slice of a row between two slices of its
// baseline. Figures are p50 ns (latency) or bytes/s (throughput).
struct Pair {
    double before = 0;        // the baseline slice before the row's
    double row = 0;           // the row's slice
    double after = 0;         // the baseline slice after it
    bool steady = true;       // before and after within the margin
    bool remeasured = false;  // the first attempt's baselines disagreed
    [[nodiscard]] double ratio() const { return row / ((before + after) / 2); }
};

// The median of a row's pair ratios and their spread.
struct Spread {
    double median = 0, q1 = 0, q3 = 0, min = 0, max = 0;
    std::size_t steady = 0;  // pairs the figures come from
    std::size_t total = 0;   // pairs measured
    // Fewer than half of the pairs were steady: the figures come from every pair and say little.
    [[nodiscard]] bool unsteady() const { return steady * 2 < total; }
};
// The pairs of one row against one baseline.
struct PairedRatio {
    std::string row, base;
    Mode mode = Mode::latency;
    std::size_t size = 0, base_size = 0;
    std::vector<Pair> pairs;
};

// A finished row.
struct Result {
    std::string transport;
    std::string wait;
    Category category = Category::channel;
    Mode mode = Mode::latency;
    std::size_t size = 0;
    std::size_t count = 0;
    std::uint64_t p50 = 0, p99 = 0, p999 = 0, max = 0;  // latency, ns
    double msgs_per_s = 0, bytes_per_s = 0;             // throughput
    std::optional<double> ratio;                        // the median of the pairs' ratios
    std::string ratio_to;                               // the baseline the ratio divides by
    std::optional<Spread> spread;                       // of the pairs' ratios
    std::vector<Pair> pairs;
    std::size_t slices = 0;  // slices the row's figures come from
    std::string error;       // empty when the row ran
    [[nodiscard]] bool ok() const { return error.empty(); }
};

struct RunOptions {
    Budget budget;
    bool pin = false;
    std::vector<int> cpus;  // A's and B's CPU when pinned (a row's several peers share B's)
    std::string dir;        // private directory for named objects
};

// Sets up signal handling for the run (SIGINT, SIGCHLD, SIGALRM ticks); restores on destruction.
class SignalScope {
public:
    SignalScope();
    SignalScope(const SignalScope&) = delete;
    SignalScope& operator=(const SignalScope&) = delete;
    ~SignalScope();
};

// Runs one row to completion (or to its error).
[[nodiscard]] Result run_row(Contender& contender, Mode mode, std::size_t size, const RunOptions& options,
                             std::size_t row_number);

// Side B's entry point: `ipckit bench --peer SPEC`. Returns the exit status.
[[nodiscard]] int run_peer(const std::string& spec);

// Nearest-rank percentile of sorted samples, q in (0, 1].
[[nodiscard]] std::uint64_t percentile(const std::vector<std::uint64_t>& sorted, double q);

// Pins the calling process to `cpu`; throws ipckit::Error.
void pin_to_cpu(int cpu);

// Helpers for contenders.
// One turn of a spin loop: tells the CPU the loop waits.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}
[[nodiscard]] std::int64_t now_ns() noexcept;
// Bytes of ring for messages of `size`: the channel's default capacity, 4 MiB, while a message
// fits it (the `shm` rows then use the default address), else the power of two that holds two of
// them. The channel rows, the loan rows and the bare rings all use it.
[[nodiscard]] std::size_t ring_bytes_for(std::size_t size) noexcept;
// Messages a row's warm-up moves at least, whatever its time budget: a lap of a ring of
// ring_bytes_for(size) once messages are large (64 KiB and up), so no page of the ring is faulted
// in while the clock runs; 0 below that, where the time budget covers many laps.
[[nodiscard]] std::size_t min_warmup_messages(std::size_t size) noexcept;
// Fills a message buffer with a pattern (so no page is left untouched or shared-zero).
void fill_pattern(std::span<std::byte> buffer) noexcept;
// A latency row's measured part, after its warm-up: times `round_trip` until the budget's
// duration or sample count is spent; every sample in ns, unsorted (the caller sorts).
template <typename RoundTrip>
[[nodiscard]] Measurement time_round_trips(const Budget& budget, RoundTrip&& round_trip) {
    Measurement m;
    m.rtt_ns.reserve(std::min<std::size_t>(budget.max_count, 1'000'000));
    const std::int64_t end = now_ns() + std::chrono::nanoseconds(budget.duration).count();
    while (m.rtt_ns.size() < budget.max_count) {
        const std::int64_t start = now_ns();
        round_trip();
        const std::int64_t stop = now_ns();
        m.rtt_ns.push_back(static_cast<std::uint64_t>(stop - start));
        if (stop >= end) break;
    }
    m.count = m.rtt_ns.size();
    return m;
}
// A throughput row's measured part, after its warm-up: runs `one` (one message) in batches of
// `batch`, calling `after_batch` and reading the clock once a batch, until the budget's duration
// or count is spent; the count, the interval and the bytes of messages of `size`.
template <typename One, typename AfterBatch>
[[nodiscard]] Measurement count_in_batches(const Budget& budget, std::size_t size, std::size_t batch,
                                           One&& one, AfterBatch&& after_batch) {
    Measurement m;
    const auto start = Clock::now();
    const auto end = start + budget.duration;
    auto last = start;
    while (m.count < budget.max_count && last < end) {
        const std::size_t n = std::min<std::size_t>(batch, budget.max_count - m.count);
        for (std::size_t i = 0; i < n; ++i)
            one();
        m.count += n;
        after_batch();
        last = Clock::now();
    }
    m.seconds = std::chrono::duration<double>(last - start).count();
    m.bytes = static_cast<std::uint64_t>(m.count) * size;
    return m;
}

}  // namespace ipckit::bench
