// ipckit serve ADDRESS [--timeout SECONDS] -- COMMAND [ARGS...] — answers each request on a
// service address by running COMMAND: the request on its stdin, the reply from its stdout. A
// command that exits non-zero (or is killed) gives an error reply (error_reply.hpp) carrying how
// it ended and its stderr. One request at a time; the next waits in the service.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.hpp"
#include "error_reply.hpp"
#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "ipckit/service.hpp"
#include "reach.hpp"

extern char** environ;

namespace ipckit::cli {
namespace {

struct ServeOptions {
    std::string address;
    std::vector<std::string> command;
    double timeout = -1;
};

std::atomic<bool> stopping{false};

void on_stop_signal(int) {
    stopping.store(true);
}

struct Pipe {
    int read = -1;
    int write = -1;
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2", "ipckit serve");
        read = fds[0];
        write = fds[1];
    }
};

void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

struct Ran {
    int status = 0;  // as waitpid gives it
    std::string out;
    std::string err;
};

// Runs `command` with `input` on its stdin, collecting stdout and stderr. posix_spawn, not fork:
// libnats's threads may be running in this process.
Ran run_command(const std::vector<std::string>& command, std::string_view input) {
    Pipe in, out, err;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in.read, 0);
    posix_spawn_file_actions_adddup2(&actions, out.write, 1);
    posix_spawn_file_actions_adddup2(&actions, err.write, 2);
    // The tool ignores SIGPIPE; the command gets the default back, as from a shell.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> argv;
    for (const auto& arg : command)
        argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int spawned = ::posix_spawnp(&pid, argv[0], &actions, &attributes, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    close_fd(in.read);
    close_fd(out.write);
    close_fd(err.write);
    Ran ran;
    if (spawned != 0) {
        close_fd(in.write);
        close_fd(out.read);
        close_fd(err.read);
        ran.status = 127 << 8;
        ran.err = "ipckit serve: cannot run " + command[0] + ": " + std::strerror(spawned) + "\n";
        return ran;
    }
    // Feed stdin while draining stdout and stderr, so a command that answers before it has read
    // everything never blocks on a full pipe.
    ::fcntl(in.write, F_SETFL, O_NONBLOCK);
    std::size_t fed = 0;
    if (input.empty()) close_fd(in.write);
    char buffer[65536];
    while (out.read >= 0 || err.read >= 0) {
        pollfd fds[3] = {{out.read, POLLIN, 0}, {err.read, POLLIN, 0}, {in.write, POLLOUT, 0}};
        if (::poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            throw_errno("poll", "ipckit serve: " + command[0]);
        }
        if (fds[2].revents != 0) {
            const ssize_t n = ::write(in.write, input.data() + fed, input.size() - fed);
            // A command that does not read its input (or exits first) is not an error of serve.
            if (n < 0 && errno != EAGAIN) close_fd(in.write);
            if (n > 0 && (fed += static_cast<std::size_t>(n)) == input.size()) close_fd(in.write);
        }
        for (auto [fd, text] : {std::pair{&out.read, &ran.out}, std::pair{&err.read, &ran.err}}) {
            const pollfd& polled = fd == &out.read ? fds[0] : fds[1];
            if (*fd < 0 || polled.revents == 0) continue;
            const ssize_t n = ::read(*fd, buffer, sizeof buffer);
            if (n > 0) text->append(buffer, static_cast<std::size_t>(n));
            if (n == 0 || (n < 0 && errno != EINTR)) close_fd(*fd);
        }
    }
    close_fd(in.write);
    while (::waitpid(pid, &ran.status, 0) < 0 && errno == EINTR) {
    }
    return ran;
}

std::string how_it_ended(const std::string& command, int status) {
    if (WIFSIGNALED(status)) return command + " was killed by signal " + std::to_string(WTERMSIG(status));
    return command + " exited with status " + std::to_string(WEXITSTATUS(status));
}

int run_serve(const ServeOptions& options) {
    struct sigaction stop {};
    stop.sa_handler = on_stop_signal;
    ::sigaction(SIGINT, &stop, nullptr);
    ::sigaction(SIGTERM, &stop, nullptr);
    Server server = Server::create(options.address);
    Request request;
    for (;;) {
        const Deadline idle = deadline_after(options.timeout);
        IoResult r{Status::timed_out, 0};
        // Short waits, so that SIGINT or SIGTERM ends the service between requests.
        while (!stopping.load()) {
            const auto slice = Deadline::after(std::chrono::milliseconds(200));
            r = server.recv(request, idle.when() < slice.when() ? idle : slice);
            if (r.status != Status::timed_out || idle.expired()) break;
        }
        if (stopping.load()) return 0;
        if (r.status == Status::closed) {
            std::fprintf(stderr, "ipckit serve: %s: the service was closed\n", options.address.c_str());
            return 1;
        }
        if (!r.ok()) {
            std::fprintf(stderr, "ipckit serve: %s: no request within %g s\n", options.address.c_str(),
                         options.timeout);
            return 1;
        }
        const Ran ran =
            run_command(options.command,
                        std::string_view(reinterpret_cast<const char*>(request.message.data()), r.bytes));
        const bool succeeded = WIFEXITED(ran.status) && WEXITSTATUS(ran.status) == 0;
        if (succeeded && !ran.err.empty()) std::fwrite(ran.err.data(), 1, ran.err.size(), stderr);
        std::string reply =
            succeeded ? ran.out : error_reply(how_it_ended(options.command[0], ran.status), ran.err);
        if (reply.size() > server.max_message_size()) {
            reply = error_reply(options.command[0] + "'s reply of " + std::to_string(ran.out.size()) +
                                    " B is over the service's limit of " +
                                    std::to_string(server.max_message_size()) + " B",
                                "");
        }
        // A client that gave up or died is no reason to stop serving the others.
        (void)server.reply(request.handle, as_bytes(reply));
    }
}

void setup(CLI::App& app, int& exit_code) {
    auto options = std::make_shared<ServeOptions>();
    auto* command = app.add_subcommand(
        "serve",
        "Answer each request on a service by running a command (request on stdin, reply from stdout)");
    command
        ->add_option("address", options->address, "the service, e.g. service:/upper, nats://hub:4222/upper")
        ->required();
    command->add_option("command", options->command, "after --: the command and its arguments")->required();
    command->add_option("--timeout", options->timeout,
                        "exit (status 1) when no request comes within SECONDS");
    command->callback([options, &exit_code] { exit_code = run_serve(*options); });
}

IPCKIT_COMMAND(25, setup);

}  // namespace
}  // namespace ipckit::cli
