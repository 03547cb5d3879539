// ipckit rm ADDRESS [--force] | ipckit rm --stale [--match PATTERN] [--dry-run] — removes one
// object, or every object of ours that nobody alive made or uses. One line per removal on
// stdout; one line per failure on stderr and exit status 1.
#include <cstdio>
#include <memory>
#include <string>

#include "commands.hpp"
#include "ipckit/error.hpp"
#include "ipckit/objects.hpp"

namespace {

struct RmOptions {
    std::string address;
    bool stale = false;
    bool dry_run = false;
    bool force = false;
    std::string match = "*";
};

int run_rm(const RmOptions& options) {
    if (options.stale == !options.address.empty()) {
        std::fputs("ipckit rm: give either one ADDRESS or --stale (see ipckit rm --help)\n", stderr);
        return 2;
    }
    if (!options.stale && (options.dry_run || options.match != "*")) {
        std::fputs("ipckit rm: --dry-run and --match go with --stale\n", stderr);
        return 2;
    }
    if (options.stale && options.force) {
        std::fputs("ipckit rm: --stale never removes another user's objects; --force goes with an ADDRESS\n",
                   stderr);
        return 2;
    }
    if (!options.stale) {
        try {
            const auto removed = ipckit::remove_object(options.address, {.force = options.force});
            std::printf("%s\n", removed.description.c_str());
            return 0;
        } catch (const ipckit::Error& e) {
            std::fprintf(stderr, "ipckit rm: %s\n", e.what());
            return 1;
        }
    }
    const auto report = ipckit::remove_stale({.match = options.match, .dry_run = options.dry_run});
    for (const auto& removed : report.removed)
        std::printf("%s\n", removed.description.c_str());
    for (const auto& error : report.errors)
        std::fprintf(stderr, "ipckit rm: %s\n", error.c_str());
    return report.errors.empty() ? 0 : 1;
}

void setup_rm(CLI::App& app, int& exit_code) {
    auto* command =
        app.add_subcommand("rm", "Remove one IPC object, or (--stale) those whose creator is gone");
    auto options = std::make_shared<RmOptions>();
    command->add_option("address", options->address,
                        "The object, as ipckit ls shows it (sysvmq:0x…, shm:/NAME, …)");
    command->add_flag("--stale", options->stale,
                      "Remove our objects whose creator is gone and that no live process uses");
    command->add_flag("--dry-run", options->dry_run,
                      "With --stale: list what would be removed, remove nothing");
    command->add_option("--match", options->match, "With --stale: only addresses matching this shell glob");
    command->add_flag("--force", options->force, "Remove an object even if another user owns it");
    command->callback([options, &exit_code] { exit_code = run_rm(*options); });
}

}  // namespace

IPCKIT_COMMAND(50, setup_rm);
