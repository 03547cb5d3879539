// The kinds of IPC objects and where their creators come from (ipckit/objects.hpp). Each job
// of `ipckit ls` and `ipckit rm` has its own file in src/admin: proc_text (reading /proc),
// locator (the object an address names), registry (records of what ipckit created), scan
// (list_objects) and remove (remove_object, remove_stale).
#include "ipckit/objects.hpp"

#include "locator.hpp"

namespace ipckit {

std::string_view to_string(ObjectKind kind) noexcept {
    switch (kind) {
        case ObjectKind::sysvmq:
            return "sysvmq";
        case ObjectKind::sysvshm:
            return "sysvshm";
        case ObjectKind::posixmq:
            return "posixmq";
        case ObjectKind::shm:
            return "shm";
        case ObjectKind::fifo:
            return "fifo";
        case ObjectKind::unix_socket:
            return "unix";
    }
    return "unknown";
}

std::string_view to_string(CreatorSource source) noexcept {
    switch (source) {
        case CreatorSource::unknown:
            return "unknown";
        case CreatorSource::kernel:
            return "kernel";
        case CreatorSource::registry:
            return "registry";
    }
    return "unknown";
}

namespace admin {

std::optional<ObjectKind> kind_from_text(std::string_view text) {
    for (const auto kind : {ObjectKind::sysvmq, ObjectKind::sysvshm, ObjectKind::posixmq, ObjectKind::shm,
                            ObjectKind::fifo, ObjectKind::unix_socket})
        if (to_string(kind) == text) return kind;
    return std::nullopt;
}

}  // namespace admin

}  // namespace ipckit
