// The memory under a shared-memory region (region_memory.hpp).
#include "region_memory.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include "core/backoff.hpp"
#include "ipckit/error.hpp"

namespace ipckit::detail {

RegionMemory RegionMemory::create(const RegionPlace& place, std::size_t size, const Format& format) {
    RegionMemory r;
    switch (place.backing) {
        case RegionPlace::Backing::memfd:
            if (place.keep) {
                throw_error(std::errc::invalid_argument,
                            "address \"" + place.object +
                                "\": keep=1 cannot apply to @NAME (it lives exactly as long as its holders)");
            }
            r.shared_.emplace(SharedRegion::create(place.name, size, format, place.object));
            r.bytes_ = r.shared_->bytes();
            return r;
        case RegionPlace::Backing::posix:
            r.posix_.emplace(PosixShm::create(place.name, size, place.mode));
            // ftruncate on tmpfs reserves nothing: a /dev/shm too small for the region would
            // otherwise show as SIGBUS when a page is first touched. Allocating every page now
            // turns that into ENOSPC here, before anyone attaches.
            if (const int err = ::posix_fallocate(r.posix_->fd().get(), 0, static_cast<off_t>(size));
                err != 0)
                throw_errno("posix_fallocate", place.name + ", " + std::to_string(size) + " bytes", err);
            if (place.keep) r.posix_->keep();
            r.map_posix();
            break;
        case RegionPlace::Backing::sysv:
            if (place.sysv_id >= 0) {
                throw_error(
                    std::errc::invalid_argument,
                    "address \"" + place.object + "\": an id names an existing segment; create one by key");
            }
            r.sysv_.emplace(SysvShm::create(place.key, size, place.mode));
            if (place.keep) r.sysv_->keep();
            r.attachment_.emplace(r.sysv_->attach(Access::read_write));
            r.bytes_ = r.attachment_->bytes();
            break;
    }
    format(r.bytes_);
    return r;
}

RegionMemory RegionMemory::open(const RegionPlace& place, Deadline deadline) {
    RegionMemory r;
    switch (place.backing) {
        case RegionPlace::Backing::memfd:
            r.shared_.emplace(SharedRegion::open(place.name, deadline, place.object));
            r.bytes_ = r.shared_->bytes();
            break;
        case RegionPlace::Backing::posix: {
            r.posix_.emplace(
                retry_while_absent(deadline, [&] { return PosixShm::open(place.name, Access::read_write); }));
            // The creator sizes the object just after shm_open: an opener that came in between
            // sees 0 bytes (mmap would fail), so it waits for the size as for the format.
            const auto grace = Deadline::after(kFormatGrace);
            for (auto backoff = Backoff::for_peer(); r.posix_->size() == 0 && backoff.pause(grace);) {
            }
            r.map_posix();
            break;
        }
        case RegionPlace::Backing::sysv:
            r.sysv_.emplace(retry_while_absent(deadline, [&] {
                return place.sysv_id >= 0 ? SysvShm::open_id(place.sysv_id) : SysvShm::open(place.key);
            }));
            r.attachment_.emplace(r.sysv_->attach(Access::read_write));
            r.bytes_ = r.attachment_->bytes();
            break;
    }
    return r;
}

bool RegionMemory::still_named(const RegionPlace& place) const noexcept {
    if (shared_) return !shared_->superseded();
    if (!posix_) return true;
    try {
        const PosixShm named = PosixShm::open(place.name, Access::read_only);
        struct stat ours {};
        struct stat theirs {};
        if (::fstat(posix_->fd().get(), &ours) != 0 || ::fstat(named.fd().get(), &theirs) != 0) return true;
        return ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino;
    } catch (const Error&) {
        return false;  // no such name any more (or not ours to open)
    }
}

void RegionMemory::unlink_name(const RegionPlace& place) noexcept {
    if (!posix_) return;
    posix_->keep();
    try {
        if (still_named(place)) (void)PosixShm::unlink(place.name);
    } catch (const Error&) {
        // Nothing to do: the name stays for `ipckit rm`.
    }
}

// Populated: the creator allocated every page (posix_fallocate), and a page's first touch in
// this process would otherwise be a minor fault on the hot path, one every 4 KiB of records: in a
// 64-byte ping-pong that was the p99 (6.5 us, against 0.36 us populated; docs/ring.md).
void RegionMemory::map_posix() {
    mapping_.emplace(posix_->map(Access::read_write, MapOptions{.populate = true}));
    bytes_ = mapping_->bytes();
}

}  // namespace ipckit::detail
