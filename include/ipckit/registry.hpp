// ipckit/registry.hpp — ipckit's registry of the objects it created.
//
// Kernel objects outlive their makers, and for most kinds (a POSIX queue, a /dev/shm file, a FIFO,
// a socket file) the kernel does not record who made one. So whoever creates an object writes a
// small record (its address, its creator's pid and start time, the file's identity) into a
// private per-user directory, and forgets it when the object goes; `ipckit ls` and
// `ipckit rm --stale` (ipckit/objects.hpp) read these records. Channels record what they create
// by themselves; code that makes objects another way may call `registry_record` too.
//
// Example:
//     auto shm = ipckit::PosixShm::create("/frames", 1 << 20);
//     ipckit::registry_record(ipckit::ObjectKind::shm, "shm:/frames");
//     ...
//     ipckit::registry_forget(ipckit::ObjectKind::shm, "shm:/frames");
//
// Errors: none. The registry is a convenience: no function here throws or fails its caller;
// when the directory is unusable a record is simply not written.
// Thread-safety: every function may be called from any thread; none keeps state in memory.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ipckit {

struct Address;

// The kind of an object is the scheme of its address.
enum class ObjectKind { sysvmq, sysvshm, posixmq, shm, fifo, unix_socket };

// "sysvmq", "sysvshm", "posixmq", "shm", "fifo", "unix".
[[nodiscard]] std::string_view to_string(ObjectKind kind) noexcept;

// ipckit's registry of the objects it created. Called by whoever creates an object, right
// after an exclusive create: the channel layer with the address it parsed, other code with
// an address in text (for a private System V object, "sysvmq:id=N" / "sysvshm:id=N"). Never
// throws, never fails the caller: if the registry directory is unusable the record is simply
// not written. The directory is $IPCKIT_REGISTRY_DIR, else $XDG_RUNTIME_DIR/ipckit, else
// /tmp/ipckit-UID; it must be a real directory (not a symlink), owned by us, with no group or
// other access.
void registry_record(ObjectKind kind, std::string_view address) noexcept;
void registry_forget(ObjectKind kind, std::string_view address) noexcept;

// An object's name in the registry: its kind and its address as `list_objects` prints it.
struct RegistryEntry {
    ObjectKind kind = ObjectKind::shm;
    std::string address;
};

// Records the object `address` names, without parsing any text again, and returns the entry
// to forget it by; nothing for an address that names no lasting object (tcp:, fd:, an
// abstract socket, a private System V key).
[[nodiscard]] std::optional<RegistryEntry> registry_record(const Address& address) noexcept;
void registry_forget(const RegistryEntry& entry) noexcept;

// The registry directory in use, or empty if none is usable (for `ipckit ls` and the docs).
[[nodiscard]] std::string registry_directory();

}  // namespace ipckit
