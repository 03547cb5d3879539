// The ipckit tool's subcommands. Each lives in its own file (send.cpp, recv.cpp, bench.cpp,
// ls.cpp, rm.cpp, bridge_command.cpp — not bridge.cpp, the library's Bridge) and registers
// itself with IPCKIT_COMMAND, so main.cpp never lists them. reach.hpp: how send and recv reach
// an address.
//
// A command's `setup` adds a CLI11 subcommand to the app and installs its callback. The
// callback runs the command and returns the process's exit status: 0 for success, 1 for a
// failure or a timeout (after printing a one-line reason to stderr). Usage errors are CLI11's
// (exit 2); an ipckit::Error that escapes is printed by main as "ipckit: <what>" (exit 1).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace ipckit::cli {

struct Command {
    int order;  // position in `ipckit --help`
    std::function<void(CLI::App& app, int& exit_code)> setup;
};

inline std::vector<Command>& commands() {
    static std::vector<Command> all;
    return all;
}

struct CommandRegistrar {
    explicit CommandRegistrar(Command command) { commands().push_back(std::move(command)); }
};

}  // namespace ipckit::cli

#define IPCKIT_COMMAND_CONCAT2(a, b) a##b
#define IPCKIT_COMMAND_CONCAT(a, b) IPCKIT_COMMAND_CONCAT2(a, b)
// IPCKIT_COMMAND(order, setup_function) — registers a subcommand.
#define IPCKIT_COMMAND(order, setup)                                                                \
    static const ::ipckit::cli::CommandRegistrar IPCKIT_COMMAND_CONCAT(ipckit_command_, __LINE__) { \
        { order, setup }                                                                            \
    }
