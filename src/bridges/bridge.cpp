#include "ipckit/bridge.hpp"

#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/nats.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

// Each wait lasts at most this long, so a stop request is seen within it.
constexpr auto kSlice = 100ms;

}  // namespace

Bridge::Bridge(Receiver from, Sender to, BridgeOptions options)
    : from_(std::move(from)), to_(std::move(to)), options_(std::move(options)) {}

BridgeCounts Bridge::run(const std::atomic<bool>& stop) {
    using Clock = Deadline::Clock;
    const auto start = Clock::now();
    auto next_progress = start + options_.progress_interval;
    BridgeCounts counts;
    const auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
    const auto tick = [&] {
        if (!options_.progress || Clock::now() < next_progress) return;
        next_progress = Clock::now() + options_.progress_interval;
        counts.seconds = elapsed();
        options_.progress(counts);
    };
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
    counts.seconds = elapsed();
    return counts;
}

}  // namespace ipckit
