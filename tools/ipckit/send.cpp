// ipckit send ADDRESS [MESSAGE...] — sends each argument as a message, or each line of
// standard input when there are none.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "endpoint.hpp"
#include "ipckit/io.hpp"

namespace ipckit::cli {
namespace {

struct SendOptions {
    std::string address;
    std::vector<std::string> messages;
    double timeout = -1;
    Reach reach = Reach::automatic;
};

// Sends one message; false (after saying why on stderr) if it could not be sent.
bool send_one(Sender& sender, const std::string& message, const SendOptions& options) {
    const IoResult r = sender.send(as_bytes(message), deadline_after(options.timeout));
    if (r.ok()) return true;
    std::fprintf(
        stderr, "ipckit send: %s: %s\n", options.address.c_str(),
        r.status == Status::closed ? "the receiver closed" : std::string(to_string(r.status)).c_str());
    return false;
}

int run_send(const SendOptions& options) {
    Sender sender = reach_sender(options.address, options.reach, deadline_after(options.timeout));
    if (!options.messages.empty()) {
        for (const auto& message : options.messages) {
            if (!send_one(sender, message, options)) return 1;
        }
        return 0;
    }
    std::string line;
    while (std::getline(std::cin, line)) {
        if (!send_one(sender, line, options)) return 1;
    }
    return 0;
}

void setup(CLI::App& app, int& exit_code) {
    auto options = std::make_shared<SendOptions>();
    auto* command = app.add_subcommand("send", "Send messages to an address (arguments, or lines of stdin)");
    command
        ->add_option("address", options->address, "where to send, e.g. fifo:/tmp/x, unix:@svc, sysvmq:0x1234")
        ->required();
    command->add_option("message", options->messages, "messages to send; none: each line of standard input");
    command->add_option("--timeout", options->timeout,
                        "give up after SECONDS waiting for the receiver or for room");
    add_reach_options(*command, options->reach);
    command->callback([options, &exit_code] { exit_code = run_send(*options); });
}

IPCKIT_COMMAND(10, setup);

}  // namespace
}  // namespace ipckit::cli
