// `ipckit bench` service rows: a call's round trip through a shared-memory service
// (service.hpp), beside the `shm` ping-pong it is built like.
//   service: side A is a Client (start, then wait for the response), side B the Server (recv,
//     then reply with the bytes it received). One client slot, one call in flight, `max=` the
//     row's size, the default wait (adaptive), as the `shm` row's. Latency only: a service's
//     throughput is its ping-pong's. Target (DESIGN.md, issue 24): within 1.3x of the `shm`
//     ping-pong's median at 64 B and 1 MiB, measured by pairs against `shm`.
#include <sys/mman.h>

#include <algorithm>
#include <optional>
#include <string>

#include "bench_harness.hpp"

#if IPCKIT_BENCH_CHANNEL
#include "ipckit/service.hpp"
#endif

namespace ipckit::bench {
namespace {

#if IPCKIT_BENCH_CHANNEL

std::string region_name(const RowPlan& plan) {
    return "/" + plan.stem + "-svc";
}

std::string service_address(const RowPlan& plan) {
    // max= below 64 B would only shrink the rings: the row's size, or 64 B.
    return "service:" + region_name(plan) +
           "?clients=1&inflight=1&max=" + std::to_string(std::max<std::size_t>(plan.size, 64));
}

[[noreturn]] void failed(Status status, const char* what) {
    if (status == Status::closed)
        throw PeerGone(std::string("service: the other side closed during ") + what);
    check_abort(what);
    throw PeerGone(std::string("service: ") + what + " " + std::string(to_string(status)));
}

Deadline row_deadline(const RowPlan& plan) {
    return Deadline::after(plan.budget.warmup + plan.budget.duration + std::chrono::seconds(10));
}

// Side A: each send starts a call, each recv waits for its response.
class ClientSide final : public Side {
public:
    explicit ClientSide(const RowPlan& plan)
        : client_(Client::open(service_address(plan))),
          deadline_(row_deadline(plan)),
          region_(region_name(plan)) {}
    // The row's end: the server process waits in recv for calls that will not come and is
    // killed, so its region is removed here, as side A removes every row's objects.
    ~ClientSide() override { ::shm_unlink(region_.c_str()); }

    void send(std::span<const std::byte> message) override {
        const auto started = client_.start(message, deadline_);
        if (!started.ok()) failed(started.status, "start");
        call_ = started.call;
    }
    void recv(std::span<std::byte> buffer) override {
        const IoResult r = client_.wait(call_, response_, deadline_);
        if (!r.ok()) failed(r.status, "wait");
        if (!buffer.empty() && !response_.empty()) buffer[0] = response_[0];
    }
    bool try_recv(std::span<std::byte> buffer) override {
        const IoResult r = client_.wait(call_, response_, Deadline::immediate());
        if (r.status == Status::would_block || r.status == Status::timed_out) return false;
        if (!r.ok()) failed(r.status, "wait");
        if (!buffer.empty() && !response_.empty()) buffer[0] = response_[0];
        return true;
    }

private:
    Client client_;
    Deadline deadline_;
    std::string region_;
    CallId call_;
    std::vector<std::byte> response_;
};

// Side B: each recv takes a request, each send replies to it.
class ServerSide final : public Side {
public:
    explicit ServerSide(const RowPlan& plan)
        : server_(Server::create(service_address(plan))), deadline_(row_deadline(plan)) {}

    // The echo is the request as received: replying from it spares the copy into the loop's
    // buffer (the shm row's echo copies nothing extra either).
    void send(std::span<const std::byte>) override {
        const IoResult r = server_.reply(request_.handle, request_.message);
        if (!r.ok()) failed(r.status, "reply");
    }
    void recv(std::span<std::byte> buffer) override { take(server_.recv(request_, deadline_), buffer); }
    bool try_recv(std::span<std::byte> buffer) override {
        const IoResult r = server_.try_recv(request_);
        if (r.status == Status::would_block || r.status == Status::timed_out) return false;
        take(r, buffer);
        return true;
    }

private:
    void take(IoResult r, std::span<std::byte> buffer) {
        if (!r.ok()) failed(r.status, "recv");
        if (!buffer.empty() && !request_.message.empty()) buffer[0] = request_.message[0];
    }

    Server server_;
    Deadline deadline_;
    Request request_;
};

class ServiceContender final : public Contender {
public:
    ServiceContender() : Contender("service", Category::channel, "adaptive") {}
    bool measures(Mode mode) const override { return mode == Mode::latency; }
    std::unique_ptr<Side> prepare(const RowPlan& plan, PeerLaunch&) override {
        return std::make_unique<ClientSide>(plan);
    }
    std::unique_ptr<Side> join(const RowPlan& plan, const std::vector<std::string>&) override {
        return std::make_unique<ServerSide>(plan);
    }
};

#endif

}  // namespace

void add_services(ContenderList& list) {
#if IPCKIT_BENCH_CHANNEL
    list.push_back(std::make_unique<ServiceContender>());
#else
    list.push_back(std::make_unique<NotBuilt>("service", "adaptive",
                                              "not built: the channel layer is not in this build", true));
#endif
}

}  // namespace ipckit::bench
