// Internal: the object an address names — where it lives, and what tells it from a later
// object at the same address. Addresses are parsed by the one parser, parse_address.
#pragma once

#include <sys/ipc.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ipckit/address.hpp"
#include "ipckit/registry.hpp"

namespace ipckit::detail {

inline constexpr const char* kShmDir = "/dev/shm";
inline constexpr const char* kMqueueDir = "/dev/mqueue";

struct Locator {
    ObjectKind kind = ObjectKind::shm;
    std::string canonical;  // the address as list_objects prints it
    std::string path;       // fifo/unix: as given; posixmq/shm: "/NAME"
    bool by_id = false;     // System V: id=N
    int id = -1;
    key_t key = IPC_PRIVATE;
};

// The lasting object `address` names, or nothing when it names none: tcp:, fd:, an abstract
// socket, a private System V key. Throws only where a key needs ftok and ftok fails.
[[nodiscard]] std::optional<Locator> locate(const Address& address);
// The same from text, options after '?' ignored; throws Error(invalid_argument) saying why an
// address names no object that can be listed or removed.
[[nodiscard]] Locator parse_locator(std::string_view address);

// "sysvmq:0x0000abcd", or "sysvmq:id=42" for a private object.
[[nodiscard]] std::string sysv_address(ObjectKind kind, key_t key, int id);

// "sysvmq" → ObjectKind::sysvmq (the inverse of to_string).
[[nodiscard]] std::optional<ObjectKind> kind_from_text(std::string_view text);

[[noreturn]] void bad_address(std::string_view address, std::string_view expected);

// What tells an object from a later one at the same address: the System V id, or the file's
// device, inode and birth time (an inode number is reused as soon as it is freed; the birth
// time, where the filesystem keeps one, tells the two apart).
struct Identity {
    dev_t dev = 0;
    ino_t ino = 0;
    std::int64_t birth_ns = 0;  // 0: unknown
    int sysv_id = -1;

    [[nodiscard]] bool same_file(const Identity& now) const {
        if (ino == 0) return true;  // nothing was recorded: take the address's word
        return dev == now.dev && ino == now.ino &&
               (birth_ns == 0 || now.birth_ns == 0 || birth_ns == now.birth_ns);
    }
};

// lstat with the birth time; `type` is the file type the object must have.
[[nodiscard]] std::optional<Identity> file_identity(const std::string& path, mode_t type,
                                                    uid_t* owner = nullptr, mode_t* mode = nullptr);
[[nodiscard]] Identity identify(const Locator& locator);

// A POSIX queue has no file to stat unless /dev/mqueue is mounted: open it to learn about it.
struct MqueueProbe {
    int error = 0;
    struct stat st {};
    std::optional<std::uint64_t> messages;
};
[[nodiscard]] MqueueProbe probe_mqueue(const std::string& name);
[[nodiscard]] bool mqueue_mounted();

}  // namespace ipckit::detail
