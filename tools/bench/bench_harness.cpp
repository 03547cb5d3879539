// `ipckit bench`: the two-process row runner (side A here, side B in run_peer).
#include "bench_harness.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <thread>

#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"

namespace ipckit::bench {
namespace {

// Signal state. The handlers only set flags, signal the peers and remove System V queues (raw
// system calls, safe in a handler).
volatile sig_atomic_t g_interrupted = 0;
volatile sig_atomic_t g_aborted = 0;
volatile sig_atomic_t g_child_exited = 0;  // some child exited since the row's peers started
volatile sig_atomic_t g_row_stopping = 0;
// The row's live peers by index (-1: none, or reaped, so a reused PID is never signalled).
volatile pid_t g_child_pids[kMaxPeers] = {-1, -1, -1, -1, -1, -1, -1, -1};
volatile std::int64_t g_hard_deadline_ns = 0;
constexpr int kMaxEmergencyQueues = 8;
volatile int g_emergency_msq[kMaxEmergencyQueues] = {-1, -1, -1, -1, -1, -1, -1, -1};

void abort_row_from_handler() noexcept {
    g_aborted = 1;
    // Asks the peer to stop (SIGTERM: it leaves its loop between two calls) rather than killing
    // it: killed inside a library's critical section it would leave a lock held for ever, and
    // Boost.Interprocess's queue mutex is not robust, so this side would wait on it for ever.
    // PeerProcess::finish kills a peer that does not go.
    for (int i = 0; i < kMaxPeers; ++i)
        if (const pid_t pid = g_child_pids[i]; pid > 0) ::kill(pid, SIGTERM);
    for (int i = 0; i < kMaxEmergencyQueues; ++i) {
        // msgrcv/msgsnd are never restarted and a queue's removal wakes them with EIDRM.
        if (g_emergency_msq[i] >= 0) ::msgctl(g_emergency_msq[i], IPC_RMID, nullptr);
        g_emergency_msq[i] = -1;
    }
}

void on_interrupt(int) {
    g_interrupted = 1;
}

void on_child(int) {
    g_child_exited = 1;
}

// Every tick gives a blocked system call an EINTR, so loops can look at the flags.
void on_tick(int) {
    if (g_hard_deadline_ns == 0 || g_aborted) return;
    const bool peer_died = g_child_exited && !g_row_stopping;
    if (g_interrupted || peer_died || now_ns() > g_hard_deadline_ns) abort_row_from_handler();
}

void install(int signal, void (*handler)(int), int flags, struct sigaction* old) {
    struct sigaction action = {};
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    // No SA_RESTART: a tick must interrupt a blocked read or msgrcv.
    action.sa_flags = flags;
    if (::sigaction(signal, &action, old) != 0) throw_errno("sigaction", "bench signal handler");
}

struct sigaction g_old_int, g_old_chld, g_old_alrm, g_old_pipe;

void set_tick(bool on) {
    itimerval timer = {};
    if (on) {
        timer.it_interval.tv_usec = 100'000;
        timer.it_value.tv_usec = 100'000;
    }
    ::setitimer(ITIMER_REAL, &timer, nullptr);
}

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
        const auto end = text.find(separator, start);
        parts.push_back(text.substr(start, end - start));
        if (end == std::string::npos) return parts;
        start = end + 1;
    }
}

// "peer 2 of 4": how messages name one of a row's several peers (counted from 1).
std::string peer_name(int index, int peers) {
    return "peer " + std::to_string(index + 1) + " of " + std::to_string(peers);
}

// The control block: a memfd mapped shared in both processes.
class ControlMapping {
public:
    explicit ControlMapping(Fd fd) : fd_(std::move(fd)) {
        void* memory = ::mmap(nullptr, sizeof(Control), PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
        if (memory == MAP_FAILED) throw_errno("mmap", "bench control block");
        control_ = static_cast<Control*>(memory);
    }
    static ControlMapping create() {
        Fd fd(::memfd_create("ipckit-bench-control", MFD_CLOEXEC));
        if (!fd) throw_errno("memfd_create", "bench control block");
        if (::ftruncate(fd.get(), sizeof(Control)) != 0) throw_errno("ftruncate", "bench control block");
        ControlMapping mapping(std::move(fd));
        new (mapping.control_) Control();
        return mapping;
    }
    ControlMapping(ControlMapping&& other) noexcept
        : fd_(std::move(other.fd_)), control_(std::exchange(other.control_, nullptr)) {}
    ControlMapping& operator=(ControlMapping&&) = delete;
    ~ControlMapping() {
        if (control_ != nullptr) ::munmap(control_, sizeof(Control));
    }
    [[nodiscard]] Control& operator*() const { return *control_; }
    [[nodiscard]] Control* operator->() const { return control_; }
    [[nodiscard]] int fd() const { return fd_.get(); }

private:
    Fd fd_;
    Control* control_ = nullptr;
};

// One peer process of a row, known to the signal handlers as peer `index`. Destroying it kills
// what is left of the peer and reaps it.
class PeerProcess {
public:
    PeerProcess(int index, const std::vector<std::string>& argv, const std::vector<int>& inherit)
        : index_(index) {
        std::vector<char*> args;
        for (const auto& arg : argv)
            args.push_back(const_cast<char*>(arg.c_str()));
        args.push_back(nullptr);
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) throw_errno("fork", "bench peer");
        if (pid_ == 0) {
            // The peer must not outlive the tool, whatever kills the tool.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(127);
            for (int fd : inherit)
                ::fcntl(fd, F_SETFD, 0);
            ::execv("/proc/self/exe", args.data());
            ::_exit(127);
        }
        g_child_pids[index_] = pid_;
    }
    PeerProcess(const PeerProcess&) = delete;
    PeerProcess& operator=(const PeerProcess&) = delete;
    ~PeerProcess() { finish(Clock::now()); }

    // True once the peer has exited (and been reaped).
    bool exited() {
        if (pid_ < 0) return true;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            g_child_pids[index_] = -1;
            status_ = status;
            by_itself_ = true;
            return true;
        }
        return false;
    }
    // Gives the peer until `until` to exit by itself, then kills it; always reaps.
    void finish(Clock::time_point until) {
        while (!exited() && Clock::now() < until)
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        if (pid_ < 0) return;
        g_child_pids[index_] = -1;
        ::kill(pid_, SIGKILL);
        while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }
    // It ended by itself, and not as a peer ends a row (status 0): killed, or failed.
    [[nodiscard]] bool failed_by_itself() const {
        return by_itself_ && (WIFSIGNALED(status_) || WEXITSTATUS(status_) != 0);
    }
    [[nodiscard]] std::string describe_exit(int peers) const {
        const std::string who = peers > 1 ? peer_name(index_, peers) : "peer";
        if (WIFSIGNALED(status_)) return who + " killed by signal " + std::to_string(WTERMSIG(status_));
        return who + " exited with status " + std::to_string(WEXITSTATUS(status_));
    }

private:
    int index_;
    pid_t pid_ = -1;
    int status_ = 0;
    bool by_itself_ = false;  // reaped by exited(), not killed by finish()
};

// All the peer processes of a row, started one after another.
class PeerGroup {
public:
    explicit PeerGroup(int count) { peers_.reserve(static_cast<std::size_t>(count)); }
    void start(const std::vector<std::string>& argv, const std::vector<int>& inherit) {
        peers_.push_back(std::make_unique<PeerProcess>(static_cast<int>(peers_.size()), argv, inherit));
    }
    // Some peer has exited (and been reaped).
    [[nodiscard]] bool any_exited() {
        bool any = false;
        for (auto& peer : peers_)
            any = peer->exited() || any;  // reap every one that went, not just the first
        return any;
    }
    // Some peer has ended by itself other than as a row's peer ends (killed, or failed).
    [[nodiscard]] bool any_failed() {
        (void)any_exited();
        return std::any_of(peers_.begin(), peers_.end(),
                           [](const auto& peer) { return peer->failed_by_itself(); });
    }
    // Gives every peer `grace` (together) to exit by itself, then kills what is left; reaps all.
    void finish(milliseconds grace) {
        const auto until = Clock::now() + grace;
        for (auto& peer : peers_)
            peer->finish(until);
    }
    // After finish: why the row lost its peers, naming the peer that failed first by itself (else
    // the first peer, as a one-peer row always said).
    [[nodiscard]] std::string describe_exit() const {
        const int count = static_cast<int>(peers_.size());
        for (const auto& peer : peers_)
            if (peer->failed_by_itself()) return peer->describe_exit(count);
        return peers_.empty() ? std::string("no peer") : peers_.front()->describe_exit(count);
    }

private:
    std::vector<std::unique_ptr<PeerProcess>> peers_;
};

// Arms the tick and the hard deadline for one row and disarms them however the row ends.
class RowWatch {
public:
    explicit RowWatch(std::int64_t hard_deadline_ns) {
        g_aborted = 0;
        g_row_stopping = 0;
        g_hard_deadline_ns = hard_deadline_ns;
        set_tick(true);
    }
    RowWatch(const RowWatch&) = delete;
    RowWatch& operator=(const RowWatch&) = delete;
    ~RowWatch() {
        set_tick(false);
        g_hard_deadline_ns = 0;
        for (int i = 0; i < kMaxEmergencyQueues; ++i)
            g_emergency_msq[i] = -1;
    }
};

std::string peer_error(const Control& control) {
    return std::string(control.peer_error, ::strnlen(control.peer_error, sizeof(control.peer_error)));
}

// A message buffer: the side's own when it offers one, else `storage`.
std::span<std::byte> message_buffer(std::span<std::byte> offered, std::vector<std::byte>& storage,
                                    std::size_t size) {
    if (!offered.empty()) return offered;
    storage.assign(size, std::byte{0});
    return storage;
}

// A round trip ends when every peer's echo is in: with several peers, at the slowest one.
Measurement latency_a(Side& side, const RowPlan& plan) {
    std::vector<std::byte> out_storage, in_storage;
    const auto out = message_buffer(side.send_buffer(plan.size), out_storage, plan.size);
    const auto in = message_buffer(side.recv_buffer(plan.size), in_storage, plan.size);
    fill_pattern(out);
    const auto round_trip = [&] {
        side.send(out);
        for (int echo = 0; echo < plan.peers; ++echo)
            side.recv(in);
    };
    const auto warm_end = Clock::now() + plan.budget.warmup;
    std::size_t warmed = 0;
    do {
        round_trip();
    } while (Clock::now() < warm_end || ++warmed < min_warmup_messages(plan.size));
    return time_round_trips(plan.budget, round_trip);
}

Measurement throughput_a(Side& side, const RowPlan& plan, Control& control) {
    std::vector<std::byte> in_storage;
    const auto in = message_buffer(side.recv_buffer(plan.size), in_storage, plan.size);
    side.recv(in);  // the sender has started
    const auto warm_end = Clock::now() + plan.budget.warmup;
    for (std::size_t warmed = 1; Clock::now() < warm_end || warmed < min_warmup_messages(plan.size); ++warmed)
        side.recv(in);
    // The clock is read once per batch: at 8 bytes a message costs about as much as a clock read.
    Measurement m = count_in_batches(
        plan.budget, plan.size, 32, [&] { side.recv(in); }, [] {});
    g_row_stopping = 1;
    control.stop.store(1, std::memory_order_release);
    // Drain so a sender blocked on a full queue can see the stop request and finish.
    const auto drain_end = Clock::now() + std::chrono::seconds(2);
    const auto peers = static_cast<std::uint32_t>(plan.peers);
    try {
        while (control.peer_done.load(std::memory_order_acquire) < peers && Clock::now() < drain_end) {
            if (!side.try_recv(in)) std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
    } catch (const PeerGone&) {
        // The sender finished and closed: the drain is over.
    }
    return m;
}

Measurement run_pair(Contender& contender, const RowPlan& plan, const RunOptions& options) {
    if (plan.peers < 1 || plan.peers > kMaxPeers)
        throw std::logic_error(contender.name() + ": " + std::to_string(plan.peers) + " peers (1 to " +
                               std::to_string(kMaxPeers) + ")");
    auto control = ControlMapping::create();
    PeerLaunch launch;
    auto side = contender.prepare(plan, launch);

    // Every peer gets the same specification but for its index (field 10).
    const auto spec_for = [&](int peer) {
        std::string spec = contender.name() + "|" + std::string(to_string(plan.mode)) + "|" +
                           std::to_string(plan.size) + "|" + std::to_string(control.fd()) + "|" +
                           std::to_string(options.pin && options.cpus.size() > 1 ? options.cpus[1] : -1) +
                           "|" + std::to_string(plan.budget.warmup.count()) + "|" +
                           std::to_string(plan.budget.duration.count()) + "|" +
                           std::to_string(plan.budget.max_count) + "|" + plan.stem + "|" + plan.dir + "|" +
                           std::to_string(peer) + "|" + std::to_string(plan.peers);
        for (const auto& arg : launch.args)
            spec += "|" + arg;
        return spec;
    };
    auto inherit = launch.inherit_fds;
    inherit.push_back(control.fd());

    const std::int64_t hard_deadline = now_ns() + std::chrono::nanoseconds(plan.budget.warmup).count() +
                                       std::chrono::nanoseconds(plan.budget.duration).count() +
                                       15'000'000'000LL;
    RowWatch watch(hard_deadline);
    PeerGroup peers(plan.peers);
    Measurement m;
    try {
        // From here a child that exits before the row is over is a dead peer (the tick aborts).
        g_child_exited = 0;
        for (int peer = 0; peer < plan.peers; ++peer)
            peers.start({"ipckit", "bench", "--peer", spec_for(peer)}, inherit);
        side->connect();
        const auto everyone = static_cast<std::uint32_t>(plan.peers);
        while (control->peer_ready.load(std::memory_order_acquire) < everyone) {
            if (peers.any_exited()) throw PeerGone("peer exited before it was ready");
            check_abort("waiting for the peer to start");
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        control->go.store(1, std::memory_order_release);
        if (contender.custom_loops())
            m = contender.run_a(*side, plan, *control);
        else if (plan.mode == Mode::latency)
            m = latency_a(*side, plan);
        else
            m = throughput_a(*side, plan, *control);
        // A peer that died while the others kept the row going (a topic's second subscriber, one
        // of two senders) leaves figures that are not the row's: an error, not a result. Judged by
        // how the peers exited, not by the abort flag: a custom loop's stop request (raw rings)
        // lets its peer leave, with status 0, before this side says the row is stopping.
        g_row_stopping = 1;
        if (peers.any_failed()) throw PeerGone("peer died before the row was over");
    } catch (const std::exception& e) {
        g_row_stopping = 1;
        control->stop.store(1);
        side.reset();
        peers.finish(milliseconds(200));
        // The peer's own account of what went wrong says more than "closed".
        const auto why = peer_error(*control);
        if (!why.empty()) throw std::runtime_error(why);
        if (interrupted()) throw std::runtime_error("interrupted");
        if (dynamic_cast<const PeerGone*>(&e) != nullptr)
            throw std::runtime_error(std::string(e.what()) + " (" + peers.describe_exit() + ")");
        throw;
    }
    g_row_stopping = 1;
    control->stop.store(1, std::memory_order_release);
    side.reset();  // removes the row's objects, which also wakes a peer blocked on them
    peers.finish(milliseconds(100));
    return m;
}

}  // namespace

std::string_view to_string(Mode mode) noexcept {
    return mode == Mode::latency ? "latency" : "throughput";
}

std::string_view to_string(Category category) noexcept {
    switch (category) {
        case Category::baseline:
            return "baseline";
        case Category::raw:
            return "raw";
        case Category::channel:
            return "channel";
        case Category::peer:
            return "peer";
    }
    return "?";
}

bool row_aborted() noexcept {
    return g_aborted != 0;
}
bool interrupted() noexcept {
    return g_interrupted != 0;
}

void check_abort(std::string_view what) {
    if (g_aborted || g_interrupted) {
        if (g_interrupted) throw PeerGone("interrupted while " + std::string(what));
        if (g_child_exited) throw PeerGone("peer died while " + std::string(what));
        throw PeerGone("row deadline passed while " + std::string(what));
    }
}

void add_emergency_msq(int msqid) noexcept {
    for (int i = 0; i < kMaxEmergencyQueues; ++i) {
        if (g_emergency_msq[i] < 0) {
            g_emergency_msq[i] = msqid;
            return;
        }
    }
}

SignalScope::SignalScope() {
    install(SIGINT, on_interrupt, 0, &g_old_int);
    install(SIGCHLD, on_child, SA_NOCLDSTOP, &g_old_chld);
    install(SIGALRM, on_tick, 0, &g_old_alrm);
    install(SIGPIPE, SIG_IGN, 0, &g_old_pipe);
}

SignalScope::~SignalScope() {
    set_tick(false);
    ::sigaction(SIGINT, &g_old_int, nullptr);
    ::sigaction(SIGCHLD, &g_old_chld, nullptr);
    ::sigaction(SIGALRM, &g_old_alrm, nullptr);
    ::sigaction(SIGPIPE, &g_old_pipe, nullptr);
}

std::int64_t now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}

std::size_t ring_bytes_for(std::size_t size) noexcept {
    constexpr std::size_t kDefault = std::size_t{4} << 20;
    // A record may take half the ring, less its 8-byte header.
    if (size + 64 <= kDefault / 2) return kDefault;
    return std::bit_ceil(2 * size + 4096);
}

std::size_t min_warmup_messages(std::size_t size) noexcept {
    if (size < (std::size_t{64} << 10)) return 0;
    return ring_bytes_for(size) / size + 1;
}

void fill_pattern(std::span<std::byte> buffer) noexcept {
    for (std::size_t i = 0; i < buffer.size(); ++i)
        buffer[i] = static_cast<std::byte>(i * 131 + 7);
}

std::uint64_t percentile(const std::vector<std::uint64_t>& sorted, double q) {
    if (sorted.empty()) return 0;
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

void pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (::sched_setaffinity(0, sizeof(set), &set) != 0)
        throw_errno("sched_setaffinity", "cpu " + std::to_string(cpu));
}

ContenderList all_contenders() {
    ContenderList list;
    add_baselines(list);
    add_raw_loops(list);
    add_channels(list);
    add_loan(list);
    add_services(list);
    add_peers(list);
    return list;
}

Result run_row(Contender& contender, Mode mode, std::size_t size, const RunOptions& options,
               std::size_t row_number) {
    Result result;
    result.transport = contender.name();
    result.wait = contender.wait();
    result.category = contender.category();
    result.mode = mode;
    result.size = size;
    if (auto why = contender.absent()) {
        result.error = *why;
        return result;
    }
    if (auto why = contender.cannot_carry(size)) {
        result.error = *why;
        return result;
    }
    RowPlan plan{mode, size, options.budget,
                 "ipckit-bench-" + std::to_string(::getpid()) + "-" + std::to_string(row_number),
                 options.dir};
    plan.peers = contender.peers();
    try {
        Measurement m =
            contender.needs_peer() ? run_pair(contender, plan, options) : contender.measure_alone(plan);
        result.count = m.count;
        if (mode == Mode::latency) {
            if (m.rtt_ns.empty()) throw std::runtime_error("no samples");
            std::sort(m.rtt_ns.begin(), m.rtt_ns.end());
            result.p50 = percentile(m.rtt_ns, 0.50);
            result.p99 = percentile(m.rtt_ns, 0.99);
            result.p999 = percentile(m.rtt_ns, 0.999);
            result.max = m.rtt_ns.back();
        } else {
            if (m.seconds <= 0 || m.count == 0) throw std::runtime_error("no messages counted");
            result.msgs_per_s = static_cast<double>(m.count) / m.seconds;
            result.bytes_per_s = static_cast<double>(m.bytes) / m.seconds;
        }
    } catch (const std::exception& e) {
        result.error = e.what();
        result.count = 0;
    }
    return result;
}

int run_peer(const std::string& spec) {
    const auto fields = split(spec, '|');
    if (fields.size() < 12) {
        std::fprintf(stderr, "ipckit: bench --peer: malformed peer specification\n");
        return 2;
    }
    ::signal(SIGPIPE, SIG_IGN);
    // Ctrl-C reaches the whole process group; side A decides how the row ends.
    ::signal(SIGINT, SIG_IGN);
    // Side A's request to stop: every loop's check_abort then ends the row here. No SA_RESTART,
    // so a blocking call returns EINTR and its loop looks at the flag.
    struct sigaction stop {};
    stop.sa_handler = [](int) { g_aborted = 1; };
    sigemptyset(&stop.sa_mask);
    ::sigaction(SIGTERM, &stop, nullptr);
    const int control_fd = std::stoi(fields[3]);
    ::fcntl(control_fd, F_SETFD, FD_CLOEXEC);
    ControlMapping control{Fd(control_fd)};
    RowPlan plan;
    plan.mode = fields[1] == "latency" ? Mode::latency : Mode::throughput;
    plan.size = std::stoull(fields[2]);
    plan.budget.warmup = milliseconds(std::stoll(fields[5]));
    plan.budget.duration = milliseconds(std::stoll(fields[6]));
    plan.budget.max_count = std::stoull(fields[7]);
    plan.stem = fields[8];
    plan.dir = fields[9];
    plan.peer = std::stoi(fields[10]);
    plan.peers = std::stoi(fields[11]);
    const std::vector<std::string> args(fields.begin() + 12, fields.end());
    try {
        const int cpu = std::stoi(fields[4]);
        if (cpu >= 0) pin_to_cpu(cpu);
        auto list = all_contenders();
        const auto it =
            std::find_if(list.begin(), list.end(), [&](const auto& c) { return c->name() == fields[0]; });
        if (it == list.end()) throw std::runtime_error("unknown contender " + fields[0]);
        Contender& contender = **it;
        auto side = contender.join(plan, args);
        control->peer_ready.fetch_add(1, std::memory_order_acq_rel);
        // Every peer has joined before any loop starts (A says so once it has counted them).
        while (control->go.load(std::memory_order_acquire) == 0) {
            // A ended the row first (its stop request, or its SIGTERM when the row was aborted).
            if (control->stop.load(std::memory_order_acquire) != 0 || row_aborted()) return 0;
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        try {
            if (contender.custom_loops()) {
                contender.run_b(*side, plan, *control);
            } else if (plan.mode == Mode::latency) {
                // The echo goes out of the buffer it came in, unless the side wants another.
                std::vector<std::byte> storage;
                const auto in = message_buffer(side->recv_buffer(plan.size), storage, plan.size);
                const auto offered = side->send_buffer(plan.size);
                const auto out = offered.empty() ? in : offered;
                for (;;) {
                    side->recv(in);
                    if (out.data() != in.data()) std::memcpy(out.data(), in.data(), in.size());
                    side->send(out);
                }
            } else if (contender.peer_sends(plan)) {
                std::vector<std::byte> storage;
                const auto message = message_buffer(side->send_buffer(plan.size), storage, plan.size);
                fill_pattern(message);
                while (control->stop.load(std::memory_order_relaxed) == 0)
                    side->send(message);
            } else {
                // Another receiver beside A (a topic's other subscribers): takes everything.
                std::vector<std::byte> storage;
                const auto in = message_buffer(side->recv_buffer(plan.size), storage, plan.size);
                while (control->stop.load(std::memory_order_relaxed) == 0)
                    side->recv(in);
            }
        } catch (const PeerGone&) {
            // Side A (or the row's sender) finished and closed its end: the normal end of a row.
        }
        control->peer_done.fetch_add(1, std::memory_order_acq_rel);
        return 0;
    } catch (const std::exception& e) {
        if (control->stop.load() != 0) return 0;  // A ended the row while B was still setting up
        // The first peer to fail tells the story; the others' errors are usually its echo.
        if (control->error_claimed.exchange(1, std::memory_order_acq_rel) == 0) {
            const std::string who = plan.peers > 1 ? peer_name(plan.peer, plan.peers) + ": " : "";
            std::snprintf(control->peer_error, sizeof(control->peer_error), "%s%s", who.c_str(), e.what());
        }
        return 1;
    }
}

}  // namespace ipckit::bench
