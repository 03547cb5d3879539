#include "ipckit/memfd.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "ipckit/error.hpp"

namespace ipckit {
namespace {

[[noreturn]] void throw_sealed(std::string_view call, const std::string& object, int err,
                               std::string_view why) {
    throw Error(std::error_code(err, std::system_category()),
                std::string(call) + "(" + object + "): " + std::string(why));
}

}  // namespace

std::string Memfd::describe_seals(int seals) {
    std::string text;
    const auto add = [&](int bit, const char* name) {
        if ((seals & bit) == 0) return;
        if (!text.empty()) text += '|';
        text += name;
    };
    add(F_SEAL_SEAL, "seal");
    add(F_SEAL_SHRINK, "shrink");
    add(F_SEAL_GROW, "grow");
    add(F_SEAL_WRITE, "write");
#ifdef F_SEAL_FUTURE_WRITE
    add(F_SEAL_FUTURE_WRITE, "future-write");
#endif
    return text.empty() ? "none" : text;
}

Memfd Memfd::create(std::string_view name, std::size_t size, bool sealable) {
    const std::string text(name);
    std::string object = "memfd:" + text;
    const unsigned flags = MFD_CLOEXEC | (sealable ? MFD_ALLOW_SEALING : 0U);
    Fd fd(::memfd_create(text.c_str(), flags));
    if (!fd) throw_errno("memfd_create", object);
    Memfd memfd(std::move(fd), std::move(object));
    if (size > 0) memfd.resize(size);
    return memfd;
}

Memfd Memfd::adopt(Fd fd, int required_seals) {
    std::string object = "memfd fd " + std::to_string(fd.get());
    Memfd memfd(std::move(fd), std::move(object));
    if (required_seals == 0) return memfd;
    const int present = ::fcntl(memfd.fd_.get(), F_GET_SEALS);
    if (present < 0) {
        const int err = errno;
        if (err == EINVAL) {
            throw_error(std::errc::operation_not_permitted,
                        "fcntl(F_GET_SEALS, " + memfd.object_ +
                            "): not a memfd (no seals possible); refusing to trust it");
        }
        throw_errno("fcntl(F_GET_SEALS)", memfd.object_, err);
    }
    if ((present & required_seals) != required_seals) {
        throw_error(std::errc::operation_not_permitted,
                    "adopt(" + memfd.object_ + "): seals are " + describe_seals(present) + ", missing " +
                        describe_seals(required_seals & ~present) + "; refusing to trust its size");
    }
    return memfd;
}

std::size_t Memfd::size() const {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) throw_errno("fstat", object_);
    return static_cast<std::size_t>(st.st_size);
}

void Memfd::resize(std::size_t size) {
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) == 0) return;
    const int err = errno;
    if (err == EPERM) {
        const int present = ::fcntl(fd_.get(), F_GET_SEALS);
        const std::size_t current = this->size();
        const char* seal = size > current ? "F_SEAL_GROW" : "F_SEAL_SHRINK";
        throw_sealed("ftruncate", object_, err,
                     "sealed against resizing (" + std::string(seal) + "; seals: " + describe_seals(present) +
                         "), size stays " + std::to_string(current) + " bytes");
    }
    throw_errno("ftruncate", object_ + ", " + std::to_string(size) + " bytes", err);
}

void Memfd::seal(int seals) {
    if (::fcntl(fd_.get(), F_ADD_SEALS, seals) == 0) return;
    const int err = errno;
    if (err == EBUSY) {
        throw_sealed("fcntl(F_ADD_SEALS)", object_, err,
                     "F_SEAL_WRITE needs every writable shared mapping of the memfd unmapped first");
    }
    if (err == EPERM) {
        throw_sealed("fcntl(F_ADD_SEALS)", object_, err,
                     "the memfd is sealed against new seals (F_SEAL_SEAL, or created without sealing)");
    }
    throw_errno("fcntl(F_ADD_SEALS)", object_, err);
}

int Memfd::seals() const {
    const int present = ::fcntl(fd_.get(), F_GET_SEALS);
    if (present < 0) throw_errno("fcntl(F_GET_SEALS)", object_);
    return present;
}

Mapping Memfd::map(Access access, MapOptions options) const {
    return Mapping::map(fd_, size(), access, options, object_);
}

}  // namespace ipckit
