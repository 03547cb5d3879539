#include "ipckit/pipe.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <fstream>
#include <string>

#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "object_rules.hpp"

namespace ipckit {
namespace {

// Checks that `fd` is an open pipe or FIFO end that can move data the wanted way, and takes it.
Fd adopt_checked(int fd, bool for_reading) {
    const std::string object = "adopt(fd " + std::to_string(fd) + ")";
    const char* wanted = for_reading ? "an inherited pipe read end" : "an inherited pipe write end";
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) {
        const int err = fd < 0 ? EBADF : errno;
        throw Error(std::error_code(err, std::system_category()),
                    object + ": not an open descriptor; expected " + wanted);
    }
    if (!S_ISFIFO(st.st_mode)) {
        throw_error(std::errc::invalid_argument, object + ": " +
                                                     detail::file_kind(st.st_mode, "a file of another kind") +
                                                     ", not a pipe or FIFO; expected " + wanted);
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) throw_errno("fcntl", object);
    const int access = flags & O_ACCMODE;
    const bool can_read = access == O_RDONLY || access == O_RDWR;
    const bool can_write = access == O_WRONLY || access == O_RDWR;
    if (for_reading ? !can_read : !can_write) {
        throw_error(std::errc::bad_file_descriptor, object + ": the " + (for_reading ? "write" : "read") +
                                                        " end of a pipe; expected " + wanted);
    }
    Fd owned(fd);
    owned.set_inheritable(false);
    return owned;
}

std::string pipe_max_size() {
    std::ifstream file("/proc/sys/fs/pipe-max-size");
    std::string value;
    if (!(file >> value)) return "?";
    return value;
}

}  // namespace

namespace detail {

PipeEnd::PipeEnd(Fd fd, std::string name) noexcept : fd_(std::move(fd)), name_(std::move(name)) {}

Fd PipeEnd::release() noexcept {
    return std::move(fd_);
}

void PipeEnd::close() noexcept {
    fd_.reset();
}

void PipeEnd::set_nonblocking(bool on) const {
    fd_.set_nonblocking(on);
}

std::size_t PipeEnd::capacity() const {
    const int size = ::fcntl(fd_.get(), F_GETPIPE_SZ);
    if (size < 0) throw_errno("fcntl(F_GETPIPE_SZ)", name_);
    return static_cast<std::size_t>(size);
}

std::size_t PipeEnd::set_capacity(std::size_t bytes) const {
    const std::string request = "F_SETPIPE_SZ(" + name_ + ", " + std::to_string(bytes) + " bytes";
    if (bytes > static_cast<std::size_t>(INT_MAX)) {
        throw_error(
            std::errc::invalid_argument,
            request + "): too large; the limit is /proc/sys/fs/pipe-max-size (" + pipe_max_size() + ")");
    }
    const int size = ::fcntl(fd_.get(), F_SETPIPE_SZ, static_cast<int>(bytes));
    if (size >= 0) return static_cast<std::size_t>(size);
    const int err = errno;
    std::string why;
    if (err == EPERM) {
        why = "; over /proc/sys/fs/pipe-max-size (" + pipe_max_size() +
              ") without CAP_SYS_RESOURCE, or over the user's pipe-user-pages-soft share";
    } else if (err == EBUSY) {
        why = "; smaller than the data the pipe holds now";
    } else if (err == EINVAL) {
        why = "; the limit is /proc/sys/fs/pipe-max-size (" + pipe_max_size() + ")";
    }
    throw Error(std::error_code(err, std::system_category()), request + why + ")");
}

int PipeEnd::inherit_across_exec() const {
    fd_.set_inheritable(true);
    return fd_.get();
}

}  // namespace detail

PipeReader PipeReader::adopt(int fd) {
    return PipeReader(adopt_checked(fd, true), "pipe fd " + std::to_string(fd));
}

IoResult PipeReader::read_some(std::span<std::byte> buffer, Deadline deadline) {
    return ipckit::read_some(fd_.get(), buffer, deadline, name_);
}

IoResult PipeReader::read_exact(std::span<std::byte> buffer, Deadline deadline) {
    return ipckit::read_exact(fd_.get(), buffer, deadline, name_);
}

PipeWriter PipeWriter::adopt(int fd) {
    return PipeWriter(adopt_checked(fd, false), "pipe fd " + std::to_string(fd));
}

IoResult PipeWriter::write_all(std::span<const std::byte> data, Deadline deadline) {
    return ipckit::write_all(fd_.get(), data, deadline, name_);
}

IoResult PipeWriter::write_all(std::span<const std::span<const std::byte>> parts, Deadline deadline) {
    return ipckit::write_all(fd_.get(), parts, deadline, name_);
}

Pipe Pipe::create() {
    std::array<int, 2> fds{};
    if (::pipe2(fds.data(), O_CLOEXEC) != 0) throw_errno("pipe2", "new pipe");
    Fd read_end(fds[0]);
    Fd write_end(fds[1]);
    return Pipe{PipeReader(std::move(read_end), "pipe fd " + std::to_string(fds[0])),
                PipeWriter(std::move(write_end), "pipe fd " + std::to_string(fds[1]))};
}

}  // namespace ipckit
