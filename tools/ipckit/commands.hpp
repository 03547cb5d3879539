// The ipckit tool's subcommands: each lives in its own file and adds itself to the app.
// A subcommand's callback runs the command and sets `exit_code` (0 success, 1 failure or
// timeout); usage errors are CLI11's (exit 2) and failures are exceptions caught in main.
#pragma once

#include <CLI/CLI.hpp>

namespace ipckit::cli {

// Set by the subcommand that ran; main returns it.
inline int exit_code = 0;

}  // namespace ipckit::cli
