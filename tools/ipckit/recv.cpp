// ipckit recv ADDRESS [--count N] [--timeout SECONDS] — prints each message on its own line;
// exits 0 after N messages or when the sender closes, 1 with a one-line reason on timeout, when
// the object is removed under it, or when a stream ends inside a message.
#include <cstdio>
#include <string>
#include <vector>

#include "commands.hpp"
#include "reach.hpp"

namespace ipckit::cli {
namespace {

struct RecvOptions {
    std::string address;
    long count = -1;
    double timeout = -1;
    Reach reach = Reach::automatic;
};

int run_recv(const RecvOptions& options) {
    Receiver receiver = reach_receiver(options.address, options.reach, deadline_after(options.timeout));
    if (const std::size_t waiting = receiver.waiting_at_open(); waiting > 0) {
        std::fprintf(stderr, "ipckit recv: %s: %zu message(s) were already waiting when it was opened\n",
                     options.address.c_str(), waiting);
    }
    std::vector<std::byte> message;
    for (long received = 0; options.count < 0 || received < options.count; ++received) {
        const IoResult r = receiver.recv(message, deadline_after(options.timeout));
        if (r.status == Status::closed) return 0;
        if (!r.ok()) {
            std::fprintf(stderr, "ipckit recv: %s: no message within %g s (received %ld)\n",
                         options.address.c_str(), options.timeout, received);
            return 1;
        }
        if (const std::uint64_t missed = receiver.missed(); missed != 0) {
            // A topic with overflow=drop lapped this subscriber: say what it lost, where it lost it.
            std::fprintf(stderr, "ipckit recv: %s: missed %llu messages (overflow=drop)\n",
                         options.address.c_str(), static_cast<unsigned long long>(missed));
        }
        std::fwrite(message.data(), 1, message.size(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);  // a message is shown when it arrives, also through a pipe
    }
    return 0;
}

void setup(CLI::App& app, int& exit_code) {
    auto options = std::make_shared<RecvOptions>();
    auto* command = app.add_subcommand("recv", "Receive messages from an address and print one per line");
    command
        ->add_option("address", options->address,
                     "where to receive, e.g. fifo:/tmp/x, unix:@svc, sysvmq:0x1234")
        ->required();
    command->add_option("--count", options->count, "stop after N messages")->check(CLI::PositiveNumber);
    command->add_option("--timeout", options->timeout, "fail if no message arrives within SECONDS");
    add_reach_options(*command, options->reach);
    command->callback([options, &exit_code] { exit_code = run_recv(*options); });
}

IPCKIT_COMMAND(20, setup);

}  // namespace
}  // namespace ipckit::cli
