// ipckit bridge FROM TO — forwards every message from one address to another until FROM
// closes or a SIGINT/SIGTERM arrives; progress on stderr while it runs, a summary at the end.
// Exits 0 when every message received was delivered, 1 otherwise (the summary says why).
// When either address is a service: (ipckit bridge service:/calc nats://hub:4222/calc), it
// exposes the service FROM at TO instead: calls arriving at TO are made on FROM and answered.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "commands.hpp"
#include "ipckit/bridge.hpp"
#include "ipckit/nats.hpp"
#include "reach.hpp"

namespace ipckit::cli {
namespace {

struct BridgeArgs {
    std::string from;
    std::string to;
    double progress = 5;
    double timeout = 30;
    bool quiet = false;
};

std::atomic<bool> g_stop{false};

extern "C" void request_stop(int) {
    g_stop.store(true);
}

// What the nats:// side saw, when there is one: reconnections and what they cost.
std::string nats_note(const NatsReport& r, const char* side) {
    if (!r.is_nats) return {};
    std::string note;
    if (r.disconnects != 0)
        note += std::string(", ") + side + ": " + std::to_string(r.disconnects) + " disconnection(s), " +
                std::to_string(r.reconnects) + " reconnection(s)";
    if (r.lost != 0) note += ", " + std::to_string(r.lost) + " lost (core NATS is at most once)";
    if (r.redelivered != 0) note += ", " + std::to_string(r.redelivered) + " redelivered";
    if (r.sent_disconnected != 0)
        note += ", " + std::to_string(r.sent_disconnected) + " sent while disconnected (may be lost)";
    if (r.gave_up) note += ", " + r.last_event;
    return note;
}

std::string describe(const BridgeCounts& c, Bridge& bridge) {
    const double rate = c.seconds > 0 ? static_cast<double>(c.messages) / c.seconds : 0;
    const double mb = c.seconds > 0 ? static_cast<double>(c.bytes) / c.seconds / 1e6 : 0;
    char head[160];
    std::snprintf(head, sizeof head, "%llu messages, %llu B in %.1f s (%.0f msg/s, %.2f MB/s)",
                  static_cast<unsigned long long>(c.messages), static_cast<unsigned long long>(c.bytes),
                  c.seconds, rate, mb);
    return head + nats_note(nats_report(bridge.from()), "source") +
           nats_note(nats_report(bridge.to()), "destination");
}

std::string describe_calls(const BridgeCounts& c) {
    char text[160];
    std::snprintf(text, sizeof text, "%llu calls answered, %llu B in %.1f s",
                  static_cast<unsigned long long>(c.messages), static_cast<unsigned long long>(c.bytes),
                  c.seconds);
    std::string out = text;
    if (c.undelivered != 0)
        out += ", " + std::to_string(c.undelivered) + " not answered (the service failed them)";
    return out;
}

bool is_service(const std::string& address) {
    return address.starts_with("service:");
}

// Exposes the service `args.from` at `args.to`.
int run_service_bridge(const BridgeArgs& args) {
    const std::string route = args.from + " exposed at " + args.to;
    BridgeOptions options;
    if (!args.quiet && args.progress > 0) {
        options.progress_interval = std::chrono::milliseconds(static_cast<long>(args.progress * 1000));
        options.progress = [&](const BridgeCounts& c) {
            std::fprintf(stderr, "ipckit bridge: %s: %s\n", route.c_str(), describe_calls(c).c_str());
        };
    }
    ServiceBridge bridge(Client::open(args.from), Server::create(args.to), std::move(options));
    const BridgeCounts counts = bridge.run(g_stop);
    std::fprintf(stderr, "ipckit bridge: %s: %s: %s\n", route.c_str(), counts.ended.c_str(),
                 describe_calls(counts).c_str());
    return counts.ended == "stopped" ? 0 : 1;
}

int run_bridge(const BridgeArgs& args) {
    struct sigaction action {};
    action.sa_handler = request_stop;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
    if (is_service(args.from) || is_service(args.to)) return run_service_bridge(args);

    // The bridge receives from FROM as its programs' peer: it creates FROM unless it exists,
    // and opens TO (waiting up to --timeout for it) unless nobody has made it yet.
    Receiver from = reach_receiver(args.from, Reach::automatic, deadline_after(args.timeout));
    Sender to = reach_sender(args.to, Reach::automatic, deadline_after(args.timeout));
    const std::string route = args.from + " -> " + args.to;
    BridgeOptions options;
    Bridge* running = nullptr;
    if (!args.quiet && args.progress > 0) {
        options.progress_interval = std::chrono::milliseconds(static_cast<long>(args.progress * 1000));
        options.progress = [&](const BridgeCounts& c) {
            std::fprintf(stderr, "ipckit bridge: %s: %s\n", route.c_str(), describe(c, *running).c_str());
        };
    }
    Bridge bridge(std::move(from), std::move(to), std::move(options));
    running = &bridge;
    const BridgeCounts counts = bridge.run(g_stop);
    std::fprintf(stderr, "ipckit bridge: %s: %s: %s%s\n", route.c_str(), counts.ended.c_str(),
                 describe(counts, bridge).c_str(),
                 counts.undelivered != 0 ? ", 1 received but not delivered" : "");
    return counts.undelivered == 0 && counts.ended != "destination closed" ? 0 : 1;
}

void setup(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<BridgeArgs>();
    auto* command = app.add_subcommand(
        "bridge",
        "Forward every message from one address to another (e.g. shm:/cam to nats://hub:4222/cam); with a "
        "service: address, expose the service FROM at TO (e.g. service:/calc at nats://hub:4222/calc)");
    command->add_option("from", args->from, "where messages come from, e.g. shm:/cam or nats://hub:4222/cam")
        ->required();
    command->add_option("to", args->to, "where they go, e.g. nats://hub:4222/cam or unix:@cam")->required();
    command->add_option("--progress", args->progress, "print counts every SECONDS (0: only the summary)");
    command->add_option("--timeout", args->timeout, "give up after SECONDS waiting to reach FROM or TO");
    command->add_flag("--quiet", args->quiet, "only the summary on exit");
    command->callback([args, &exit_code] { exit_code = run_bridge(*args); });
}

IPCKIT_COMMAND(60, setup);

}  // namespace
}  // namespace ipckit::cli
