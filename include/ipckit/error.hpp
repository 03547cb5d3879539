// ipckit/error.hpp — the one error type of ipckit.
//
// Every failure ipckit reports is an `ipckit::Error`: a `std::system_error` whose message
// names the failing call and the object it was applied to, then the system's reason:
//
//     mkfifo(/tmp/x): File exists
//     msgget(key 0x1234): Permission denied
//
// Expected outcomes (timed out, would block, peer closed) are never errors: they are values
// (see `ipckit::Status`). Errors are for what the caller must not ignore.
//
// Example:
//     try { ipckit::Fifo::create("/tmp/x"); }
//     catch (const ipckit::Error& e) {
//         if (e.code() == std::errc::file_exists) { ... }
//         std::cerr << e.what() << '\n';   // "mkfifo(/tmp/x): File exists"
//     }
//
// Thread-safety: an Error is an immutable value.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

namespace ipckit {

class Error : public std::system_error {
public:
    // `call` is what failed ("mkfifo"), `object` what it was applied to ("/tmp/x").
    Error(std::error_code code, std::string_view call, std::string_view object);
    // For failures found by ipckit itself (a corrupt header, a malformed address): the
    // message is given whole and `code` classifies it (e.g. std::errc::protocol_error).
    Error(std::error_code code, std::string_view message);

    [[nodiscard]] const std::string& call() const noexcept { return call_; }
    [[nodiscard]] const std::string& object() const noexcept { return object_; }

private:
    std::string call_;
    std::string object_;
};

// Throws an Error for `errno` (or `err`) as set by the failing call.
[[noreturn]] void throw_errno(std::string_view call, std::string_view object, int err = errno);
[[noreturn]] void throw_error(std::errc code, std::string_view message);

}  // namespace ipckit
