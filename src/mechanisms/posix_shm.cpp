#include "ipckit/posix_shm.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "ipckit/error.hpp"
#include "object_rules.hpp"

namespace ipckit {

void PosixShm::check_name(std::string_view name) {
    detail::check_posix_name(name, detail::PosixObject::shm);
}

PosixShm::PosixShm(std::string name, Fd fd, Access access, bool owner)
    : name_(std::move(name), owner), fd_(std::move(fd)), access_(access) {}

void detail::ShmUnlink::operator()(const std::string& name) const noexcept {
    ::shm_unlink(name.c_str());
}

PosixShm PosixShm::create(std::string_view name, std::size_t size, mode_t mode) {
    check_name(name);
    std::string text(name);
    if (size == 0)
        throw_error(std::errc::invalid_argument, "shm_open(" + text + "): size must be at least 1 byte");
    // glibc's shm_open adds O_NOFOLLOW and O_CLOEXEC; O_EXCL makes creation exclusive.
    Fd fd(::shm_open(text.c_str(), O_RDWR | O_CREAT | O_EXCL, mode));
    if (!fd) throw_errno("shm_open", text);
    PosixShm shm(std::move(text), std::move(fd), Access::read_write, true);  // unlinks if ftruncate fails
    if (::ftruncate(shm.fd_.get(), static_cast<off_t>(size)) != 0) throw_errno("ftruncate", shm.name());
    return shm;
}

PosixShm PosixShm::open(std::string_view name, Access access) {
    check_name(name);
    std::string text(name);
    Fd fd(::shm_open(text.c_str(), access == Access::read_write ? O_RDWR : O_RDONLY, 0));
    if (!fd) throw_errno("shm_open", text);
    return PosixShm(std::move(text), std::move(fd), access, false);
}

PosixShm PosixShm::open(std::string_view name, Access access, std::size_t expected_size) {
    PosixShm shm = open(name, access);
    const std::size_t actual = shm.size();
    if (actual != expected_size) {
        throw_error(std::errc::invalid_argument, "shm_open(" + shm.name() + "): the object is " +
                                                     std::to_string(actual) + " bytes, expected " +
                                                     std::to_string(expected_size));
    }
    return shm;
}

bool PosixShm::unlink(std::string_view name) {
    check_name(name);
    const std::string text(name);
    if (::shm_unlink(text.c_str()) == 0) return true;
    if (errno == ENOENT) return false;
    throw_errno("shm_unlink", text);
}

std::size_t PosixShm::size() const {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) throw_errno("fstat", name());
    return static_cast<std::size_t>(st.st_size);
}

Mapping PosixShm::map(MapOptions options) const {
    return map(access_, options);
}

Mapping PosixShm::map(Access access, MapOptions options) const {
    if (access == Access::read_write && access_ == Access::read_only) {
        throw_error(std::errc::permission_denied, "mmap(" + name() + "): the object was opened read-only");
    }
    const std::size_t actual = size();
    if (options.offset < 0 || static_cast<std::size_t>(options.offset) >= actual) {
        throw_error(std::errc::invalid_argument,
                    "mmap(" + name() + "): offset " + std::to_string(options.offset) +
                        " is outside the object (" + std::to_string(actual) + " bytes)");
    }
    return Mapping::map(fd_, actual - static_cast<std::size_t>(options.offset), access, options, name());
}

void PosixShm::unlink() {
    name_.keep();
    if (::shm_unlink(name().c_str()) != 0) throw_errno("shm_unlink", name());
}

}  // namespace ipckit
