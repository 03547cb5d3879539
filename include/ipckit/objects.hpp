// ipckit/objects.hpp — finding and removing the IPC objects left on this machine.
//
// Kernel objects outlive the processes that made them: a System V queue or segment, a
// POSIX queue, a file in /dev/shm, a FIFO or a socket file stays until someone removes it.
// `list_objects` finds them, says who made each one and whether anyone still uses it;
// `remove_object` removes one by address; `remove_stale` removes those nobody alive made
// or uses. docs/objects.md explains every column and rule.
//
// Where objects are found:
//   sysvmq   /proc/sysvipc/msg          sysvshm  /proc/sysvipc/shm
//   posixmq  /dev/mqueue (when mounted; otherwise only the queues in ipckit's registry)
//   shm      /dev/shm
//   fifo, unix  only those in ipckit's registry: the kernel keeps no list of them
//
// The creator: the kernel records it only for System V segments (`cpid`). For every other
// kind it comes from ipckit's registry — a per-user directory where whoever creates an
// object writes a small record (`registry_record`) — or it is unknown (the registry itself is
// ipckit/registry.hpp). An unknown creator counts as gone: such an object is stale as soon as no live process
// uses it (that is how a queue made by `ipcmk -Q` becomes stale once ipcmk has exited).
//
// Example:
//     for (const auto& object : ipckit::list_objects())
//         if (object.stale) std::cout << object.address << '\n';
//     auto removed = ipckit::remove_object("shm:/myapp-ring");   // "removed shm:/myapp-ring"
//     auto swept = ipckit::remove_stale({.match = "shm:/myapp-*"});
//
// Errors: `remove_object` throws `ipckit::Error`: std::errc::invalid_argument for a malformed
// address, no_such_file_or_directory for a missing object, operation_not_permitted for an
// object owned by another user (unless forced) or one that is not of the addressed kind (a
// regular file or a symbolic link at a fifo: address), and the system's reason otherwise.
// `list_objects` never throws for what it cannot read (it skips it); the registry functions
// never throw and never fail the caller.
// Thread-safety: every function may be called from any thread; none keeps state in memory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ipckit/registry.hpp"

namespace ipckit {

// Where an object's creator PID came from.
enum class CreatorSource {
    unknown,   // nobody recorded it (creator_pid is 0)
    kernel,    // System V segment: the kernel's cpid
    registry,  // ipckit's registry: the process that called registry_record
};

[[nodiscard]] std::string_view to_string(CreatorSource source) noexcept;

struct IpcObject {
    ObjectKind kind = ObjectKind::shm;
    // As `ipckit send` and `ipckit rm` take it: sysvmq:0x0000abcd, sysvmq:id=42 (a private
    // queue, which no key reaches), sysvshm:0x…, sysvshm:id=…, posixmq:/NAME, shm:/NAME,
    // fifo:PATH, unix:PATH.
    std::string address;
    uid_t owner_uid = 0;
    std::string owner;  // user name, or the uid in decimal when it has no name
    mode_t mode = 0;    // permission bits
    // Bytes held (queues: bytes queued; segments and /dev/shm files: their size); empty when
    // unknown (a POSIX queue found only through the registry while /dev/mqueue is unmounted).
    std::optional<std::uint64_t> size;
    std::optional<std::uint64_t> messages;  // queues only: messages queued
    int sysv_id = -1;                       // System V objects: the kernel's id
    pid_t creator_pid = 0;                  // 0 when unknown
    CreatorSource creator_source = CreatorSource::unknown;
    bool creator_alive = false;  // false when the creator is unknown
    // The creator recorded a PID namespace that is not ours (a container's): creator_pid is its
    // pid there, no process of ours; its liveness is unknown, so it counts as alive while the
    // object is in use.
    bool creator_in_other_pid_namespace = false;
    // A live process has it attached (segments: nattch > 0), open or mapped (files, POSIX
    // queues), bound (sockets), or, for a System V queue, is its last sender or receiver or
    // is blocked in msgsnd/msgrcv on it.
    bool in_use = false;
    pid_t last_sender_pid = 0;    // System V queues: the kernel's lspid (0: none yet)
    pid_t last_receiver_pid = 0;  // System V queues: the kernel's lrpid
    // Neither its creator nor any user is alive: what `remove_stale` removes (if ours).
    bool stale = false;
    // A service (service:/NAME, docs/services.md): its server and clients, as its region says.
    // The address is then service:/NAME (`ipckit rm` takes it), the kind still the shm file's.
    struct Service {
        std::uint32_t clients = 0;           // client slots
        std::uint32_t clients_attached = 0;  // slots held by a live client
        bool server_alive = false;
        pid_t server_pid = 0;  // in the server's own PID namespace
        std::uint64_t calls = 0, replies = 0, replies_dropped = 0, takeovers = 0;
    };
    std::optional<Service> service;  // empty for every other object
};

// What `ipckit ls` shows in its KIND column: "service" for a service, else to_string(kind).
[[nodiscard]] std::string_view kind_name(const IpcObject& object) noexcept;

// Every object this process can see, sorted by kind, then address. Never throws for an
// unreadable source or process: it is skipped (processes of other users are invisible to a
// non-root caller, so their opens cannot be seen). Prunes registry records whose object is gone.
[[nodiscard]] std::vector<IpcObject> list_objects();

// Whether `address` matches a shell glob (fnmatch(3), '*' also matches '/'): "shm:/myapp-*".
[[nodiscard]] bool address_matches(std::string_view address, std::string_view pattern);

struct RemoveOptions {
    // Remove even an object owned by another user (when the system allows it). Without it an
    // object whose owner uid is not ours is refused — even for root, who could remove it.
    bool force = false;
};

struct RemovedObject {
    ObjectKind kind = ObjectKind::shm;
    std::string address;
    std::string description;  // one line: "removed sysvshm:0x00001234 (id 7)"
};

// Removes the object at `address` (options after '?' are ignored): IPC_RMID for System V
// objects (a segment still attached goes when its last user detaches, and the description
// says so), mq_unlink, shm_unlink, or unlink for a FIFO or a socket file — only if the path
// really is one, never a regular file and never through a symbolic link. Also forgets the
// registry record. Throws as described at the top of this file.
[[nodiscard]] RemovedObject remove_object(std::string_view address, RemoveOptions options = {});

struct StaleOptions {
    std::string match = "*";  // only addresses matching this glob
    bool dry_run = false;     // report what would be removed, remove nothing
};

struct StaleReport {
    std::vector<RemovedObject> removed;  // or, with dry_run, what would be
    std::vector<std::string> errors;     // one line per object that could not be removed
};

// Removes every stale object that matches and that we own (never forced). An object that
// vanished meanwhile is skipped silently; other failures are reported, not thrown.
[[nodiscard]] StaleReport remove_stale(const StaleOptions& options = {});

}  // namespace ipckit
