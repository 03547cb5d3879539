// `ipckit bench` channel rows: every transport of the channel API, driven through
// ipckit::Sender and ipckit::Receiver exactly as a user would. A row is a pair of address
// templates (ping and pong) made unique per row; latency uses both, throughput only ping.
// Rows with several peers (a topic's subscribers, the senders of lanes) start that many peer
// processes, all opening the same addresses.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "bench_harness.hpp"
#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"

#if IPCKIT_BENCH_CHANNEL
#include "ipckit/channel.hpp"
#endif

namespace ipckit::bench {

// The `nats` rows' server (bench_nats.cpp): "nats://127.0.0.1:PORT", started on first use and
// stopped when the tool exits; and why those rows cannot run, when they cannot.
std::string nats_bench_server();
std::optional<std::string> nats_bench_absent();

namespace {

// A row of the table: its name is what a user would type (the address without the object's
// name), `address` the template the row fills in for each direction:
//   {name} a name unique to the row and direction, {dir} the run's private directory,
//   {key} a System V key, {fd} the descriptor of an inherited pipe end, {port} a free TCP port,
//   {capacity} "capacity=N&" when the row's messages need a ring larger than the default,
//   {lane_capacity} the same for one lane of `senders=N` (whose default lane is smaller).
// A transport added to the library is one more line here.
struct TransportSpec {
    const char* name;
    const char* address;
    const char* wait;  // what the wait column says: the address's wait, or the default
    // More than one peer: a latency row's every peer echoes (the round trip ends at the slowest);
    // a throughput row's every peer sends, unless `one_sender`.
    int peers = 1;
    // The pong direction's template when it is not `address` (a topic's echoes come back
    // through lanes, one per subscriber).
    const char* reply = nullptr;
    // Throughput: peer 0 sends and the other peers receive beside A (a topic's one publisher
    // and its other subscribers), so A's count is one subscriber's.
    bool one_sender = false;
    bool latency = true;  // false: a throughput row only
};

// In the order of the table: the lecture's mechanisms, then the rings, each by its default
// address first and then with each wait strategy.
constexpr TransportSpec kTransports[] = {
    {"fd", "fd:{fd}", "block"},
    {"fifo", "fifo:{dir}/{name}", "block"},
    {"sysvmq", "sysvmq:{key}", "block"},
    {"posixmq", "posixmq:/{name}", "block"},
    {"unix", "unix:@{name}", "block"},
    {"unix+seqpacket", "unix+seqpacket:@{name}", "block"},
    {"tcp", "tcp://127.0.0.1:{port}", "block"},
    // a nats-server on loopback, started for these rows (bench_nats.cpp)
    {"nats", "{nats}/ipckit.bench.{name}", "block"},
    {"shm", "shm:/{name}?{capacity}", "adaptive"},
    {"shm?wait=block", "shm:/{name}?{capacity}wait=block", "block"},
    {"shm?wait=spin", "shm:/{name}?{capacity}wait=spin", "spin"},
    {"sysvshm", "sysvshm:{key}?{capacity}", "adaptive"},
    {"sysvshm?wait=block", "sysvshm:{key}?{capacity}wait=block", "block"},
    {"sysvshm?wait=spin", "sysvshm:{key}?{capacity}wait=spin", "spin"},
    {"shm:@", "shm:@{name}?{capacity}", "adaptive"},  // the ring in a sealed memfd
    // topic:/ with one subscriber, against shm (issue 15's target: within 1.2x of its latency).
    {"topic", "topic:/{name}?{capacity}", "adaptive"},
    {"topic?wait=block", "topic:/{name}?{capacity}wait=block", "block"},
    // A topic with 2 and 4 subscriber processes, as many slots as subscribers. Latency: A
    // publishes, each subscriber echoes into its own lane of shm:/…?senders=N, and the round
    // trip ends with the last echo (the slowest subscriber). Throughput: A is one subscriber,
    // peer 0 the publisher, the other peers subscribe too; overflow=block holds the publisher
    // to the slowest, so A's rate is every subscriber's. The default wait (adaptive): N+1
    // processes outnumber the 2 CPUs of a small machine, where spinning starves the others.
    {"topic?subscribers=2", "topic:/{name}?{capacity}subscribers=2", "adaptive", 2,
     "shm:/{name}?{lane_capacity}senders=2", true},
    {"topic?subscribers=4", "topic:/{name}?{capacity}subscribers=4", "adaptive", 4,
     "shm:/{name}?{lane_capacity}senders=4", true},
    // Many to one: two sender processes flat out into one receiver's two lanes; A counts the
    // total. No latency row: two senders' round trips would be two 1:1 lanes' ping-pongs
    // taking turns at one receiver, which `shm` measures already (a lane is that ring).
    {"shm?senders=2", "shm:/{name}?{lane_capacity}senders=2", "adaptive", 2, nullptr, false, false},
};

#if IPCKIT_BENCH_CHANNEL

// A System V key nobody else is likely to use: the run's PID and the row, marked "ib".
unsigned sysv_key(const RowPlan& plan, int direction) {
    const auto row = static_cast<unsigned>(std::stoul(plan.stem.substr(plan.stem.rfind('-') + 1)));
    const auto pid = static_cast<unsigned>(::getpid());
    return ((0x6962u << 16) ^ (pid << 9) ^ (row << 1) ^ static_cast<unsigned>(direction)) & 0x7fffffffu;
}

// A TCP port the kernel just gave out, so it is free (for the moment).
int free_tcp_port() {
    Fd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe) throw_errno("socket", "tcp port probe");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(probe.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
        throw_errno("bind", "127.0.0.1:0");
    socklen_t length = sizeof address;
    if (::getsockname(probe.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
        throw_errno("getsockname", "tcp port probe");
    return ntohs(address.sin_port);
}

void replace_all(std::string& text, std::string_view field, const std::string& value) {
    for (auto at = text.find(field); at != std::string::npos; at = text.find(field, at + value.size()))
        text.replace(at, field.size(), value);
}

// Bytes of one lane of `senders=N` for messages of `size`: the lanes' default, 512 KiB, while a
// message fits it, else what ring_bytes_for gives (the 1:1 ring's size at that message size).
std::size_t lane_bytes_for(std::size_t size) noexcept {
    constexpr std::size_t kDefaultLane = std::size_t{512} << 10;
    return size + 64 <= kDefaultLane / 2 ? kDefaultLane : ring_bytes_for(size);
}

// Address of one direction (0: ping, A→B; 1: pong, B→A) for this row.
std::string address_for(const TransportSpec& spec, const RowPlan& plan, int direction, int fd = -1) {
    std::string address = direction == 1 && spec.reply != nullptr ? spec.reply : spec.address;
    char key[32];
    std::snprintf(key, sizeof key, "0x%x", sysv_key(plan, direction));
    const std::size_t ring = ring_bytes_for(plan.size);
    replace_all(address, "{name}", plan.stem + (direction == 0 ? "-ping" : "-pong"));
    replace_all(address, "{dir}", plan.dir);
    replace_all(address, "{key}", key);
    replace_all(address, "{fd}", std::to_string(fd));
    if (address.find("{nats}") != std::string::npos) replace_all(address, "{nats}", nats_bench_server());
    if (address.find("{port}") != std::string::npos)
        replace_all(address, "{port}", std::to_string(free_tcp_port()));
    replace_all(address, "{capacity}",
                ring == (std::size_t{4} << 20) ? std::string() : "capacity=" + std::to_string(ring) + "&");
    const std::size_t lane = lane_bytes_for(plan.size);
    replace_all(address, "{lane_capacity}",
                lane == (std::size_t{512} << 10) ? std::string() : "capacity=" + std::to_string(lane) + "&");
    // A template whose options all fell away leaves a bare '?' or a trailing '&'.
    if (address.ends_with('?') || address.ends_with('&')) address.pop_back();
    return address;
}

bool worth_retrying(const Error& e) {
    return e.code() == std::errc::no_such_file_or_directory || e.code() == std::errc::connection_refused ||
           e.code() == std::errc::no_such_device_or_address;
}

// The opening side may start before the creating side has created: retry briefly.
template <typename Open>
auto open_patiently(Open open) {
    const auto until = Clock::now() + std::chrono::seconds(5);
    for (;;) {
        try {
            return open(Deadline::at(until));
        } catch (const Error& e) {
            if (!worth_retrying(e) || Clock::now() > until) throw;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

class ChannelSide final : public Side {
public:
    ChannelSide(const TransportSpec& spec, const RowPlan& plan, bool creator,
                std::vector<std::string> addresses, std::vector<Fd> peer_ends = {})
        : transport_(spec.name),
          spec_(spec),
          plan_(plan),
          creator_(creator),
          addresses_(std::move(addresses)),
          peer_ends_(std::move(peer_ends)) {}

    // Side A creates, after the peer started: creating a FIFO's writer or a socket's listener
    // may wait for the other end.
    void connect() override {
        peer_ends_.clear();
        if (plan_.mode == Mode::latency) {
            tx_.emplace(make_sender(addresses_.at(0)));
            rx_.emplace(make_receiver(addresses_.at(1)));
        } else {
            rx_.emplace(make_receiver(addresses_.at(0)));
        }
        // The smaller of the two directions' (a topic's echoes come back through lanes).
        std::size_t limit = tx_ ? tx_->max_message_size() : rx_->max_message_size();
        if (rx_) limit = std::min(limit, rx_->max_message_size());
        if (plan_.size > limit)
            throw std::runtime_error(transport_ + ": " + std::to_string(plan_.size) +
                                     " B is over the channel's largest message, " + std::to_string(limit) +
                                     " B" + limit_name());
        // Nothing but the removal of a System V queue wakes msgrcv when the peer dies.
        if (transport_ == "sysvmq") {
            for (int direction = 0; direction < (plan_.mode == Mode::latency ? 2 : 1); ++direction) {
                const int id = ::msgget(static_cast<key_t>(sysv_key(plan_, direction)), 0);
                if (id >= 0) add_emergency_msq(id);
            }
        }
        deadline_ =
            transport_ == "sysvmq"
                ? Deadline::never()
                : Deadline::after(plan_.budget.warmup + plan_.budget.duration + std::chrono::seconds(10));
    }
    // Side B opens what A created, in the same order. Throughput: a sender, or (a topic's
    // peers after the first) another subscriber.
    void join() {
        if (plan_.mode == Mode::latency) {
            rx_.emplace(open_patiently([&](Deadline d) { return Receiver::open(addresses_.at(0), d); }));
            tx_.emplace(open_patiently([&](Deadline d) { return Sender::open(addresses_.at(1), d); }));
        } else if (sends(spec_, plan_)) {
            tx_.emplace(open_patiently([&](Deadline d) { return Sender::open(addresses_.at(0), d); }));
        } else {
            rx_.emplace(open_patiently([&](Deadline d) { return Receiver::open(addresses_.at(0), d); }));
        }
    }
    static bool sends(const TransportSpec& spec, const RowPlan& plan) {
        return !spec.one_sender || plan.peer == 0;
    }

    void send(std::span<const std::byte> message) override { check(tx_->send(message, deadline_), "send"); }
    void recv(std::span<std::byte> buffer) override {
        if (spec_.peers == 1 || !creator_) {
            check(rx_->recv(buffer, deadline_), "recv");
            return;
        }
        // Side A of a row with several peers: one peer that dies leaves the others holding the
        // link open (the lanes stay open while a sender lives, the topic while its publisher
        // does), so A waits in slices and looks at the row's abort flag in between. The first
        // try does not wait, so a message that is there costs no clock read.
        auto result = rx_->recv(buffer, Deadline::immediate());
        while (result.status == Status::would_block || result.status == Status::timed_out) {
            check_abort("recv");
            if (deadline_.expired()) break;
            const auto slice = Clock::now() + std::chrono::milliseconds(100);
            result = rx_->recv(buffer, Deadline::at(std::min(deadline_.when(), slice)));
        }
        check(result, "recv");
    }
    bool try_recv(std::span<std::byte> buffer) override {
        const auto result = rx_->recv(buffer, Deadline::immediate());
        if (result.status == Status::would_block || result.status == Status::timed_out) return false;
        check(result, "recv");
        return true;
    }

private:
    // fd: names an inherited descriptor, which both sides open; the rest are created by A.
    Sender make_sender(const std::string& address) const {
        return transport_ == "fd" ? Sender::open(address) : Sender::create(address);
    }
    Receiver make_receiver(const std::string& address) const {
        return transport_ == "fd" ? Receiver::open(address) : Receiver::create(address);
    }
    std::string limit_name() const {
        if (transport_ == "sysvmq") return " (kernel.msgmax)";
        if (transport_ == "posixmq") return " (fs.mqueue.msgsize_max)";
        return "";
    }
    void check(IoResult result, const char* what) const {
        if (result.ok()) return;
        if (result.status == Status::closed) throw PeerGone(transport_ + ": peer closed during " + what);
        check_abort(what);
        throw PeerGone(transport_ + ": " + what + " " + std::string(to_string(result.status)));
    }

    std::string transport_;
    TransportSpec spec_;
    RowPlan plan_;
    bool creator_;
    std::vector<std::string> addresses_;
    std::vector<Fd> peer_ends_;
    std::optional<Sender> tx_;
    std::optional<Receiver> rx_;
    Deadline deadline_ = Deadline::never();
};

class ChannelContender final : public Contender {
public:
    explicit ChannelContender(const TransportSpec& spec)
        : Contender(spec.name, Category::channel, spec.wait), spec_(spec) {}
    std::optional<std::string> absent() const override {
        return name() == "nats" ? nats_bench_absent() : std::nullopt;
    }
    bool measures(Mode mode) const override { return mode == Mode::throughput || spec_.latency; }
    int peers() const override { return spec_.peers; }
    bool peer_sends(const RowPlan& plan) const override { return ChannelSide::sends(spec_, plan); }

    std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch& launch) override {
        std::vector<std::string> mine, theirs;
        std::vector<Fd> peer_ends;
        const int legs = plan.mode == Mode::latency ? 2 : 1;
        for (int direction = 0; direction < legs; ++direction) {
            if (name() == "fd") {
                // A pipe per direction; each side names its own end by descriptor number.
                int fds[2];
                if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2", "fd channel");
                Fd read_end(fds[0]), write_end(fds[1]);
                const bool a_writes = direction == 0 && plan.mode == Mode::latency;
                Fd& a_end = a_writes ? write_end : read_end;
                Fd& b_end = a_writes ? read_end : write_end;
                mine.push_back(address_for(spec_, plan, direction, a_end.get()));
                theirs.push_back(address_for(spec_, plan, direction, b_end.get()));
                launch.inherit_fds.push_back(b_end.get());
                fd_keep_.push_back(std::move(a_end));
                peer_ends.push_back(std::move(b_end));
            } else {
                mine.push_back(address_for(spec_, plan, direction));
                theirs.push_back(mine.back());
            }
        }
        launch.args = theirs;
        // The channel adopts `fd:N` descriptors; it closes them when it goes.
        for (auto& fd : fd_keep_)
            (void)fd.release();
        fd_keep_.clear();
        return std::make_unique<ChannelSide>(spec_, plan, true, std::move(mine), std::move(peer_ends));
    }
    std::unique_ptr<Side> join(const RowPlan& plan, const std::vector<std::string>& args) override {
        auto side = std::make_unique<ChannelSide>(spec_, plan, false, args);
        side->join();
        return side;
    }

private:
    TransportSpec spec_;
    std::vector<Fd> fd_keep_;
};

#endif

}  // namespace

void add_channels(ContenderList& list) {
    for (const auto& spec : kTransports) {
#if IPCKIT_BENCH_CHANNEL
        list.push_back(std::make_unique<ChannelContender>(spec));
#else
        list.push_back(std::make_unique<NotBuilt>(
            spec.name, spec.wait,
            "not built: the channel layer (src/channels/channel.cpp) is not in this build", spec.latency));
#endif
    }
}

}  // namespace ipckit::bench
