// ipckit — move messages between processes from the shell, list and remove IPC objects,
// and measure every mechanism side by side. `ipckit --help` lists the commands.
#include <cstdio>
#include <exception>

#include "commands.hpp"
#include "ipckit/error.hpp"

int main(int argc, char** argv) {
    CLI::App app{"ipckit: inter-process communication from the shell, and its benchmark", "ipckit"};
    app.set_version_flag("--version", "ipckit " IPCKIT_VERSION);
    app.require_subcommand(1);
    app.fallthrough(false);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ipckit: %s\n", e.what());
        return 1;
    }
    return ipckit::cli::exit_code;
}
