// Finding and removing IPC objects; ipckit's registry of the objects it created.
#include "ipckit/objects.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <mqueue.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>
#include <utility>

#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/sysv_key.hpp"

namespace ipckit {
namespace {

constexpr const char* kShmDir = "/dev/shm";
constexpr const char* kMqueueDir = "/dev/mqueue";
constexpr long kMqueueMagic = 0x19800202;  // MQUEUE_MAGIC from linux/magic.h

// ---------------------------------------------------------------------------------------
// Small readers. Everything under /proc can vanish between two calls: a failure is "absent".

std::optional<std::string> read_small_file(const std::string& path, int dir_fd = AT_FDCWD) {
    Fd fd(::openat(dir_fd, path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return std::nullopt;
    std::string text;
    std::array<char, 4096> buffer{};
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        if (n == 0) break;
        text.append(buffer.data(), static_cast<std::size_t>(n));
        if (text.size() > (64u << 20)) return std::nullopt;  // no /proc file we read is this big
    }
    return text;
}

template <typename Number>
bool parse_number(std::string_view text, Number& out, int base = 10) {
    if (base == 16 && text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
        text.remove_prefix(2);
    if (text.empty()) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
    return ec == std::errc() && end == text.data() + text.size();
}

std::vector<std::string_view> split_words(std::string_view line) {
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
            ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t')
            ++i;
        if (i > start) words.push_back(line.substr(start, i - start));
    }
    return words;
}

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        const auto end = text.find('\n');
        lines.push_back(text.substr(0, end));
        if (end == std::string_view::npos) break;
        text.remove_prefix(end + 1);
    }
    return lines;
}

bool is_pid_name(const char* name) {
    if (*name == '\0') return false;
    for (; *name != '\0'; ++name)
        if (*name < '0' || *name > '9') return false;
    return true;
}

// ---------------------------------------------------------------------------------------
// Processes.

struct ProcessStat {
    char state = '?';
    std::uint64_t start_ticks = 0;  // since boot: tells a process from a later one with its PID
};

std::optional<ProcessStat> read_process_stat(pid_t pid) {
    const auto text = read_small_file("/proc/" + std::to_string(pid) + "/stat");
    if (!text) return std::nullopt;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    const auto close = text->rfind(')');
    if (close == std::string::npos) return std::nullopt;
    const auto fields = split_words(std::string_view(*text).substr(close + 1));
    // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    if (fields.size() < 20 || fields[0].empty()) return std::nullopt;
    ProcessStat stat;
    stat.state = fields[0][0];
    if (!parse_number(fields[19], stat.start_ticks)) return std::nullopt;
    return stat;
}

// Alive means running or sleeping: a zombie holds nothing and will never act again. With
// `start_ticks`, a process that merely reuses the PID is not the one we are asking about.
bool process_alive(pid_t pid, std::uint64_t start_ticks = 0) {
    if (pid <= 0) return false;
    const auto stat = read_process_stat(pid);
    if (!stat) {
        // /proc may hide other users' processes (hidepid): fall back to asking the kernel.
        return ::kill(pid, 0) == 0 || errno == EPERM;
    }
    if (stat->state == 'Z' || stat->state == 'X' || stat->state == 'x') return false;
    return start_ticks == 0 || stat->start_ticks == start_ticks;
}

std::string user_name(uid_t uid) {
    static_assert(sizeof(uid_t) <= sizeof(unsigned long));
    if (uid == static_cast<uid_t>(-1)) return "unknown";
    passwd entry{};
    passwd* found = nullptr;
    std::array<char, 4096> buffer{};
    if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr)
        return found->pw_name;
    return std::to_string(uid);
}

std::string describe_user(uid_t uid) {
    return user_name(uid) + " (uid " + std::to_string(uid) + ")";
}

// ---------------------------------------------------------------------------------------
// Addresses: the object part of a channel address (options after '?' are ignored).

struct Locator {
    ObjectKind kind = ObjectKind::shm;
    std::string canonical;  // the address as list_objects prints it
    std::string path;       // fifo/unix: as given; posixmq/shm: "/NAME"
    bool by_id = false;     // System V: id=N
    int id = -1;
    key_t key = IPC_PRIVATE;
};

[[noreturn]] void bad_address(std::string_view address, std::string_view expected) {
    std::string message = "address \"";
    message += address;
    message += "\": ";
    message += expected;
    throw_error(std::errc::invalid_argument, message);
}

std::string key_text(key_t key) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%08x", static_cast<unsigned>(key));
    return text;
}

std::string sysv_address(ObjectKind kind, key_t key, int id) {
    std::string address(to_string(kind));
    address += ':';
    address += key == IPC_PRIVATE ? "id=" + std::to_string(id) : key_text(key);
    return address;
}

Locator parse_locator(std::string_view address) {
    const std::string_view without_options = address.substr(0, address.find('?'));
    const auto colon = without_options.find(':');
    if (colon == std::string_view::npos)
        bad_address(address, "expected KIND:OBJECT, KIND one of sysvmq sysvshm posixmq shm fifo unix");
    const std::string_view scheme = without_options.substr(0, colon);
    const std::string_view target = without_options.substr(colon + 1);
    Locator locator;
    if (scheme == "sysvmq" || scheme == "sysvshm") {
        locator.kind = scheme == "sysvmq" ? ObjectKind::sysvmq : ObjectKind::sysvshm;
        if (target.starts_with("id=")) {
            if (!parse_number(target.substr(3), locator.id) || locator.id < 0)
                bad_address(address, "expected id=N with N the kernel's id (as ipcs shows it)");
            locator.by_id = true;
        } else {
            const SysvKey key = SysvKey::parse(target);
            if (key.is_private())
                bad_address(address, "a private object has no key: address it by its id, e.g. " +
                                         std::string(scheme) + ":id=42");
            locator.key = key.value();
        }
        locator.canonical = sysv_address(locator.kind, locator.key, locator.id);
        return locator;
    }
    if (scheme == "posixmq" || scheme == "shm") {
        locator.kind = scheme == "shm" ? ObjectKind::shm : ObjectKind::posixmq;
        const std::string_view name = target.substr(target.empty() ? 0 : 1);
        if (!target.starts_with('/') || name.empty() || name.find('/') != std::string_view::npos ||
            name == "." || name == ".." || name.size() > NAME_MAX)
            bad_address(address, "expected " + std::string(scheme) +
                                     ":/NAME, one '/' then a name of 1-255 characters");
        locator.path = std::string(target);
        locator.canonical = std::string(scheme) + ":" + locator.path;
        return locator;
    }
    if (scheme == "fifo" || scheme == "unix" || scheme == "unix+seqpacket" || scheme == "unix+dgram") {
        locator.kind = scheme == "fifo" ? ObjectKind::fifo : ObjectKind::unix_socket;
        if (target.empty()) bad_address(address, "expected " + std::string(scheme) + ":PATH");
        if (target.starts_with('@'))
            bad_address(address, "an abstract socket has no file: it goes away with its last descriptor");
        locator.path = std::string(target);
        std::error_code ignored;
        const auto absolute = std::filesystem::absolute(locator.path, ignored).lexically_normal();
        locator.canonical = std::string(to_string(locator.kind)) + ":" +
                            (absolute.empty() ? locator.path : absolute.string());
        return locator;
    }
    if (scheme == "tcp" || scheme == "fd")
        bad_address(address, "a " + std::string(scheme) + " address names no object that stays behind");
    bad_address(address, "unknown kind \"" + std::string(scheme) +
                             "\"; expected sysvmq sysvshm posixmq shm fifo unix");
}

// ---------------------------------------------------------------------------------------
// The registry: one record file per object in a private directory.

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
std::optional<Identity> file_identity(const std::string& path, mode_t type, uid_t* owner = nullptr,
                                      mode_t* mode = nullptr) {
    struct statx sx {};
    if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &sx) != 0)
        return std::nullopt;
    if ((sx.stx_mode & S_IFMT) != type) return std::nullopt;
    Identity identity;
    identity.dev = ::makedev(sx.stx_dev_major, sx.stx_dev_minor);
    identity.ino = sx.stx_ino;
    if ((sx.stx_mask & STATX_BTIME) != 0)
        identity.birth_ns =
            static_cast<std::int64_t>(sx.stx_btime.tv_sec) * 1'000'000'000 + sx.stx_btime.tv_nsec;
    if (owner != nullptr) *owner = sx.stx_uid;
    if (mode != nullptr) *mode = sx.stx_mode & 07777;
    return identity;
}

struct Record {
    ObjectKind kind = ObjectKind::shm;
    std::string address;  // canonical
    pid_t pid = 0;
    std::uint64_t start_ticks = 0;
    std::int64_t created = 0;
    Identity identity;
    std::string file;  // record file name inside the directory
    ino_t file_ino = 0;
};

bool usable_private_directory(const std::string& path) {
    if (path.empty()) return false;
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return false;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return false;
    return S_ISDIR(st.st_mode) && st.st_uid == ::geteuid() && (st.st_mode & 077) == 0;
}

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

std::optional<ObjectKind> kind_from_text(std::string_view text) {
    for (const auto kind : {ObjectKind::sysvmq, ObjectKind::sysvshm, ObjectKind::posixmq, ObjectKind::shm,
                            ObjectKind::fifo, ObjectKind::unix_socket})
        if (to_string(kind) == text) return kind;
    return std::nullopt;
}

// A POSIX queue has no file to stat unless /dev/mqueue is mounted: open it to learn about it.
struct MqueueProbe {
    int error = 0;
    struct stat st {};
    std::optional<std::uint64_t> messages;
};

MqueueProbe probe_mqueue(const std::string& name) {
    MqueueProbe probe;
    const mqd_t mq = ::mq_open(name.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (mq == static_cast<mqd_t>(-1)) {
        probe.error = errno;
        return probe;
    }
    if (::fstat(mq, &probe.st) != 0) probe.error = errno;  // on Linux an mqd_t is a descriptor
    mq_attr attr{};
    if (::mq_getattr(mq, &attr) == 0) probe.messages = static_cast<std::uint64_t>(attr.mq_curmsgs);
    ::mq_close(mq);
    return probe;
}

bool mqueue_mounted() {
    struct statfs fs {};
    return ::statfs(kMqueueDir, &fs) == 0 && fs.f_type == kMqueueMagic;
}

Identity identify(const Locator& locator) {
    Identity identity;
    switch (locator.kind) {
        case ObjectKind::sysvmq:
            identity.sysv_id = locator.by_id ? locator.id : ::msgget(locator.key, 0);
            break;
        case ObjectKind::sysvshm:
            identity.sysv_id = locator.by_id ? locator.id : ::shmget(locator.key, 0, 0);
            break;
        case ObjectKind::shm:
            if (const auto file = file_identity(kShmDir + locator.path, S_IFREG)) identity = *file;
            break;
        case ObjectKind::posixmq: {
            const auto probe = probe_mqueue(locator.path);
            if (probe.error == 0) {
                identity.dev = probe.st.st_dev;
                identity.ino = probe.st.st_ino;
            }
            break;
        }
        case ObjectKind::fifo:
        case ObjectKind::unix_socket:
            if (const auto file =
                    file_identity(locator.path, locator.kind == ObjectKind::fifo ? S_IFIFO : S_IFSOCK))
                identity = *file;
            break;
    }
    return identity;
}

std::uint64_t own_start_ticks() {
    const auto stat = read_process_stat(::getpid());
    return stat ? stat->start_ticks : 0;
}

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

// Removes a record only if it is still the file we read: the object may have been created
// again meanwhile, and its fresh record must survive.
void prune_record(const std::string& dir, const Record& record) {
    const std::string path = dir + "/" + record.file;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && st.st_ino == record.file_ino) ::unlink(path.c_str());
}

// ---------------------------------------------------------------------------------------
// Listing.

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
        object.in_use = process_alive(object.last_sender_pid) || process_alive(object.last_receiver_pid);
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
            object->creator_alive = process_alive(record.pid, record.start_ticks);
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

// ---------------------------------------------------------------------------------------
// Removing.

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

std::string registry_directory() {
    return find_registry_directory();
}

void registry_record(ObjectKind kind, std::string_view address) noexcept {
    try {
        Locator locator = parse_locator(address);
        if (locator.kind != kind) return;
        if (locator.canonical.find('\n') != std::string::npos) return;  // one field per line
        const std::string dir = find_registry_directory();
        if (dir.empty()) return;
        const Identity identity = identify(locator);
        // A private System V object is found by id only: record it under that address.
        if ((kind == ObjectKind::sysvmq || kind == ObjectKind::sysvshm) && identity.sysv_id < 0) return;

        std::string text = "kind=" + std::string(to_string(kind)) + "\naddress=" + locator.canonical +
                           "\npid=" + std::to_string(::getpid()) +
                           "\nstart=" + std::to_string(own_start_ticks()) +
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

void registry_forget(ObjectKind kind, std::string_view address) noexcept {
    try {
        const Locator locator = parse_locator(address);
        const std::string dir = find_registry_directory();
        if (dir.empty()) return;
        ::unlink((dir + "/" + record_file_name(kind, locator.canonical)).c_str());
    } catch (...) {
    }
}

std::vector<IpcObject> list_objects() {
    Scan scan;
    list_sysv(scan);
    list_directory(scan, ObjectKind::shm, kShmDir);
    const bool mqueue_listed = mqueue_mounted();
    if (mqueue_listed) list_directory(scan, ObjectKind::posixmq, kMqueueDir);
    if (const std::string dir = find_registry_directory(); !dir.empty())
        merge_registry(scan, dir, mqueue_listed);
    scan_users(scan);

    std::map<uid_t, std::string> names;
    for (auto& object : scan.objects) {
        if (object.creator_source == CreatorSource::kernel)
            object.creator_alive = process_alive(object.creator_pid);
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
