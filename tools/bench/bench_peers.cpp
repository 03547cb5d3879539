// `ipckit bench` peers: the libraries a user would otherwise pick, measured in the same run.
// Each is compiled in when CMake found it (IPCKIT_BENCH_ICEORYX in bench_iceoryx.cpp, _BOOST, _ZMQ, _NNG);
// otherwise its rows say it is absent and how to get it.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include <sched.h>

#include "bench_harness.hpp"
#include "ipckit/error.hpp"

#if IPCKIT_BENCH_BOOST
#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/ipc/message_queue.hpp>
#endif
#if IPCKIT_BENCH_ZMQ
#include <zmq.h>
#endif
#if IPCKIT_BENCH_NNG
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#endif

namespace ipckit::bench {
namespace {

// A peer library that was not found when the tool was built.
class Absent final : public Contender {
public:
    Absent(std::string name, std::string why)
        : Contender(std::move(name), Category::peer), why_(std::move(why)) {}
    std::optional<std::string> absent() const override { return why_; }
    std::unique_ptr<Side> prepare(const RowPlan&, PeerLaunch&) override { throw std::logic_error(why_); }
    std::unique_ptr<Side> join(const RowPlan&, const std::vector<std::string>&) override {
        throw std::logic_error(why_);
    }

private:
    std::string why_;
};

// A peer in its fastest mode: the same library, but every receive polls the library's
// non-blocking receive in a loop instead of waiting in it (iceoryx without its WaitSet, ZeroMQ
// and nng with their don't-wait flag, Boost's try_receive), as ipckit's `?wait=spin` rows do.
// Bounded like every spin here: it looks at the abort flags and yields every 1024 turns.
class PollingSide final : public Side {
public:
    explicit PollingSide(std::unique_ptr<Side> inner) : inner_(std::move(inner)) {}
    void connect() override { inner_->connect(); }
    void send(std::span<const std::byte> message) override { inner_->send(message); }
    void recv(std::span<std::byte> buffer) override {
        for (std::uint32_t turns = 1; !inner_->try_recv(buffer); ++turns) {
            cpu_relax();
            if ((turns & 1023) == 0) {
                check_abort("polling");
                ::sched_yield();
            }
        }
    }
    bool try_recv(std::span<std::byte> buffer) override { return inner_->try_recv(buffer); }
    std::span<std::byte> send_buffer(std::size_t size) override { return inner_->send_buffer(size); }
    std::span<std::byte> recv_buffer(std::size_t size) override { return inner_->recv_buffer(size); }

private:
    std::unique_ptr<Side> inner_;
};

class Polling final : public Contender {
public:
    explicit Polling(std::unique_ptr<Contender> inner)
        : Contender(inner->name() + "?wait=spin", Category::peer, "spin"), inner_(std::move(inner)) {}
    bool measures(Mode mode) const override { return inner_->measures(mode); }
    std::optional<std::string> cannot_carry(std::size_t size) const override {
        return inner_->cannot_carry(size);
    }
    std::optional<std::string> absent() const override { return inner_->absent(); }
    std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch& launch) override {
        return std::make_unique<PollingSide>(inner_->prepare(plan, launch));
    }
    std::unique_ptr<Side> join(const RowPlan& plan, const std::vector<std::string>& args) override {
        return std::make_unique<PollingSide>(inner_->join(plan, args));
    }

private:
    std::unique_ptr<Contender> inner_;
};

// Waits in the libraries are bounded by this much at a time, so the loops can look at the
// abort flags: a dead peer never signals a library's condition variable.
constexpr int kSliceMs = 100;

#if IPCKIT_BENCH_BOOST
namespace bip = boost::interprocess;

class BoostSide final : public Side {
public:
    // A: creates both queues (latency) or the one it receives on (throughput).
    BoostSide(std::string send_name, std::string recv_name, bool owner, std::size_t size)
        : send_name_(std::move(send_name)), recv_name_(std::move(recv_name)), owner_(owner) {
        // Room for a few megabytes of messages, at least two.
        const std::size_t depth = std::clamp<std::size_t>((4u << 20) / std::max<std::size_t>(size, 1), 2, 64);
        try {
            if (owner_) {
                const bip::permissions mode(0600);
                if (!send_name_.empty())
                    send_ = std::make_unique<bip::message_queue>(bip::create_only, send_name_.c_str(), depth,
                                                                 size, mode);
                if (!recv_name_.empty())
                    recv_ = std::make_unique<bip::message_queue>(bip::create_only, recv_name_.c_str(), depth,
                                                                 size, mode);
            } else {
                if (!send_name_.empty())
                    send_ = std::make_unique<bip::message_queue>(bip::open_only, send_name_.c_str());
                if (!recv_name_.empty())
                    recv_ = std::make_unique<bip::message_queue>(bip::open_only, recv_name_.c_str());
            }
        } catch (...) {
            remove();
            throw;
        }
    }
    ~BoostSide() override { remove(); }
    void send(std::span<const std::byte> message) override {
        while (!send_->timed_send(message.data(), message.size(), 0, slice_end()))
            check_abort("boost message_queue send");
    }
    void recv(std::span<std::byte> buffer) override {
        bip::message_queue::size_type received = 0;
        unsigned priority = 0;
        while (!recv_->timed_receive(buffer.data(), buffer.size(), received, priority, slice_end()))
            check_abort("boost message_queue receive");
    }
    bool try_recv(std::span<std::byte> buffer) override {
        bip::message_queue::size_type received = 0;
        unsigned priority = 0;
        return recv_->try_receive(buffer.data(), buffer.size(), received, priority);
    }

private:
    static boost::posix_time::ptime slice_end() {
        return boost::posix_time::microsec_clock::universal_time() +
               boost::posix_time::milliseconds(kSliceMs);
    }
    void remove() {
        send_.reset();
        recv_.reset();
        if (!owner_) return;
        if (!send_name_.empty()) bip::message_queue::remove(send_name_.c_str());
        if (!recv_name_.empty()) bip::message_queue::remove(recv_name_.c_str());
    }
    std::string send_name_, recv_name_;
    bool owner_;
    std::unique_ptr<bip::message_queue> send_, recv_;
};

class BoostMq final : public Contender {
public:
    BoostMq() : Contender("boost-mq", Category::peer) {}
    std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch& launch) override {
        const std::string ping = plan.stem + "-boost-ping", pong = plan.stem + "-boost-pong";
        if (plan.mode == Mode::latency) {
            launch.args = {ping, pong};
            return std::make_unique<BoostSide>(ping, pong, true, plan.size);
        }
        launch.args = {ping, ""};
        return std::make_unique<BoostSide>("", ping, true, plan.size);
    }
    std::unique_ptr<Side> join(const RowPlan& plan, const std::vector<std::string>& args) override {
        if (plan.mode == Mode::latency)
            return std::make_unique<BoostSide>(args.at(1), args.at(0), false, plan.size);
        return std::make_unique<BoostSide>(args.at(0), "", false, plan.size);
    }
};
#endif

#if IPCKIT_BENCH_ZMQ
[[noreturn]] void throw_zmq(std::string_view call, std::string_view object) {
    throw_errno(std::string("zmq_") + std::string(call), object, zmq_errno());
}

// One ZMQ_PAIR socket carries both directions.
class ZmqSide final : public Side {
public:
    ZmqSide(const std::string& endpoint, bool bind) : endpoint_(endpoint) {
        context_ = zmq_ctx_new();
        if (context_ == nullptr) throw_zmq("ctx_new", endpoint);
        socket_ = zmq_socket(context_, ZMQ_PAIR);
        if (socket_ == nullptr) {
            zmq_ctx_term(context_);
            throw_zmq("socket", endpoint);
        }
        const int linger = 0, slice = kSliceMs;
        zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(socket_, ZMQ_RCVTIMEO, &slice, sizeof slice);
        zmq_setsockopt(socket_, ZMQ_SNDTIMEO, &slice, sizeof slice);
        const int rc = bind ? zmq_bind(socket_, endpoint.c_str()) : zmq_connect(socket_, endpoint.c_str());
        if (rc != 0) {
            const int err = zmq_errno();
            close();
            throw_errno(bind ? "zmq_bind" : "zmq_connect", endpoint, err);
        }
    }
    ~ZmqSide() override { close(); }
    void send(std::span<const std::byte> message) override {
        while (zmq_send(socket_, message.data(), message.size(), 0) < 0) {
            if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) throw_zmq("send", endpoint_);
            check_abort("zmq_send");
        }
    }
    void recv(std::span<std::byte> buffer) override {
        while (!receive(buffer, 0))
            check_abort("zmq_recv");
    }
    bool try_recv(std::span<std::byte> buffer) override { return receive(buffer, ZMQ_DONTWAIT); }

private:
    bool receive(std::span<std::byte> buffer, int flags) {
        if (zmq_recv(socket_, buffer.data(), buffer.size(), flags) >= 0) return true;
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) throw_zmq("recv", endpoint_);
        return false;
    }
    void close() {
        if (socket_ != nullptr) zmq_close(socket_);
        if (context_ != nullptr) zmq_ctx_term(context_);
        socket_ = context_ = nullptr;
    }
    std::string endpoint_;
    void* context_ = nullptr;
    void* socket_ = nullptr;
};

class Zmq final : public Contender {
public:
    Zmq() : Contender("zmq", Category::peer) {}
    std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch& launch) override {
        const std::string endpoint = "ipc://" + plan.dir + "/" + plan.stem + ".zmq";
        launch.args = {endpoint};
        return std::make_unique<ZmqSide>(endpoint, true);
    }
    std::unique_ptr<Side> join(const RowPlan&, const std::vector<std::string>& args) override {
        return std::make_unique<ZmqSide>(args.at(0), false);
    }
};
#endif

#if IPCKIT_BENCH_NNG
[[noreturn]] void throw_nng(std::string_view call, std::string_view object, int rv) {
    throw_error(std::errc::io_error,
                std::string(call) + "(" + std::string(object) + "): " + nng_strerror(rv));
}

// One pair0 socket carries both directions.
class NngSide final : public Side {
public:
    NngSide(const std::string& url, bool listen) : url_(url) {
        if (const int rv = nng_pair0_open(&socket_); rv != 0) throw_nng("nng_pair0_open", url, rv);
        open_ = true;
        nng_socket_set_ms(socket_, NNG_OPT_RECVTIMEO, kSliceMs);
        nng_socket_set_ms(socket_, NNG_OPT_SENDTIMEO, kSliceMs);
        if (listen) {
            if (const int rv = nng_listen(socket_, url.c_str(), nullptr, 0); rv != 0) {
                close();
                throw_nng("nng_listen", url, rv);
            }
            return;
        }
        // The listener is up before the peer starts, but be patient with a slow start.
        const auto until = Clock::now() + std::chrono::seconds(5);
        for (;;) {
            const int rv = nng_dial(socket_, url.c_str(), nullptr, 0);
            if (rv == 0) return;
            if (rv != NNG_ECONNREFUSED && rv != NNG_ENOENT) {
                close();
                throw_nng("nng_dial", url, rv);
            }
            if (Clock::now() > until) {
                close();
                throw_nng("nng_dial", url, rv);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    ~NngSide() override { close(); }
    void send(std::span<const std::byte> message) override {
        for (;;) {
            // nng_send takes a non-const pointer but, without NNG_FLAG_ALLOC, only reads it.
            const int rv = nng_send(socket_, const_cast<std::byte*>(message.data()), message.size(), 0);
            if (rv == 0) return;
            if (rv == NNG_ECLOSED) throw PeerGone("nng socket closed");
            if (rv != NNG_ETIMEDOUT && rv != NNG_EAGAIN) throw_nng("nng_send", url_, rv);
            check_abort("nng_send");
        }
    }
    void recv(std::span<std::byte> buffer) override {
        while (!receive(buffer, 0))
            check_abort("nng_recv");
    }
    bool try_recv(std::span<std::byte> buffer) override { return receive(buffer, NNG_FLAG_NONBLOCK); }

private:
    bool receive(std::span<std::byte> buffer, int flags) {
        std::size_t size = buffer.size();
        const int rv = nng_recv(socket_, buffer.data(), &size, flags);
        if (rv == 0) return true;
        if (rv == NNG_ECLOSED) throw PeerGone("nng socket closed");
        if (rv != NNG_ETIMEDOUT && rv != NNG_EAGAIN) throw_nng("nng_recv", url_, rv);
        return false;
    }
    // nng 1.5's nng_close can wait forever for a pipe whose peer vanished mid-message; give
    // it two seconds on a helper thread, then leave the socket behind rather than hang the run.
    void close() {
        if (!open_) return;
        open_ = false;
        auto done = std::make_shared<std::atomic<bool>>(false);
        std::thread closer([socket = socket_, done] {
            nng_close(socket);
            done->store(true);
        });
        const auto until = Clock::now() + std::chrono::seconds(2);
        while (!done->load() && Clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (done->load()) {
            closer.join();
        } else {
            closer.detach();
            std::fprintf(stderr, "ipckit bench: nng_close(%s) did not return in 2 s; socket abandoned\n",
                         url_.c_str());
        }
    }
    std::string url_;
    nng_socket socket_ = NNG_SOCKET_INITIALIZER;
    bool open_ = false;
};

class Nng final : public Contender {
public:
    Nng() : Contender("nng", Category::peer) {}
    std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch& launch) override {
        const std::string url = "ipc://" + plan.dir + "/" + plan.stem + ".nng";
        launch.args = {url};
        return std::make_unique<NngSide>(url, true);
    }
    std::unique_ptr<Side> join(const RowPlan&, const std::vector<std::string>& args) override {
        return std::make_unique<NngSide>(args.at(0), false);
    }
};
#endif

}  // namespace

void add_peers(ContenderList& list) {
    // Each peer in its usual mode (a blocking wait), then in its fastest (polling).
    const auto add = [&](std::unique_ptr<Contender> usual, std::unique_ptr<Contender> fastest) {
        list.push_back(std::move(usual));
        list.push_back(std::make_unique<Polling>(std::move(fastest)));
    };
    const auto iceoryx = []() -> std::unique_ptr<Contender> {
        if (auto found = make_iceoryx()) return found;
        return std::make_unique<Absent>(
            "iceoryx",
            "absent: iceoryx was not found at build time (install iceoryx, libiceoryx-posh-dev, "
            "libiceoryx-hoofs-dev, rebuild)");
    };
    add(iceoryx(), iceoryx());
#if IPCKIT_BENCH_BOOST
    add(std::make_unique<BoostMq>(), std::make_unique<BoostMq>());
#else
    const auto boost = [] {
        return std::make_unique<Absent>(
            "boost-mq",
            "absent: Boost.Interprocess was not found at build time (install libboost-dev, rebuild)");
    };
    add(boost(), boost());
#endif
#if IPCKIT_BENCH_ZMQ
    add(std::make_unique<Zmq>(), std::make_unique<Zmq>());
#else
    const auto zmq = [] {
        return std::make_unique<Absent>(
            "zmq", "absent: ZeroMQ was not found at build time (install libzmq3-dev, rebuild)");
    };
    add(zmq(), zmq());
#endif
#if IPCKIT_BENCH_NNG
    add(std::make_unique<Nng>(), std::make_unique<Nng>());
#else
    const auto nng = [] {
        return std::make_unique<Absent>(
            "nng", "absent: nng was not found at build time (install libnng-dev, rebuild)");
    };
    add(nng(), nng());
#endif
}

}  // namespace ipckit::bench
