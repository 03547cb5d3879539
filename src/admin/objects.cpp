// Where the creators of IPC objects come from (ipckit/objects.hpp). Each job of `ipckit ls` and
// `ipckit rm` has its own file in src/admin: scan (list_objects) and remove (remove_object,
// remove_stale). What they build on sits in the layers below: src/core/proc_text (reading
// /proc), src/channels/locator (the object an address names) and src/channels/registry (the
// records of what ipckit created).
#include "ipckit/objects.hpp"

namespace ipckit {

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

std::string_view kind_name(const IpcObject& object) noexcept {
    return object.service ? std::string_view("service") : to_string(object.kind);
}

}  // namespace ipckit
