// ipckit call ADDRESS [TEXT] [--timeout SECONDS] — sends one request to a service and prints its
// reply. TEXT is the request, and the reply is printed as a line; without TEXT, or with `-`, the
// request is all of standard input and the reply is written byte for byte. An error reply from
// `ipckit serve` (error_reply.hpp) goes to stderr, and the exit status is 1.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "commands.hpp"
#include "error_reply.hpp"
#include "ipckit/io.hpp"
#include "ipckit/service.hpp"
#include "reach.hpp"

namespace ipckit::cli {
namespace {

struct CallOptions {
    std::string address;
    std::string text = "-";
    double timeout = -1;
};

int run_call(const CallOptions& options) {
    const bool from_stdin = options.text == "-";
    std::string request = options.text;
    if (from_stdin)
        request.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    Client client = Client::open(options.address);
    std::vector<std::byte> response;
    const IoResult r = client.call(as_bytes(request), response, deadline_after(options.timeout));
    const char* address = options.address.c_str();
    if (r.status == Status::timed_out) {
        std::fprintf(stderr, "ipckit call: %s: no server answered within %g s\n", address, options.timeout);
        return 1;
    }
    if (r.status == Status::closed) {
        std::fprintf(stderr, "ipckit call: %s: the server closed during the call\n", address);
        return 1;
    }
    const std::string_view reply(reinterpret_cast<const char*>(response.data()), response.size());
    if (is_error_reply(reply)) {
        std::fprintf(stderr, "ipckit call: %s: error reply: %.*s", address,
                     static_cast<int>(reply.size() - kErrorReplyMarker.size()),
                     reply.data() + kErrorReplyMarker.size());
        if (!reply.ends_with('\n')) std::fputc('\n', stderr);
        return 1;
    }
    std::fwrite(reply.data(), 1, reply.size(), stdout);
    if (!from_stdin && !reply.ends_with('\n')) std::fputc('\n', stdout);
    return 0;
}

void setup(CLI::App& app, int& exit_code) {
    auto options = std::make_shared<CallOptions>();
    auto* command = app.add_subcommand("call", "Send one request to a service and print its reply");
    command
        ->add_option("address", options->address, "the service, e.g. service:/upper, nats://hub:4222/upper")
        ->required();
    command->add_option("text", options->text,
                        "the request (printed reply ends with a newline); none or -: all of standard input "
                        "(reply written as is)");
    command->add_option("--timeout", options->timeout,
                        "fail if no server answers within SECONDS (default: wait for one)");
    command->callback([options, &exit_code] { exit_code = run_call(*options); });
}

IPCKIT_COMMAND(26, setup);

}  // namespace
}  // namespace ipckit::cli
