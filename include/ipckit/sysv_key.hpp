// ipckit/sysv_key.hpp — the key that names a System V IPC object (message queue, segment).
//
// System V objects are found by a 32-bit `key_t`, not by a path. A key comes from one of
// three places, and `SysvKey` remembers which, so an error can say what the user typed:
//
//     "1234", "0x1234"   an explicit key, decimal or hexadecimal (as `ipcs` prints it)
//     "PATH#PROJ"        ftok(PATH, PROJ): PATH must exist; PROJ is a number 1–255 or one
//                        character ("/tmp/app#A" is ftok("/tmp/app", 'A'))
//     "private"          IPC_PRIVATE: a new object every time, reachable only by its id
//
// The key 0 is IPC_PRIVATE to the kernel, so "0" is refused: say "private" if you mean it.
// ftok keys are not unique: ftok mixes the low bits of the file's inode and device numbers
// with PROJ, so two files can collide. Prefer an explicit key when you control both sides.
//
// Example:
//     auto key = ipckit::SysvKey::parse("/etc/hostname#7");
//     int id = ::msgget(key.value(), 0);
//     if (id < 0) ipckit::throw_errno("msgget", key.to_string());  // "msgget(key 0x7… (/etc/hostname#7)): …"
//
// Errors: `parse` and `from_file` throw `ipckit::Error` (std::errc::invalid_argument for
// malformed text, quoting it; ftok's errno for a missing file, naming it).
// Thread-safety: a SysvKey is an immutable value.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace ipckit {

class SysvKey {
public:
    // An explicit key; 0 (IPC_PRIVATE) is refused, use `private_key()`.
    [[nodiscard]] static SysvKey explicit_key(key_t key);
    // ftok(path, project); `project` must be 1–255 (ftok uses only its low 8 bits).
    [[nodiscard]] static SysvKey from_file(std::string_view path, int project);
    [[nodiscard]] static SysvKey private_key() noexcept { return SysvKey(); }
    // "1234", "0x1234", "PATH#PROJ" or "private" (see the top of this file).
    [[nodiscard]] static SysvKey parse(std::string_view text);

    [[nodiscard]] key_t value() const noexcept { return key_; }
    [[nodiscard]] bool is_private() const noexcept { return origin_.empty() && key_ == 0; }
    // For error messages: "key 0x1234", "key 0x4104abcd (/tmp/app#65)", "private key".
    [[nodiscard]] std::string to_string() const;

    friend bool operator==(const SysvKey& a, const SysvKey& b) noexcept { return a.key_ == b.key_; }

private:
    SysvKey() noexcept = default;
    key_t key_ = 0;       // IPC_PRIVATE
    std::string origin_;  // "PATH#PROJ" for ftok keys, empty otherwise
};

}  // namespace ipckit
