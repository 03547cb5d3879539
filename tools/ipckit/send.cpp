// ipckit send ADDRESS [MESSAGE...] — sends each argument as a message, or each line of
// standard input when there are none.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "ipckit/io.hpp"
#include "reach.hpp"

namespace ipckit::cli {
namespace {

struct SendOptions {
    std::string address;
    std::vector<std::string> messages;
    double timeout = -1;
    Reach reach = Reach::automatic;
};

// Sends one message; false (after saying why on stderr) if it could not be sent.
// The first message's deadline is the one the open began with: --timeout bounds the wait for a
// receiver as a whole, not once for the object and again for the receiver.
bool send_one(Sender& sender, const std::string& message, const SendOptions& options, std::size_t& sent,
              Deadline first) {
    const IoResult r = sender.send(as_bytes(message), sent == 0 ? first : deadline_after(options.timeout));
    if (r.ok()) {
        ++sent;
        return true;
    }
    const std::string why = r.status == Status::closed      ? "the receiver closed"
                            : r.status == Status::timed_out ? "timed out waiting for a receiver or for room"
                                                            : std::string(to_string(r.status));
    const std::string how_far =
        sent == 0 ? "nothing was delivered" : std::to_string(sent) + " message(s) were sent before";
    std::fprintf(stderr, "ipckit send: %s: %s; %s\n", options.address.c_str(), why.c_str(), how_far.c_str());
    return false;
}

// The exit status says whether everything was delivered or stored: a queue left holding
// messages is said on stderr (it stays for a receiver), records a ring lost are a failure.
int finish(Sender& sender, const SendOptions& options) {
    const SenderClose report = sender.close();
    const char* address = options.address.c_str();
    if (report.stored > 0) {
        std::fprintf(stderr,
                     "ipckit send: %s: %zu message(s) stay in the queue for a receiver; take them with "
                     "`ipckit recv %s`, or remove them with `ipckit rm %s`\n",
                     address, report.stored, address, address);
    }
    if (report.undelivered) {
        std::fprintf(stderr,
                     "ipckit send: %s: the receiver went away before it took every message; some were "
                     "not delivered\n",
                     address);
        return 1;
    }
    return 0;
}

int run_send(const SendOptions& options) {
    const Deadline first = deadline_after(options.timeout);
    Sender sender = reach_sender(options.address, options.reach, first);
    std::size_t sent = 0;
    if (!options.messages.empty()) {
        for (const auto& message : options.messages) {
            if (!send_one(sender, message, options, sent, first)) return 1;
        }
        return finish(sender, options);
    }
    std::string line;
    while (std::getline(std::cin, line)) {
        if (!send_one(sender, line, options, sent, first)) return 1;
    }
    return finish(sender, options);
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
