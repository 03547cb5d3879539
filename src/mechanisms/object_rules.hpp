// object_rules.hpp — the rules every creator of a named object checks, in one
// place: permission bits, POSIX IPC names (mq_open, shm_open), and what a file in the way is.
//
// Internal: used by the mechanisms (PosixQueue, PosixShm, SysvQueue, Fifo), the address parser
// and the tool, so a name one of them accepts is accepted by all, and a mode reads the same in
// every message and listing.
//
// A POSIX name is one leading '/' then 1 to N characters, none of them '/' or NUL, and not "."
// or "..". N is what the kernel and glibc allow each kind: NAME_MAX (255) for a queue (the
// kernel's limit on a name in the mqueue filesystem); 254 for shared memory (glibc's shm_open
// refuses a name of NAME_MAX characters).
//
// Example:
//     detail::check_mode(mode, "mkfifo", path);                   // throws for mode 01777
//     detail::check_posix_name(name, detail::PosixObject::queue); // throws naming the rule
//     detail::mode_text(0640)                                     // "0640"
//
// Errors: the check_ functions throw ipckit::Error(std::errc::invalid_argument) quoting the
// name or the mode. Thread-safety: pure functions.
#pragma once

#include <limits.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "ipckit/error.hpp"

namespace ipckit::detail {

// What a file of `mode` is, for a message that refuses it ("open(PATH): a directory, not a
// FIFO"): its type with an article, or `otherwise` for a type not named here.
[[nodiscard]] inline std::string file_kind(mode_t mode, std::string_view otherwise) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISLNK(mode)) return "a symbolic link";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    return std::string(otherwise);
}

// Permission bits in octal with a leading 0, as ls and chmod show them: "0600", "01777".
[[nodiscard]] inline std::string mode_text(mode_t mode) {
    char text[16];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode));
    return text;
}

// Throws unless `mode` holds permission bits only (no setuid, setgid, sticky or type bits).
inline void check_mode(mode_t mode, std::string_view call, std::string_view object) {
    if ((mode & ~mode_t{0777}) == 0) return;
    throw_error(std::errc::invalid_argument, std::string(call) + "(" + std::string(object) + "): mode " +
                                                 mode_text(mode) +
                                                 " has bits beyond the permission bits 0777");
}

enum class PosixObject { queue, shm };

// The characters allowed after the '/'.
[[nodiscard]] constexpr std::size_t posix_name_limit(PosixObject object) noexcept {
    return object == PosixObject::queue ? NAME_MAX : NAME_MAX - 1;
}

// "\"/NAME\": one leading '/' then 1-255 characters with no other '/'".
[[nodiscard]] inline std::string posix_name_rule(PosixObject object) {
    return "\"/NAME\": one leading '/' then 1-" + std::to_string(posix_name_limit(object)) +
           " characters with no other '/'";
}

// Why `name` is not a valid name for `object`, or nothing when it is.
[[nodiscard]] inline std::optional<std::string> posix_name_problem(std::string_view name,
                                                                   PosixObject object) {
    const std::string_view names = object == PosixObject::queue ? "queue names" : "shared memory names";
    if (name.empty()) return "it is empty";
    if (name.front() != '/') return "it must start with '/'";
    if (name.size() == 1) return "there is nothing after the '/'";
    if (name.find('/', 1) != std::string_view::npos) return "only the first character may be '/'";
    if (name.find('\0') != std::string_view::npos) return "it contains a NUL character";
    if (name == "/." || name == "/..") return "\".\" and \"..\" are not " + std::string(names);
    if (name.size() - 1 > posix_name_limit(object))
        return "it is longer than " + std::to_string(posix_name_limit(object)) + " characters after the '/'" +
               (object == PosixObject::queue ? " (NAME_MAX)" : " (NAME_MAX - 1, glibc's shm_open)");
    return std::nullopt;
}

// Throws: bad POSIX queue name "jobs": it must start with '/'; expected "/NAME": …
inline void check_posix_name(std::string_view name, PosixObject object) {
    const auto problem = posix_name_problem(name, object);
    if (!problem) return;
    throw_error(std::errc::invalid_argument,
                std::string(object == PosixObject::queue ? "bad POSIX queue name \""
                                                         : "bad POSIX shared memory name \"") +
                    std::string(name) + "\": " + *problem + "; expected " + posix_name_rule(object));
}

}  // namespace ipckit::detail
