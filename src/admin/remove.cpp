// Removing IPC objects by address, and the stale ones (ipckit/objects.hpp: remove_object,
// remove_stale).
#include <fcntl.h>
#include <mqueue.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "channels/locator.hpp"
#include "core/proc_text.hpp"
#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/objects.hpp"

namespace ipckit {
namespace {

using namespace detail;

[[noreturn]] void not_found(const Locator& locator, std::string_view where) {
    std::string message = "no such object: " + locator.canonical;
    if (!where.empty()) message += " (" + std::string(where) + ")";
    throw_error(std::errc::no_such_file_or_directory, message);
}

void check_owner(const Locator& locator, uid_t owner, const RemoveOptions& options) {
    if (options.force || owner == ::geteuid()) return;
    throw_error(std::errc::operation_not_permitted,
                locator.canonical + " is owned by " + describe_user(owner) + ", not by you, " +
                    describe_user(::geteuid()) + ": not removed (--force removes it anyway)");
}

std::string sysv_details(int id, std::optional<std::uint64_t> messages, std::uint64_t bytes) {
    std::string text = " (id " + std::to_string(id);
    if (messages) text += ", " + std::to_string(*messages) + " messages";
    text += ", " + std::to_string(bytes) + " bytes)";
    return text;
}

std::string remove_sysvmq(const Locator& locator, const RemoveOptions& options) {
    const int id = locator.by_id ? locator.id : ::msgget(locator.key, 0);
    if (id < 0) {
        if (errno == ENOENT) not_found(locator, "");
        throw_errno("msgget", locator.canonical);
    }
    msqid_ds ds{};
    if (::msgctl(id, IPC_STAT, &ds) != 0) {
        if (errno == EINVAL || errno == EIDRM) not_found(locator, "");
        throw_errno("msgctl(IPC_STAT)", locator.canonical);
    }
    check_owner(locator, ds.msg_perm.uid, options);
    if (::msgctl(id, IPC_RMID, nullptr) != 0) {
        if (errno == EINVAL || errno == EIDRM) not_found(locator, "");
        throw_errno("msgctl(IPC_RMID)", locator.canonical);
    }
    return "removed " + locator.canonical + sysv_details(id, ds.msg_qnum, ds.msg_cbytes);
}

std::string remove_sysvshm(const Locator& locator, const RemoveOptions& options) {
    const int id = locator.by_id ? locator.id : ::shmget(locator.key, 0, 0);
    if (id < 0) {
        if (errno == ENOENT) not_found(locator, "");
        throw_errno("shmget", locator.canonical);
    }
    shmid_ds ds{};
    if (::shmctl(id, IPC_STAT, &ds) != 0) {
        if (errno == EINVAL || errno == EIDRM) not_found(locator, "");
        throw_errno("shmctl(IPC_STAT)", locator.canonical);
    }
    check_owner(locator, ds.shm_perm.uid, options);
    if (::shmctl(id, IPC_RMID, nullptr) != 0) {
        if (errno == EINVAL || errno == EIDRM) not_found(locator, "");
        throw_errno("shmctl(IPC_RMID)", locator.canonical);
    }
    if (ds.shm_nattch > 0)
        return "marked " + locator.canonical + " for removal" + sysv_details(id, std::nullopt, ds.shm_segsz) +
               ": it goes when its " + std::to_string(ds.shm_nattch) + " attached process(es) detach";
    return "removed " + locator.canonical + sysv_details(id, std::nullopt, ds.shm_segsz);
}

std::string remove_posixmq(const Locator& locator, const RemoveOptions& options) {
    uid_t owner = static_cast<uid_t>(-1);
    if (mqueue_mounted()) {
        struct stat st {};
        if (::lstat((kMqueueDir + locator.path).c_str(), &st) != 0) {
            if (errno == ENOENT) not_found(locator, "");
            throw_errno("lstat", std::string(kMqueueDir) + locator.path);
        }
        owner = st.st_uid;
    } else {
        const auto probe = probe_mqueue(locator.path);
        if (probe.error == ENOENT) not_found(locator, "");
        if (probe.error != 0 && !options.force)
            throw_error(std::errc::operation_not_permitted,
                        "cannot tell who owns " + locator.canonical +
                            " (mq_open: " + std::generic_category().message(probe.error) +
                            "): not removed (--force removes it anyway)");
        if (probe.error == 0) owner = probe.st.st_uid;
    }
    if (owner != static_cast<uid_t>(-1)) check_owner(locator, owner, options);
    if (::mq_unlink(locator.path.c_str()) != 0) {
        if (errno == ENOENT) not_found(locator, "");
        throw_errno("mq_unlink", locator.canonical);
    }
    return "removed " + locator.canonical;
}

std::string remove_shm(const Locator& locator, const RemoveOptions& options) {
    const std::string path = kShmDir + locator.path;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) not_found(locator, "nothing at " + path);
        throw_errno("lstat", path);
    }
    if (!S_ISREG(st.st_mode))
        throw_error(std::errc::operation_not_permitted,
                    path + " is not a shared memory object (" +
                        (S_ISLNK(st.st_mode) ? "a symbolic link" : "not a regular file") + "): not removed");
    check_owner(locator, st.st_uid, options);
    if (::shm_unlink(locator.path.c_str()) != 0) {
        if (errno == ENOENT) not_found(locator, "");
        throw_errno("shm_unlink", locator.canonical);
    }
    return "removed " + locator.canonical + " (" + std::to_string(st.st_size) + " bytes)";
}

std::string file_type_name(mode_t mode) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISLNK(mode)) return "a symbolic link";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    return "a device or special file";
}

// Works inside the parent directory so that the name checked is the name unlinked: the last
// component is never followed, whatever it is.
std::string remove_file(const Locator& locator, const RemoveOptions& options) {
    const std::filesystem::path path(locator.path);
    const std::string parent = path.has_parent_path() ? path.parent_path().string() : ".";
    const std::string name = path.filename().string();
    if (name.empty() || name == "." || name == "..")
        bad_address(locator.canonical, "expected a path that ends in a file name");
    Fd dir(::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
        if (errno == ENOENT || errno == ENOTDIR) not_found(locator, "no directory " + parent);
        throw_errno("open", parent);
    }
    struct stat st {};
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) not_found(locator, "nothing at " + locator.path);
        throw_errno("fstatat", locator.path);
    }
    const bool fifo = locator.kind == ObjectKind::fifo;
    if (fifo ? !S_ISFIFO(st.st_mode) : !S_ISSOCK(st.st_mode))
        throw_error(std::errc::operation_not_permitted, locator.path + " is " + file_type_name(st.st_mode) +
                                                            ", not " + (fifo ? "a FIFO" : "a socket") +
                                                            ": not removed");
    check_owner(locator, st.st_uid, options);
    if (::unlinkat(dir.get(), name.c_str(), 0) != 0) {
        if (errno == ENOENT) not_found(locator, "");
        throw_errno("unlink", locator.path);
    }
    return "removed " + locator.canonical;
}

}  // namespace

RemovedObject remove_object(std::string_view address, RemoveOptions options) {
    const Locator locator = parse_locator(address);
    RemovedObject removed;
    removed.kind = locator.kind;
    removed.address = locator.canonical;
    switch (locator.kind) {
        case ObjectKind::sysvmq:
            removed.description = remove_sysvmq(locator, options);
            break;
        case ObjectKind::sysvshm:
            removed.description = remove_sysvshm(locator, options);
            break;
        case ObjectKind::posixmq:
            removed.description = remove_posixmq(locator, options);
            break;
        case ObjectKind::shm:
            removed.description = remove_shm(locator, options);
            break;
        case ObjectKind::fifo:
        case ObjectKind::unix_socket:
            removed.description = remove_file(locator, options);
            break;
    }
    registry_forget(locator.kind, locator.canonical);
    return removed;
}

StaleReport remove_stale(const StaleOptions& options) {
    StaleReport report;
    for (const auto& object : list_objects()) {
        if (!object.stale || object.owner_uid != ::geteuid() ||
            !address_matches(object.address, options.match))
            continue;
        std::string why = object.creator_source == CreatorSource::unknown
                              ? "creator unknown"
                              : "creator " + std::to_string(object.creator_pid) + " gone";
        why += ", not in use";
        if (options.dry_run) {
            report.removed.push_back(
                {object.kind, object.address, "would remove " + object.address + " (" + why + ")"});
            continue;
        }
        // System V objects go by id: the key may have been given to a new object meanwhile.
        const std::string target = object.sysv_id >= 0 ? std::string(to_string(object.kind)) +
                                                             ":id=" + std::to_string(object.sysv_id)
                                                       : object.address;
        try {
            auto removed = remove_object(target);
            if (target != object.address) registry_forget(object.kind, object.address);
            removed.address = object.address;
            removed.description = "removed " + object.address + " (" + why + ")";
            report.removed.push_back(std::move(removed));
        } catch (const Error& e) {
            if (e.code() != std::errc::no_such_file_or_directory) report.errors.push_back(e.what());
        }
    }
    return report;
}

}  // namespace ipckit
