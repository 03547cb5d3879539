// ipckit/sysv_shm.hpp — System V shared memory: shmget, shmat, shmdt, shmctl.
//
// A segment is found by a key (explicit, ftok, or IPC_PRIVATE, see ipckit/sysv_key.hpp) and
// then by its id. One process creates it (`create`: IPC_CREAT|IPC_EXCL, 0600 by default) and
// owns it: the owner removes it (IPC_RMID) when it goes away, unless told to `keep()` it.
// Others `open` it by key. To use the memory, `attach` it: the returned `SysvAttachment`
// detaches (shmdt) when it goes away. Attachments are inherited across fork.
//
// The kernel's lifetime rule: IPC_RMID only marks a segment for removal. Its key is released
// at once (a later shmget by key fails with ENOENT, and the key can be reused), but the memory
// lives until the last process detaches; `stat().marked_for_removal` shows the state. So a
// creator may remove the segment as soon as every peer is attached, and then nothing can be
// left behind, even if every process is killed.
//
// Sizes: the kernel refuses a segment larger than kernel.shmmax (/proc/sys/kernel/shmmax) or
// one that would take the total past kernel.shmall pages; the Error says which. The size is
// rounded up to whole pages in memory, but stat() reports the size asked for.
//
// Permissions: the mode bits are checked against the caller's uid/gid at open (for the access
// asked for) and at attach; root (CAP_IPC_OWNER) bypasses them.
//
// Example:
//     auto segment = ipckit::SysvShm::create(ipckit::SysvKey::parse("0x1234"), 4096);
//     auto memory = segment.attach(ipckit::Access::read_write);
//     memory.bytes()[0] = std::byte{1};
//     // another process:
//     auto peer = ipckit::SysvShm::open(ipckit::SysvKey::parse("0x1234"), ipckit::Access::read_only);
//     auto view = peer.attach(ipckit::Access::read_only);
//
// Errors: `ipckit::Error` naming the call and the key ("shmget(key 0x1234): File exists").
// Thread-safety: one owner at a time per object; attachments may be used from any thread.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <ctime>
#include <span>
#include <string>

#include "ipckit/detail/owned.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/sysv_key.hpp"

namespace ipckit {

// What IPC_STAT reports about a segment.
struct SysvShmStatus {
    std::size_t size = 0;
    unsigned long attach_count = 0;
    pid_t creator_pid = 0;
    pid_t last_pid = 0;  // the last process to attach or detach
    uid_t owner_uid = 0;
    gid_t owner_gid = 0;
    uid_t creator_uid = 0;
    mode_t mode = 0;  // permission bits
    bool marked_for_removal = false;
    std::time_t last_attach = 0;
    std::time_t last_detach = 0;
};

// One attachment of a segment into this process; shmdt when it goes away.
namespace detail {
// Detaches (shmdt) an attachment.
struct SysvDetach {
    void operator()(std::span<std::byte> bytes) const noexcept;
};
// Removes (IPC_RMID) a segment this object owns.
struct SysvShmRemove {
    void operator()(int id) const noexcept;
    static int empty() noexcept { return -1; }
};
}  // namespace detail

class SysvAttachment {
public:
    SysvAttachment() noexcept = default;
    SysvAttachment(SysvAttachment&&) noexcept = default;
    SysvAttachment& operator=(SysvAttachment&&) noexcept = default;  // detaches what it replaces
    SysvAttachment(const SysvAttachment&) = delete;
    SysvAttachment& operator=(const SysvAttachment&) = delete;
    ~SysvAttachment() = default;  // detaches

    [[nodiscard]] std::span<std::byte> bytes() const noexcept { return bytes_.get(); }
    [[nodiscard]] std::byte* data() const noexcept { return bytes_.get().data(); }
    [[nodiscard]] std::size_t size() const noexcept { return bytes_.get().size(); }
    [[nodiscard]] bool writable() const noexcept { return access_ == Access::read_write; }
    explicit operator bool() const noexcept { return data() != nullptr; }
    // Detaches now (what the destructor does).
    void detach();

private:
    friend class SysvShm;
    SysvAttachment(std::byte* data, std::size_t size, Access access, std::string object) noexcept;

    detail::Owned<std::span<std::byte>, detail::SysvDetach> bytes_;  // empty when moved from
    Access access_ = Access::read_only;
    std::string object_;
};

class SysvShm {
public:
    // A new segment of `size` bytes (zero-filled), exclusively; owned (removed on destruction).
    [[nodiscard]] static SysvShm create(const SysvKey& key, std::size_t size, mode_t mode = 0600);
    // An existing segment, checking the caller may use it with `access`. Not owned.
    [[nodiscard]] static SysvShm open(const SysvKey& key, Access access = Access::read_write);
    // An existing segment by id (what `ipcs -m` lists, or an IPC_PRIVATE segment's id). Not owned.
    [[nodiscard]] static SysvShm open_id(int id, Access access = Access::read_write);

    SysvShm(SysvShm&&) noexcept = default;
    SysvShm& operator=(SysvShm&&) noexcept = default;  // removes what it replaces, if owned
    SysvShm(const SysvShm&) = delete;
    SysvShm& operator=(const SysvShm&) = delete;
    ~SysvShm() = default;  // removes the segment, if owned

    [[nodiscard]] int id() const noexcept { return id_; }
    [[nodiscard]] Access access() const noexcept { return access_; }
    [[nodiscard]] bool owner() const noexcept { return id_.owns(); }
    // "key 0x1234 (id 5)": how errors name this segment.
    [[nodiscard]] const std::string& object() const noexcept { return object_; }

    // shmat; read-only attach uses SHM_RDONLY. Read-write on a segment opened read-only is an
    // Error (std::errc::permission_denied). Works on a segment marked for removal while
    // someone is still attached (a Linux extension).
    [[nodiscard]] SysvAttachment attach(Access access) const;
    [[nodiscard]] SysvAttachment attach() const { return attach(access_); }
    [[nodiscard]] SysvShmStatus stat() const;

    // IPC_RMID now (see the lifetime rule above). Whoever calls it, the object no longer owns.
    void remove();
    // The segment stays after this object goes away.
    void keep() noexcept { id_.keep(); }

private:
    SysvShm(int id, Access access, bool owner, std::string object) noexcept;

    detail::Owned<int, detail::SysvShmRemove> id_;  // -1 when moved from
    Access access_ = Access::read_only;
    std::string object_;
};

}  // namespace ipckit
