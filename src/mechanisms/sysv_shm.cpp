#include "ipckit/sysv_shm.hpp"

#include <sys/ipc.h>
#include <sys/shm.h>

#include <cerrno>
#include <fstream>
#include <utility>

#include "ipckit/error.hpp"

namespace ipckit {
namespace {

std::string read_sysctl(const char* path) {
    std::ifstream in(path);
    std::string value;
    in >> value;
    return value.empty() ? "unknown" : value;
}

std::string id_text(int id) {
    return "id " + std::to_string(id);
}

int permission_flags(Access access) {
    // shmget checks these bits against the segment's mode for the caller.
    return access == Access::read_write ? (SHM_R | SHM_W) : SHM_R;
}

[[noreturn]] void throw_create_failed(const SysvKey& key, std::size_t size, int err) {
    const std::string object = key.to_string() + ", " + std::to_string(size) + " bytes";
    const auto code = std::error_code(err, std::system_category());
    if (err == EINVAL) {
        // With IPC_EXCL, EINVAL can only mean the size is outside [SHMMIN, SHMMAX].
        throw Error(code, "shmget(" + object + "): the size must be between 1 and kernel.shmmax (" +
                              read_sysctl("/proc/sys/kernel/shmmax") + " bytes, /proc/sys/kernel/shmmax)");
    }
    if (err == ENOSPC) {
        throw Error(code,
                    "shmget(" + object +
                        "): the machine's limits on System V shared memory are reached: kernel.shmall (" +
                        read_sysctl("/proc/sys/kernel/shmall") + " pages in all) or kernel.shmmni (" +
                        read_sysctl("/proc/sys/kernel/shmmni") + " segments)");
    }
    throw_errno("shmget", object, err);
}

}  // namespace

SysvAttachment::SysvAttachment(std::byte* data, std::size_t size, Access access, std::string object) noexcept
    : bytes_(std::span(data, size), data != nullptr), access_(access), object_(std::move(object)) {}

void detail::SysvDetach::operator()(std::span<std::byte> bytes) const noexcept {
    if (bytes.data() != nullptr) ::shmdt(bytes.data());
}

void SysvAttachment::detach() {
    std::byte* data = bytes_.release().data();
    if (data != nullptr && ::shmdt(data) != 0) throw_errno("shmdt", object_);
}

SysvShm::SysvShm(int id, Access access, bool owner, std::string object) noexcept
    : id_(id, owner), access_(access), object_(std::move(object)) {}

void detail::SysvShmRemove::operator()(int id) const noexcept {
    ::shmctl(id, IPC_RMID, nullptr);
}

SysvShm SysvShm::create(const SysvKey& key, std::size_t size, mode_t mode) {
    if (size == 0) {
        throw_error(std::errc::invalid_argument,
                    "shmget(" + key.to_string() + "): size must be at least 1 byte");
    }
    const int id = ::shmget(key.value(), size, IPC_CREAT | IPC_EXCL | static_cast<int>(mode & 0777));
    if (id < 0) throw_create_failed(key, size, errno);
    return SysvShm(id, Access::read_write, true, key.to_string() + " (" + id_text(id) + ")");
}

SysvShm SysvShm::open(const SysvKey& key, Access access) {
    if (key.is_private()) {
        throw_error(std::errc::invalid_argument,
                    "shmget(private key): an IPC_PRIVATE segment cannot be opened by key; use open_id");
    }
    const int id = ::shmget(key.value(), 0, permission_flags(access));
    if (id < 0) {
        const int err = errno;
        if (err == ENOENT) {
            // A removed segment gives up its key at once, even while still attached.
            throw Error(
                std::error_code(err, std::system_category()),
                "shmget(" + key.to_string() + "): no segment has this key (never created, or removed)");
        }
        throw_errno("shmget", key.to_string(), err);
    }
    return SysvShm(id, access, false, key.to_string() + " (" + id_text(id) + ")");
}

SysvShm SysvShm::open_id(int id, Access access) {
    SysvShm shm(id, access, false, "segment " + id_text(id));
    shmid_ds ds{};
    if (::shmctl(id, IPC_STAT, &ds) != 0) throw_errno("shmctl(IPC_STAT)", shm.object_);
    return shm;
}

SysvAttachment SysvShm::attach(Access access) const {
    if (access == Access::read_write && access_ == Access::read_only) {
        throw_error(std::errc::permission_denied, "shmat(" + object_ + "): the segment was opened read-only");
    }
    const SysvShmStatus st = stat();
    void* address = ::shmat(id_, nullptr, access == Access::read_only ? SHM_RDONLY : 0);
    if (address == reinterpret_cast<void*>(-1)) throw_errno("shmat", object_);
    return SysvAttachment(static_cast<std::byte*>(address), st.size, access, object_);
}

SysvShmStatus SysvShm::stat() const {
    shmid_ds ds{};
    if (::shmctl(id_, IPC_STAT, &ds) != 0) throw_errno("shmctl(IPC_STAT)", object_);
    SysvShmStatus st;
    st.size = ds.shm_segsz;
    st.attach_count = ds.shm_nattch;
    st.creator_pid = ds.shm_cpid;
    st.last_pid = ds.shm_lpid;
    st.owner_uid = ds.shm_perm.uid;
    st.owner_gid = ds.shm_perm.gid;
    st.creator_uid = ds.shm_perm.cuid;
    st.mode = static_cast<mode_t>(ds.shm_perm.mode & 0777);
    st.marked_for_removal = (ds.shm_perm.mode & SHM_DEST) != 0;
    st.last_attach = ds.shm_atime;
    st.last_detach = ds.shm_dtime;
    return st;
}

void SysvShm::remove() {
    id_.keep();
    if (::shmctl(id_, IPC_RMID, nullptr) != 0) throw_errno("shmctl(IPC_RMID)", object_);
}

}  // namespace ipckit
