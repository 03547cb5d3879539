#include "ipckit/bridge.hpp"

#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/nats.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

// Each wait lasts at most this long, so a stop request is seen within it.
constexpr auto kSlice = 100ms;

// Calls `progress` about every interval, with the time since `start`.
class Progress {
public:
    using Clock = Deadline::Clock;
    explicit Progress(const BridgeOptions& options)
        : options_(options), start_(Clock::now()), next_(start_ + options.progress_interval) {}
    [[nodiscard]] double elapsed() const {
        return std::chrono::duration<double>(Clock::now() - start_).count();
    }
    void tick(BridgeCounts& counts) {
        if (!options_.progress || Clock::now() < next_) return;
        next_ = Clock::now() + options_.progress_interval;
        counts.seconds = elapsed();
        options_.progress(counts);
    }

private:
    const BridgeOptions& options_;
    Clock::time_point start_;
    Clock::time_point next_;
};

}  // namespace

Bridge::Bridge(Receiver from, Sender to, BridgeOptions options)
    : from_(std::move(from)), to_(std::move(to)), options_(std::move(options)) {}

BridgeCounts Bridge::run(const std::atomic<bool>& stop) {
    using Clock = Deadline::Clock;
    Progress progress(options_);
    BridgeCounts counts;
    const auto tick = [&] { progress.tick(counts); };
    const std::size_t limit = to_.max_message_size();
    std::vector<std::byte> message;
    for (;;) {
        tick();
        if (stop.load(std::memory_order_relaxed)) {
            counts.ended = "stopped";
            break;
        }
        const IoResult got = from_.recv(message, Deadline::after(kSlice));
        if (got.status == Status::closed) {
            counts.ended = "source closed";
            break;
        }
        if (!got.ok()) continue;
        if (message.size() > limit) {
            counts.undelivered = 1;
            (void)nats_hand_back_last(from_);
            throw_error(std::errc::message_size, "bridge " + from_.address() + " -> " + to_.address() +
                                                     ": a message of " + std::to_string(message.size()) +
                                                     " B is over the destination's limit of " +
                                                     std::to_string(limit) + " B");
        }
        // The message in hand goes out before anything else happens; a stop request only
        // shortens how long that may take.
        Clock::time_point drain_until = Clock::time_point::max();
        IoResult sent;
        for (;;) {
            if (stop.load(std::memory_order_relaxed) && drain_until == Clock::time_point::max())
                drain_until = Clock::now() + options_.drain;
            sent = to_.send(message, Deadline::after(kSlice));
            if (sent.status != Status::timed_out && sent.status != Status::would_block) break;
            if (Clock::now() >= drain_until) break;
            tick();
        }
        if (sent.ok()) {
            ++counts.messages;
            counts.bytes += message.size();
            continue;
        }
        counts.undelivered = 1;
        // A JetStream source gets it back, to be delivered again; any other source has let it go.
        (void)nats_hand_back_last(from_);
        counts.ended =
            sent.status == Status::closed ? "destination closed" : "stopped (destination not taking)";
        break;
    }
    counts.seconds = progress.elapsed();
    return counts;
}

ServiceBridge::ServiceBridge(Client service, Server exposed, BridgeOptions options)
    : service_(std::move(service)), exposed_(std::move(exposed)), options_(std::move(options)) {}

BridgeCounts ServiceBridge::run(const std::atomic<bool>& stop) {
    Progress progress(options_);
    BridgeCounts counts;
    Request request;
    std::vector<std::byte> response;
    for (;;) {
        progress.tick(counts);
        if (stop.load(std::memory_order_relaxed)) {
            counts.ended = "stopped";
            break;
        }
        const IoResult got = exposed_.recv(request, Deadline::after(kSlice));
        if (got.status == Status::closed) {
            counts.ended = "exposed service closed";
            break;
        }
        if (!got.ok()) continue;
        // A failed call, a request the service cannot take or a response the exposed side cannot
        // carry: no reply (the service API has no error replies); the caller's deadline tells it.
        IoResult called;
        try {
            called = service_.call(request.message, response, Deadline::after(options_.call_timeout));
        } catch (const Error& e) {
            if (e.code() != std::errc::message_size) throw;
            called.status = Status::closed;
        }
        if (!called.ok() || response.size() > exposed_.max_message_size() ||
            !exposed_.reply(request.handle, response).ok()) {
            ++counts.undelivered;
            continue;
        }
        ++counts.messages;
        counts.bytes += request.message.size() + response.size();
    }
    counts.seconds = progress.elapsed();
    return counts;
}

}  // namespace ipckit
