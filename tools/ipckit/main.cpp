// ipckit — move messages between processes from the shell, list and remove IPC objects,
// and measure every mechanism side by side. `ipckit --help` lists the commands.
#include <algorithm>
#include <cstdio>
#include <exception>

#include "commands.hpp"
#include "ipckit/io.hpp"

int main(int argc, char** argv) {
    // A reader that goes away is reported as "closed" by every write; the signal would only
    // kill the tool instead (and ignoring it spares the library its per-write guard).
    ipckit::ignore_sigpipe();
    CLI::App app{"ipckit: inter-process communication from the shell, and its benchmark", "ipckit"};
    app.set_version_flag("--version", "ipckit " IPCKIT_VERSION);
    app.require_subcommand(1);
    int exit_code = 0;
    auto& all = ipckit::cli::commands();
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
    for (const auto& command : all)
        command.setup(app, exit_code);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // One line on stderr, as for every other error, and the usage status.
        std::fprintf(stderr, "ipckit: %s (see ipckit --help)\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ipckit: %s\n", e.what());
        return 1;
    }
    return exit_code;
}
