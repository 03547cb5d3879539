// ipckit/posix_shm.hpp — POSIX shared memory: a named object under /dev/shm.
//
// One process creates the object (`create`: shm_open with O_CREAT|O_EXCL, then ftruncate to
// its size), others open it by name; each maps it. The creator owns the name and unlinks it
// when it goes away, unless told to `keep()` it. Unlinking removes only the name: processes
// that still have the object open or mapped keep using it until they let go.
//
// Names are "/something" with no other '/', at most NAME_MAX characters (the kernel's rule;
// glibc turns "/x" into /dev/shm/x). shm_open never follows a symlink (glibc adds O_NOFOLLOW).
// Objects are created 0600 unless asked otherwise (the umask still applies).
//
// An opened object's size is what the kernel says (fstat), never what the opener assumed;
// `open(name, access, expected_size)` turns a mismatch into a clear Error instead of a
// mapping that is too short.
//
// Example:
//     auto shm = ipckit::PosixShm::create("/ipckit-demo", 4096);          // creator
//     auto mapping = shm.map();
//     auto peer = ipckit::PosixShm::open("/ipckit-demo", ipckit::Access::read_only, 4096);
//     auto view = peer.map();                                             // sees the creator's bytes
//
// Errors: `ipckit::Error` naming the call and the object's name ("shm_open(/x): File exists");
// a malformed name is std::errc::invalid_argument, quoting it.
// Thread-safety: one owner at a time, like a descriptor.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "ipckit/detail/owned.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/mapping.hpp"

namespace ipckit {

namespace detail {
// Unlinks (shm_unlink) a name this object owns.
struct ShmUnlink {
    void operator()(const std::string& name) const noexcept;
};
}  // namespace detail

class PosixShm {
public:
    // Creates a new object of `size` bytes (zero-filled) and owns its name.
    [[nodiscard]] static PosixShm create(std::string_view name, std::size_t size, mode_t mode = 0600);
    // Opens an existing object; it is not owned (not unlinked on destruction).
    [[nodiscard]] static PosixShm open(std::string_view name, Access access);
    // As `open`, and the object must be exactly `expected_size` bytes.
    [[nodiscard]] static PosixShm open(std::string_view name, Access access, std::size_t expected_size);
    // shm_unlink by name; false if there was no such object.
    static bool unlink(std::string_view name);
    // Throws std::errc::invalid_argument, quoting `name`, unless it is a valid shm name.
    static void check_name(std::string_view name);

    PosixShm(PosixShm&&) noexcept = default;
    PosixShm& operator=(PosixShm&&) noexcept = default;  // unlinks what it replaces, if owned
    PosixShm(const PosixShm&) = delete;
    PosixShm& operator=(const PosixShm&) = delete;
    ~PosixShm() = default;  // unlinks the name, if owned

    [[nodiscard]] const std::string& name() const noexcept { return name_.get(); }
    [[nodiscard]] Access access() const noexcept { return access_; }
    [[nodiscard]] const Fd& fd() const noexcept { return fd_; }
    [[nodiscard]] bool owner() const noexcept { return name_.owns(); }
    // The object's current size, from fstat (another process may have resized it).
    [[nodiscard]] std::size_t size() const;

    // Maps the whole object with the access it was opened with (or less).
    [[nodiscard]] Mapping map(MapOptions options = {}) const;
    [[nodiscard]] Mapping map(Access access, MapOptions options = {}) const;

    // The name stays after this object goes away (another process will unlink it).
    void keep() noexcept { name_.keep(); }
    // Removes the name now; mappings stay valid.
    void unlink();

private:
    PosixShm(std::string name, Fd fd, Access access, bool owner);

    detail::Owned<std::string, detail::ShmUnlink> name_;
    Fd fd_;
    Access access_ = Access::read_only;
};

}  // namespace ipckit
