#include "ipckit/fifo.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>
#include <utility>

#include "core/backoff.hpp"
#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "object_rules.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

std::string end_name(const std::string& path) {
    return "fifo " + path;
}

[[noreturn]] void refuse(const std::string& path, mode_t mode) {
    if (S_ISLNK(mode)) {
        throw Error(std::make_error_code(std::errc::too_many_symbolic_link_levels),
                    "open(" + path + "): a symbolic link; ipckit never opens a FIFO through one");
    }
    throw_error(std::errc::invalid_argument,
                "open(" + path + "): " + detail::file_kind(mode, "a file of another kind") + ", not a FIFO");
}

// Opens `path` as a FIFO with `flags`, never through a symbolic link and never opening
// anything but a FIFO (open(2) on a device can have effects of its own, so the type is
// checked first with lstat, then again on what was opened, in case the path changed).
// The outcomes callers may wait out, ENOENT and ENXIO, come back as an invalid Fd with `err`
// set; anything else throws.
Fd open_fifo(const std::string& path, int flags, int& err) {
    err = 0;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) {
            err = ENOENT;
            return Fd();
        }
        throw_errno("open", path);
    }
    if (!S_ISFIFO(st.st_mode)) refuse(path, st.st_mode);
    for (;;) {
        Fd fd(::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC));
        if (fd) {
            if (::fstat(fd.get(), &st) != 0) throw_errno("fstat", path);
            if (!S_ISFIFO(st.st_mode)) refuse(path, st.st_mode);
            return fd;
        }
        if (errno == EINTR) continue;  // a blocking open interrupted by a signal handler
        if (errno == ENOENT || errno == ENXIO) {
            err = errno;
            return Fd();
        }
        if (errno == ELOOP) refuse(path, S_IFLNK);
        throw_errno("open", path);
    }
}

[[noreturn]] void throw_open_failure(const std::string& path, int err) {
    if (err == ENXIO) {
        throw Error(std::error_code(ENXIO, std::system_category()),
                    "open(" + path + ") for writing, non-blocking: no process has the FIFO open for reading");
    }
    throw_errno("open", path, err);
}

Fd open_or_throw(const std::string& path, int flags) {
    int err = 0;
    Fd fd = open_fifo(path, flags, err);
    if (!fd) throw_open_failure(path, err);
    return fd;
}

}  // namespace

Fifo Fifo::create(std::string path, mode_t mode) {
    if (path.empty()) throw_error(std::errc::invalid_argument, "mkfifo(): empty path");
    detail::check_mode(mode, "mkfifo", path);
    // mkfifo never follows a symbolic link and fails on any existing name: it is exclusive.
    if (::mkfifo(path.c_str(), mode) != 0) throw_errno("mkfifo", path);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        const int err = errno;
        ::unlink(path.c_str());
        throw_errno("lstat", path, err);
    }
    Fifo fifo({std::move(path), S_IFIFO, st.st_dev, st.st_ino});  // from here on, a failure unlinks it
    if ((st.st_mode & 0777) != mode) {
        // The umask took bits away; set exactly what was asked, on the name itself, not a link.
        if (::fchmodat(AT_FDCWD, fifo.path().c_str(), mode, AT_SYMLINK_NOFOLLOW) != 0) {
            throw_errno("chmod", fifo.path());
        }
    }
    return fifo;
}

PipeReader Fifo::open_read(const std::string& path, OpenMode mode) {
    const int flags = O_RDONLY | (mode == OpenMode::nonblocking ? O_NONBLOCK : 0);
    return PipeReader(open_or_throw(path, flags), end_name(path));
}

PipeWriter Fifo::open_write(const std::string& path, OpenMode mode) {
    const int flags = O_WRONLY | (mode == OpenMode::nonblocking ? O_NONBLOCK : 0);
    return PipeWriter(open_or_throw(path, flags), end_name(path));
}

std::optional<PipeReader> Fifo::open_read(const std::string& path, Deadline deadline) {
    // The kernel offers nothing to wait on for a name to appear or a reader to come.
    auto backoff = detail::Backoff::for_peer();
    for (;;) {
        int err = 0;
        // Non-blocking: an open for reading then never waits, and the wait below can end.
        Fd fd = open_fifo(path, O_RDONLY | O_NONBLOCK, err);
        if (fd) {
            // A FIFO polls readable once a writer has written, or has come and gone (hang-up,
            // which read(2) turns into end of file).
            if (wait_readable(fd.get(), deadline, end_name(path)) != Status::ok) return std::nullopt;
            fd.set_nonblocking(false);
            return PipeReader(std::move(fd), end_name(path));
        }
        if (deadline.expired()) throw_open_failure(path, err);  // still no such FIFO: an error
        (void)backoff.pause(deadline);
    }
}

std::optional<PipeWriter> Fifo::open_write(const std::string& path, Deadline deadline) {
    // The kernel offers nothing to wait on for a name to appear or a reader to come.
    auto backoff = detail::Backoff::for_peer();
    for (;;) {
        int err = 0;
        Fd fd = open_fifo(path, O_WRONLY | O_NONBLOCK, err);
        if (!fd && err == ENXIO && deadline.is_never()) {
            // With no limit, the kernel's own blocking open waits for a reader without polling.
            fd = open_fifo(path, O_WRONLY, err);
        }
        if (fd) {
            fd.set_nonblocking(false);
            return PipeWriter(std::move(fd), end_name(path));
        }
        if (deadline.expired()) {
            if (err == ENXIO) return std::nullopt;  // the FIFO is there, its reader did not come
            throw_open_failure(path, err);
        }
        // No reader yet (ENXIO) or no FIFO yet (ENOENT): the kernel offers nothing to wait on.
        (void)backoff.pause(deadline);
    }
}

Fifo::Fifo(detail::MadeFile file) noexcept : file_(std::move(file), true) {}

void Fifo::remove() {
    const std::string& path = this->path();
    if (!owns()) throw_error(std::errc::invalid_argument, "unlink(" + path + "): this Fifo does not own it");
    file_.keep();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) throw_errno("unlink", path);
    if (!file_.get().is(st)) {
        throw_error(std::errc::file_exists,
                    "unlink(" + path + "): no longer the FIFO this owner created; left in place");
    }
    if (::unlink(path.c_str()) != 0) throw_errno("unlink", path);
}

}  // namespace ipckit
