// Listing the IPC objects on this machine and who uses them (ipckit/objects.hpp: list_objects).
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "channels/locator.hpp"
#include "channels/registry.hpp"
#include "core/proc_text.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/objects.hpp"
#include "ipckit/process.hpp"
#include "rings/service_region.hpp"

namespace ipckit {
namespace {

using namespace detail;

// /proc/sysvipc/{msg,shm}: a header line names the columns; find them by name.
std::vector<std::map<std::string, std::string>> read_sysvipc_table(const char* path, bool& ok) {
    std::vector<std::map<std::string, std::string>> rows;
    const auto text = read_small_file(path);
    ok = text.has_value();
    if (!text) return rows;
    const auto lines = split_lines(*text);
    if (lines.empty()) return rows;
    const auto header = split_words(lines[0]);
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const auto values = split_words(lines[i]);
        if (values.size() != header.size()) continue;
        std::map<std::string, std::string> row;
        for (std::size_t c = 0; c < header.size(); ++c)
            row.emplace(header[c], values[c]);
        rows.push_back(std::move(row));
    }
    return rows;
}

template <typename Number>
Number column(const std::map<std::string, std::string>& row, const char* name, int base = 10) {
    Number value{};
    if (const auto it = row.find(name); it != row.end()) (void)parse_number(it->second, value, base);
    return value;
}

struct FileKey {
    dev_t dev;
    ino_t ino;
    auto operator<=>(const FileKey&) const = default;
};

struct Scan {
    std::vector<IpcObject> objects;
    std::map<FileKey, std::size_t> files;        // /dev/shm, /dev/mqueue, FIFOs: by device and inode
    std::map<int, std::size_t> queues;           // System V queues by id
    std::map<std::string, std::size_t> sockets;  // socket files by path
    std::set<ObjectKind> complete;               // kinds whose source was read in full
};

void list_sysv(Scan& scan) {
    bool ok = false;
    for (const auto& row : read_sysvipc_table("/proc/sysvipc/msg", ok)) {
        IpcObject object;
        object.kind = ObjectKind::sysvmq;
        object.sysv_id = column<int>(row, "msqid");
        object.address = sysv_address(object.kind, column<key_t>(row, "key"), object.sysv_id);
        object.owner_uid = column<uid_t>(row, "uid");
        object.mode = column<mode_t>(row, "perms", 8) & 0777;
        object.size = column<std::uint64_t>(row, "cbytes");
        object.messages = column<std::uint64_t>(row, "qnum");
        object.last_sender_pid = column<pid_t>(row, "lspid");
        object.last_receiver_pid = column<pid_t>(row, "lrpid");
        object.in_use =
            ProcessRef{object.last_sender_pid}.alive() || ProcessRef{object.last_receiver_pid}.alive();
        scan.queues.emplace(object.sysv_id, scan.objects.size());
        scan.objects.push_back(std::move(object));
    }
    if (ok) scan.complete.insert(ObjectKind::sysvmq);

    for (const auto& row : read_sysvipc_table("/proc/sysvipc/shm", ok)) {
        IpcObject object;
        object.kind = ObjectKind::sysvshm;
        object.sysv_id = column<int>(row, "shmid");
        object.address = sysv_address(object.kind, column<key_t>(row, "key"), object.sysv_id);
        object.owner_uid = column<uid_t>(row, "uid");
        object.mode = column<mode_t>(row, "perms", 8) & 0777;
        object.size = column<std::uint64_t>(row, "size");
        object.creator_pid = column<pid_t>(row, "cpid");
        object.creator_source = CreatorSource::kernel;
        object.in_use = column<unsigned long>(row, "nattch") > 0;
        scan.objects.push_back(std::move(object));
    }
    if (ok) scan.complete.insert(ObjectKind::sysvshm);
}

// /dev/shm and a mounted /dev/mqueue: every entry is an object.
void list_directory(Scan& scan, ObjectKind kind, const char* dir) {
    DIR* listing = ::opendir(dir);
    if (listing == nullptr) return;
    while (const dirent* entry = ::readdir(listing)) {
        const std::string name = entry->d_name;
        if (name == "." || name == "..") continue;
        const std::string path = std::string(dir) + "/" + name;
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        IpcObject object;
        object.kind = kind;
        object.address = std::string(to_string(kind)) + ":/" + name;
        object.owner_uid = st.st_uid;
        object.mode = st.st_mode & 07777;
        if (kind == ObjectKind::shm) {
            object.size = static_cast<std::uint64_t>(st.st_size);
        } else if (const auto text = read_small_file(path)) {
            // "QSIZE:129 NOTIFY:0 SIGNO:0 NOTIFY_PID:0": QSIZE counts the bytes queued.
            std::uint64_t bytes = 0;
            const auto words = split_words(*text);
            if (!words.empty() && words[0].starts_with("QSIZE:") && parse_number(words[0].substr(6), bytes))
                object.size = bytes;
        }
        scan.files.emplace(FileKey{st.st_dev, st.st_ino}, scan.objects.size());
        scan.objects.push_back(std::move(object));
    }
    ::closedir(listing);
    scan.complete.insert(kind);
}

IpcObject* find_object(Scan& scan, ObjectKind kind, const std::string& address) {
    for (auto& object : scan.objects)
        if (object.kind == kind && object.address == address) return &object;
    return nullptr;
}

// Brings in what only the registry knows (FIFOs, socket files, queues in an unmounted
// /dev/mqueue), names the creators, and prunes the records whose object is gone.
void merge_registry(Scan& scan, const std::string& dir, bool mqueue_listed) {
    for (const auto& record : read_records(dir)) {
        bool exists = false;
        IpcObject* object = nullptr;
        switch (record.kind) {
            case ObjectKind::sysvmq:
            case ObjectKind::sysvshm:
            case ObjectKind::shm:
                if (!scan.complete.contains(record.kind)) continue;  // cannot tell: keep the record
                object = find_object(scan, record.kind, record.address);
                if (object != nullptr && record.identity.sysv_id >= 0 &&
                    object->sysv_id != record.identity.sysv_id)
                    object = nullptr;  // the same key now names another object
                if (object != nullptr && record.kind == ObjectKind::shm) {
                    const auto now =
                        file_identity(kShmDir + record.address.substr(record.address.find(':') + 1), S_IFREG);
                    if (!now || !record.identity.same_file(*now)) object = nullptr;  // made again since
                }
                exists = object != nullptr;
                break;
            case ObjectKind::posixmq:
                if (mqueue_listed) {
                    object = find_object(scan, record.kind, record.address);
                    exists = object != nullptr;
                    break;
                }
                {
                    const std::string name = record.address.substr(record.address.find(':') + 1);
                    const auto probe = probe_mqueue(name);
                    if (probe.error == ENOENT) break;
                    exists = true;
                    IpcObject found;
                    found.kind = ObjectKind::posixmq;
                    found.address = record.address;
                    found.owner_uid = probe.error == 0 ? probe.st.st_uid : static_cast<uid_t>(-1);
                    found.mode = probe.error == 0 ? probe.st.st_mode & 07777 : 0;
                    found.messages = probe.messages;
                    if (probe.error == 0)
                        scan.files.emplace(FileKey{probe.st.st_dev, probe.st.st_ino}, scan.objects.size());
                    scan.objects.push_back(std::move(found));
                    object = &scan.objects.back();
                }
                break;
            case ObjectKind::fifo:
            case ObjectKind::unix_socket: {
                const std::string path = record.address.substr(record.address.find(':') + 1);
                uid_t owner = 0;
                mode_t mode = 0;
                const auto now =
                    file_identity(path, record.kind == ObjectKind::fifo ? S_IFIFO : S_IFSOCK, &owner, &mode);
                if (!now || !record.identity.same_file(*now)) break;
                exists = true;
                if ((object = find_object(scan, record.kind, record.address)) != nullptr) break;
                IpcObject found;
                found.kind = record.kind;
                found.address = record.address;
                found.owner_uid = owner;
                found.mode = mode;
                found.size = 0;
                if (record.kind == ObjectKind::fifo) {
                    scan.files.emplace(FileKey{now->dev, now->ino}, scan.objects.size());
                } else {
                    scan.sockets.emplace(path, scan.objects.size());
                }
                scan.objects.push_back(std::move(found));
                object = &scan.objects.back();
                break;
            }
        }
        if (!exists) {
            prune_record(dir, record);
            continue;
        }
        if (object != nullptr && object->creator_source == CreatorSource::unknown) {
            object->creator_pid = record.pid;
            object->creator_source = CreatorSource::registry;
            object->creator_in_other_pid_namespace =
                record.pid_namespace != 0 && record.pid_namespace != pid_namespace_inode();
            object->creator_alive =
                !object->creator_in_other_pid_namespace && ProcessRef{record.pid, record.start_ticks}.alive();
        }
    }
}

// Which of the objects a live process has open, mapped, bound or is waiting on.
void scan_users(Scan& scan) {
    if (!scan.sockets.empty()) {
        // /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path"; the path is the rest
        // of the line after the seventh field and may hold spaces.
        if (const auto text = read_small_file("/proc/net/unix")) {
            for (const auto line : split_lines(*text)) {
                std::size_t at = 0;
                for (int field = 0; field < 7 && at != std::string_view::npos; ++field) {
                    at = line.find_first_not_of(' ', at);
                    if (at != std::string_view::npos) at = line.find(' ', at);
                }
                if (at == std::string_view::npos || at + 1 >= line.size()) continue;
                if (const auto it = scan.sockets.find(std::string(line.substr(at + 1)));
                    it != scan.sockets.end())
                    scan.objects[it->second].in_use = true;
            }
        }
    }
    if (scan.files.empty() && scan.queues.empty()) return;
    // Only /dev/shm files are mapped in practice; reading every process's maps takes each
    // one's memory-map lock, so it is done only when there is such a file to look for.
    const bool need_maps = std::any_of(scan.objects.begin(), scan.objects.end(),
                                       [](const IpcObject& o) { return o.kind == ObjectKind::shm; });

    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return;
    while (const dirent* entry = ::readdir(proc)) {
        if (!is_pid_name(entry->d_name)) continue;
        const std::string base = std::string("/proc/") + entry->d_name;
        if (!scan.files.empty()) {
            // Open descriptors: stat follows each link to the object itself.
            Fd fd_dir(::open((base + "/fd").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (fd_dir) {
                DIR* fds = ::fdopendir(fd_dir.release());
                while (const dirent* fd_entry = fds != nullptr ? ::readdir(fds) : nullptr) {
                    struct stat st {};
                    if (fd_entry->d_name[0] == '.' || ::fstatat(::dirfd(fds), fd_entry->d_name, &st, 0) != 0)
                        continue;
                    if (const auto it = scan.files.find({st.st_dev, st.st_ino}); it != scan.files.end())
                        scan.objects[it->second].in_use = true;
                }
                if (fds != nullptr) ::closedir(fds);
            }
            // Mappings outlive the descriptor they were made from: "addr perms offset MAJ:MIN inode path".
            if (const auto maps = need_maps ? read_small_file(base + "/maps") : std::nullopt) {
                for (const auto line : split_lines(*maps)) {
                    const auto words = split_words(line);
                    if (words.size() < 6) continue;
                    const auto colon = words[3].find(':');
                    unsigned major_number = 0, minor_number = 0;
                    ino_t inode = 0;
                    if (colon == std::string_view::npos ||
                        !parse_number(words[3].substr(0, colon), major_number, 16) ||
                        !parse_number(words[3].substr(colon + 1), minor_number, 16) ||
                        !parse_number(words[4], inode) || inode == 0)
                        continue;
                    const FileKey key{::makedev(major_number, minor_number), inode};
                    if (const auto it = scan.files.find(key); it != scan.files.end())
                        scan.objects[it->second].in_use = true;
                }
            }
        }
        if (!scan.queues.empty()) {
            // A process blocked in msgrcv or msgsnd uses its queue although the kernel records
            // it nowhere else: /proc/PID/task/TID/syscall shows "NR 0xMSQID …" while it waits.
            DIR* tasks = ::opendir((base + "/task").c_str());
            while (const dirent* task = tasks != nullptr ? ::readdir(tasks) : nullptr) {
                if (!is_pid_name(task->d_name)) continue;
                const auto text = read_small_file(base + "/task/" + task->d_name + "/syscall");
                if (!text) continue;
                const auto words = split_words(*text);
                long number = -1;
                int queue_id = -1;
                if (words.size() < 2 || !parse_number(words[0], number) ||
                    (number != SYS_msgrcv && number != SYS_msgsnd) || !parse_number(words[1], queue_id, 16))
                    continue;
                if (const auto it = scan.queues.find(queue_id); it != scan.queues.end())
                    scan.objects[it->second].in_use = true;
            }
            if (tasks != nullptr) ::closedir(tasks);
        }
    }
    ::closedir(proc);
}

// A /dev/shm file that is a service region (layout kind 4): its server and clients, read with
// pread into copies (nothing is mapped, so a file truncated meanwhile reads short, never SIGBUS;
// every value is only shown, and each is checked before it picks an offset).
std::optional<IpcObject::Service> read_service(const std::string& path) {
    const Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    alignas(service::ServiceHeader) std::byte copy[sizeof(service::ServiceHeader)];
    if (!fd || ::pread(fd.get(), copy, sizeof copy, 0) != static_cast<ssize_t>(sizeof copy))
        return std::nullopt;
    const auto& header = *reinterpret_cast<const service::ServiceHeader*>(copy);
    const auto& control = header.control;
    if (control.magic.load(std::memory_order_relaxed) != region::kMagic ||
        control.version != region::kVersion || control.kind != region::Kind::service)
        return std::nullopt;
    const std::uint64_t slots = control.kind_words[0];
    const std::uint64_t stride = control.kind_words[1];
    if (slots < 1 || slots > service::kMaxClients || stride < 2 * ring::kHeaderSize) return std::nullopt;
    const auto alive = [](const ring::EndpointLine& line) {
        return ring::OwnerWord::unpack(line.owner.load(std::memory_order_relaxed)).state ==
                   ring::EndpointState::attached &&
               ring::holder_alive(line.holder.load(std::memory_order_relaxed));
    };
    IpcObject::Service s;
    s.clients = static_cast<std::uint32_t>(slots);
    s.server_alive = alive(header.server_end);
    s.server_pid = static_cast<pid_t>(ring::OwnerWord::unpack(header.server_end.owner.load()).pid);
    s.calls = header.server.calls.load(std::memory_order_relaxed);
    s.replies = header.server.replies.load(std::memory_order_relaxed);
    s.replies_dropped = header.server.replies_dropped.load(std::memory_order_relaxed);
    s.takeovers = header.server.takeovers.load(std::memory_order_relaxed);
    for (std::uint64_t i = 0; i < slots; ++i) {
        // A client is its slot's request ring's producer end.
        alignas(ring::EndpointLine) std::byte line[sizeof(ring::EndpointLine)];
        const auto offset = static_cast<off_t>(service::kServiceHeaderSize + i * stride +
                                               offsetof(ring::RingHeader, producer_end));
        if (::pread(fd.get(), line, sizeof line, offset) != static_cast<ssize_t>(sizeof line)) break;
        if (alive(*reinterpret_cast<const ring::EndpointLine*>(line))) ++s.clients_attached;
    }
    return s;
}

// Services are shm files to the scan (their registry records name shm:/NAME); once the records
// are merged, each is named as a service.
void name_services(Scan& scan) {
    for (auto& object : scan.objects) {
        if (object.kind != ObjectKind::shm) continue;
        const std::string name = object.address.substr(object.address.find('/') + 1);
        if ((object.service = read_service(std::string(kShmDir) + "/" + name)))
            object.address = "service:/" + name;
    }
}

}  // namespace

std::vector<IpcObject> list_objects() {
    Scan scan;
    list_sysv(scan);
    list_directory(scan, ObjectKind::shm, kShmDir);
    const bool mqueue_listed = mqueue_mounted();
    if (mqueue_listed) list_directory(scan, ObjectKind::posixmq, kMqueueDir);
    if (const std::string dir = find_registry_directory(); !dir.empty())
        merge_registry(scan, dir, mqueue_listed);
    scan_users(scan);
    name_services(scan);

    std::map<uid_t, std::string> names;
    for (auto& object : scan.objects) {
        if (object.creator_source == CreatorSource::kernel)
            object.creator_alive = ProcessRef{object.creator_pid}.alive();
        if (object.creator_in_other_pid_namespace) object.creator_alive = object.in_use;
        object.stale = !object.creator_alive && !object.in_use;
        auto [it, inserted] = names.try_emplace(object.owner_uid);
        if (inserted) it->second = user_name(object.owner_uid);
        object.owner = it->second;
    }
    std::sort(scan.objects.begin(), scan.objects.end(), [](const IpcObject& a, const IpcObject& b) {
        return std::pair(a.kind, a.address) < std::pair(b.kind, b.address);
    });
    return std::move(scan.objects);
}

bool address_matches(std::string_view address, std::string_view pattern) {
    return ::fnmatch(std::string(pattern).c_str(), std::string(address).c_str(), 0) == 0;
}

}  // namespace ipckit
