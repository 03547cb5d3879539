// The object an address names (locator.hpp).
#include "locator.hpp"

#include <mqueue.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "ipckit/error.hpp"
#include "ipckit/sysv_key.hpp"

namespace ipckit::detail {
namespace {

constexpr long kMqueueMagic = 0x19800202;  // MQUEUE_MAGIC from linux/magic.h

std::string key_text(key_t key) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%08x", static_cast<unsigned>(key));
    return text;
}

}  // namespace

[[noreturn]] void bad_address(std::string_view address, std::string_view expected) {
    std::string message = "address \"";
    message += address;
    message += "\": ";
    message += expected;
    throw_error(std::errc::invalid_argument, message);
}

std::string sysv_address(ObjectKind kind, key_t key, int id) {
    std::string address(to_string(kind));
    address += ':';
    address += key == IPC_PRIVATE ? "id=" + std::to_string(id) : key_text(key);
    return address;
}

std::optional<Locator> locate(const Address& address) {
    Locator locator;
    switch (address.transport) {
        case Transport::fd:
        case Transport::tcp:
        case Transport::nats:  // the server's object, not this machine's
        case Transport::file:  // a recorded log is the user's data, never left behind by a crash
            return std::nullopt;
        case Transport::sysvmq:
        case Transport::sysvshm:
            locator.kind = address.transport == Transport::sysvmq ? ObjectKind::sysvmq : ObjectKind::sysvshm;
            if (address.sysv.id >= 0) {
                locator.by_id = true;
                locator.id = address.sysv.id;
            } else {
                locator.key = address.sysv_key().value();
                if (locator.key == IPC_PRIVATE) return std::nullopt;  // no key reaches it
            }
            locator.canonical = sysv_address(locator.kind, locator.key, locator.id);
            return locator;
        case Transport::topic:
        case Transport::service:
            // The POSIX object under topic:/NAME (service:/NAME), as `ipckit rm` removes it;
            // topic:@NAME (service:@NAME) has none.
            if (address.target.starts_with('@')) return std::nullopt;
            [[fallthrough]];
        case Transport::posixmq:
        case Transport::shm:
            // shm:@/PATH: what can be left behind is its socket file (the memory goes with its
            // last holder), listed and removed as the socket it is.
            if (address.transport == Transport::shm && address.target.starts_with("@/")) {
                locator.kind = ObjectKind::unix_socket;
                locator.path = address.target.substr(1);
                locator.canonical = std::string(to_string(locator.kind)) + ":" + locator.path;
                return locator;
            }
            // shm:@NAME is a sealed memfd behind an abstract socket: nothing that can be left behind.
            if (address.target.starts_with('@')) return std::nullopt;
            locator.kind = address.transport == Transport::posixmq ? ObjectKind::posixmq : ObjectKind::shm;
            locator.path = address.target;
            locator.canonical = std::string(to_string(locator.kind)) + ":" + locator.path;
            return locator;
        case Transport::fifo:
        case Transport::unix_stream:
        case Transport::unix_seqpacket:
        case Transport::unix_dgram: {
            if (address.target.starts_with('@')) return std::nullopt;  // abstract: no file
            locator.kind = address.transport == Transport::fifo ? ObjectKind::fifo : ObjectKind::unix_socket;
            locator.path = address.target;
            std::error_code ignored;
            const auto absolute = std::filesystem::absolute(locator.path, ignored).lexically_normal();
            locator.canonical = std::string(to_string(locator.kind)) + ":" +
                                (absolute.empty() ? locator.path : absolute.string());
            return locator;
        }
    }
    return std::nullopt;
}

Locator parse_locator(std::string_view address) {
    const std::string_view object = address.substr(0, address.find('?'));  // options are ignored
    const std::string scheme(object.substr(0, object.find(':')));
    if (scheme == "tcp" || scheme == "fd")
        bad_address(address, "a " + scheme + " address names no object that stays behind");
    const Address parsed = parse_address(object);
    if (auto locator = locate(parsed)) return *std::move(locator);
    if (parsed.target.starts_with('@'))
        bad_address(address, "an abstract socket has no file: it goes away with its last descriptor");
    bad_address(address, "a private object has no key: address it by its id, e.g. " + scheme + ":id=42");
}

// lstat with the birth time; `type` is the file type the object must have.
std::optional<Identity> file_identity(const std::string& path, mode_t type, uid_t* owner, mode_t* mode) {
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

}  // namespace ipckit::detail
