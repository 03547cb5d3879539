// Internal: the memory under a shared-memory region (a ring, lanes, a topic), wherever it lives:
// a POSIX shm file (shm:/NAME, topic:/NAME), a System V segment (sysvshm:KEY), or a sealed memfd
// served on an abstract socket (shm:@NAME, topic:@NAME; shared_region.hpp). The creator makes
// the object, sizes it, allocates every page and formats it; an opener maps what is there,
// waiting a moment for a creator that has made the name but not yet sized it. The channel
// layer says where (RegionPlace, from an address) and what format to write.
//
// Thread-safety: a RegionMemory is owned by one thread.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "ipckit/deadline.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/posix_shm.hpp"
#include "ipckit/sysv_key.hpp"
#include "ipckit/sysv_shm.hpp"
#include "shared_region.hpp"

namespace ipckit::detail {

struct RegionPlace {
    enum class Backing { posix, sysv, memfd };
    Backing backing = Backing::posix;
    std::string name;                      // posix: "/NAME"; memfd: the abstract socket's name, without '@'
    SysvKey key = SysvKey::private_key();  // sysv, unless opened by id
    int sysv_id = -1;                      // sysv: an existing segment by id (open only)
    mode_t mode = 0600;
    bool keep = false;   // the creator leaves the object behind (not for memfd)
    std::string object;  // names it in errors: the address
};

class RegionMemory {
public:
    using Format = std::function<void(std::span<std::byte>)>;

    // Creates `size` bytes at `place` and lets `format` write them before anyone can attach
    // (a memfd) or before this returns (the others: an opener meanwhile retries, see
    // attach_formatted). Throws Error: the object exists, no space (every page is allocated
    // now, so a full /dev/shm is ENOSPC here and never SIGBUS later), keep=1 on a memfd.
    [[nodiscard]] static RegionMemory create(const RegionPlace& place, std::size_t size,
                                             const Format& format);
    // Maps the region at `place`, retrying until `deadline` while it does not exist yet.
    [[nodiscard]] static RegionMemory open(const RegionPlace& place, Deadline deadline);

    [[nodiscard]] std::span<std::byte> bytes() const noexcept { return bytes_; }
    // A named POSIX file, which anyone with access can truncate under us (BusGuard).
    [[nodiscard]] bool truncatable() const noexcept { return mapping_.has_value(); }
    // That file's descriptor (open as long as this object), -1 for the other kinds.
    [[nodiscard]] int file_fd() const noexcept { return posix_ ? posix_->fd().get() : -1; }
    // Whether `place`'s name still names this object: a POSIX region's not removed, nor removed
    // and made again; a memfd's not superseded by a creator's new memory (shared_region.hpp).
    // System V: true.
    [[nodiscard]] bool still_named(const RegionPlace& place) const noexcept;
    // A POSIX region: removes its name now if it still names this object, and no longer owns it
    // (a successor's object of the same name is never removed by our destructor). Others: nothing.
    void unlink_name(const RegionPlace& place) noexcept;

private:
    RegionMemory() = default;
    void map_posix();

    std::optional<PosixShm> posix_;
    std::optional<Mapping> mapping_;
    std::optional<SysvShm> sysv_;
    std::optional<SysvAttachment> attachment_;
    std::optional<SharedRegion> shared_;
    std::span<std::byte> bytes_;
};

}  // namespace ipckit::detail
