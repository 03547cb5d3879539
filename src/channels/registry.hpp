// Internal: ipckit's registry — one small record file per object it created, in a private
// per-user directory (the public side is ipckit/registry.hpp). The channels write records; the
// admin layer (src/admin: `ipckit ls`, `ipckit rm`) reads and prunes them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ipckit/registry.hpp"
#include "locator.hpp"

namespace ipckit::detail {

struct Record {
    ObjectKind kind = ObjectKind::shm;
    std::string address;  // canonical
    pid_t pid = 0;
    std::uint64_t start_ticks = 0;
    std::uint64_t pid_namespace = 0;  // the creator's (0: not recorded); pid means something there
    std::int64_t created = 0;
    Identity identity;
    std::string file;  // record file name inside the directory
    ino_t file_ino = 0;
};

// The directory in use, or empty if none is usable.
[[nodiscard]] std::string find_registry_directory();
// Every well-formed record in `dir`.
[[nodiscard]] std::vector<Record> read_records(const std::string& dir);
// Removes a record only if it is still the file that was read: the object may have been
// created again meanwhile, and its fresh record must survive.
void prune_record(const std::string& dir, const Record& record);

}  // namespace ipckit::detail
