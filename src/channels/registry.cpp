// ipckit's registry of the objects it created (registry.hpp; the public side ipckit/registry.hpp).
#include "registry.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "core/proc_text.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/process.hpp"

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

namespace detail {

std::optional<ObjectKind> kind_from_text(std::string_view text) {
    for (const auto kind : {ObjectKind::sysvmq, ObjectKind::sysvshm, ObjectKind::posixmq, ObjectKind::shm,
                            ObjectKind::fifo, ObjectKind::unix_socket})
        if (to_string(kind) == text) return kind;
    return std::nullopt;
}

namespace {

bool usable_private_directory(const std::string& path) {
    if (path.empty()) return false;
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return false;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return false;
    return S_ISDIR(st.st_mode) && st.st_uid == ::geteuid() && (st.st_mode & 077) == 0;
}

}  // namespace

std::string find_registry_directory() {
    if (const char* explicit_dir = std::getenv("IPCKIT_REGISTRY_DIR"); explicit_dir != nullptr)
        return usable_private_directory(explicit_dir) ? explicit_dir : "";
    if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime != nullptr && *runtime == '/') {
        const std::string dir = std::string(runtime) + "/ipckit";
        if (usable_private_directory(dir)) return dir;
    }
    const std::string dir = "/tmp/ipckit-" + std::to_string(::geteuid());
    return usable_private_directory(dir) ? dir : "";
}

namespace {

std::string record_file_name(ObjectKind kind, std::string_view address) {
    std::uint64_t hash = 14695981039346656037ull;  // FNV-1a: a short, stable name for any address
    for (const char c : address) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 1099511628211ull;
    }
    char name[64];
    std::snprintf(name, sizeof name, "%s-%016llx.rec", std::string(to_string(kind)).c_str(),
                  static_cast<unsigned long long>(hash));
    return name;
}

// Writes the record of the object at `locator`, made by this process. Never throws.
void write_record(const Locator& locator) noexcept {
    try {
        if (locator.canonical.find('\n') != std::string::npos) return;  // one field per line
        const std::string dir = find_registry_directory();
        if (dir.empty()) return;
        const Identity identity = identify(locator);
        // A private System V object is found by id only: record it under that address.
        const ObjectKind kind = locator.kind;
        if ((kind == ObjectKind::sysvmq || kind == ObjectKind::sysvshm) && identity.sysv_id < 0) return;

        const ProcessRef self = ProcessRef::self();
        std::string text = "kind=" + std::string(to_string(kind)) + "\naddress=" + locator.canonical +
                           "\npid=" + std::to_string(self.pid) +
                           "\nstart=" + std::to_string(self.start_ticks) +
                           "\npidns=" + std::to_string(pid_namespace_inode()) +
                           "\ncreated=" + std::to_string(static_cast<long long>(std::time(nullptr))) + "\n";
        if (identity.sysv_id >= 0) text += "id=" + std::to_string(identity.sysv_id) + "\n";
        if (identity.ino != 0)
            text += "dev=" + std::to_string(identity.dev) + "\nino=" + std::to_string(identity.ino) +
                    "\nbirth=" + std::to_string(identity.birth_ns) + "\n";

        std::string temporary = dir + "/.record-XXXXXX";
        Fd fd(::mkostemp(temporary.data(), O_CLOEXEC));  // 0600, exclusive
        if (!fd) return;
        const bool written = ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
        fd.reset();
        // Rename makes the record appear whole, and replaces the record of an earlier object
        // that had this address.
        if (!written ||
            ::rename(temporary.c_str(), (dir + "/" + record_file_name(kind, locator.canonical)).c_str()) != 0)
            ::unlink(temporary.c_str());
    } catch (...) {
        // The registry is a convenience: losing a record must never fail the creation.
    }
}

void forget_record(ObjectKind kind, const std::string& canonical) noexcept {
    try {
        const std::string dir = find_registry_directory();
        if (dir.empty()) return;
        ::unlink((dir + "/" + record_file_name(kind, canonical)).c_str());
    } catch (...) {
    }
}

}  // namespace

std::vector<Record> read_records(const std::string& dir) {
    std::vector<Record> records;
    Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!dir_fd) return records;
    DIR* listing = ::fdopendir(::dup(dir_fd.get()));
    if (listing == nullptr) return records;
    while (const dirent* entry = ::readdir(listing)) {
        const std::string name = entry->d_name;
        if (!name.ends_with(".rec")) continue;
        Fd fd(::openat(dir_fd.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        struct stat st {};
        if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        const auto text = read_small_file(name, dir_fd.get());
        if (!text) continue;
        Record record;
        record.file = name;
        record.file_ino = st.st_ino;
        bool has_kind = false;
        for (const auto line : split_lines(*text)) {
            const auto equals = line.find('=');
            if (equals == std::string_view::npos) continue;
            const auto field = line.substr(0, equals);
            const auto value = line.substr(equals + 1);
            if (field == "kind") {
                if (const auto kind = kind_from_text(value)) {
                    record.kind = *kind;
                    has_kind = true;
                }
            } else if (field == "address") {
                record.address = std::string(value);
            } else if (field == "pid") {
                (void)parse_number(value, record.pid);
            } else if (field == "start") {
                (void)parse_number(value, record.start_ticks);
            } else if (field == "pidns") {
                (void)parse_number(value, record.pid_namespace);
            } else if (field == "created") {
                (void)parse_number(value, record.created);
            } else if (field == "dev") {
                (void)parse_number(value, record.identity.dev);
            } else if (field == "ino") {
                (void)parse_number(value, record.identity.ino);
            } else if (field == "birth") {
                (void)parse_number(value, record.identity.birth_ns);
            } else if (field == "id") {
                (void)parse_number(value, record.identity.sysv_id);
            }
        }
        // A record whose name does not match its address was not written by us: ignore it.
        if (has_kind && !record.address.empty() && record_file_name(record.kind, record.address) == name)
            records.push_back(std::move(record));
    }
    ::closedir(listing);
    return records;
}

void prune_record(const std::string& dir, const Record& record) {
    const std::string path = dir + "/" + record.file;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && st.st_ino == record.file_ino) ::unlink(path.c_str());
}

}  // namespace detail

std::string registry_directory() {
    return detail::find_registry_directory();
}

void registry_record(ObjectKind kind, std::string_view address) noexcept {
    try {
        const detail::Locator locator = detail::parse_locator(address);
        if (locator.kind == kind) detail::write_record(locator);
    } catch (...) {
    }
}

std::optional<RegistryEntry> registry_record(const Address& address) noexcept {
    try {
        const auto locator = detail::locate(address);
        if (!locator) return std::nullopt;
        detail::write_record(*locator);
        return RegistryEntry{locator->kind, locator->canonical};
    } catch (...) {
        return std::nullopt;  // a key that ftok cannot compute names nothing to record
    }
}

void registry_forget(ObjectKind kind, std::string_view address) noexcept {
    try {
        detail::forget_record(kind, detail::parse_locator(address).canonical);
    } catch (...) {
    }
}

void registry_forget(const RegistryEntry& entry) noexcept {
    detail::forget_record(entry.kind, entry.address);
}

}  // namespace ipckit
