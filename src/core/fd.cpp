#include "ipckit/fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "ipckit/error.hpp"

namespace ipckit {
namespace {

std::string name_of(int fd) {
    return "fd " + std::to_string(fd);
}

int get_flags(int fd, int cmd) {
    const int flags = ::fcntl(fd, cmd);
    if (flags < 0) throw_errno("fcntl", name_of(fd));
    return flags;
}

void set_flags(int fd, int cmd, int flags) {
    if (::fcntl(fd, cmd, flags) < 0) throw_errno("fcntl", name_of(fd));
}

}  // namespace

void Fd::reset(int fd) noexcept {
    // close(2) releases the descriptor even when it reports EINTR on Linux, so it must not be
    // retried: a retry could close a descriptor another thread has just been given.
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

void Fd::set_nonblocking(bool on) const {
    const int flags = get_flags(fd_, F_GETFL);
    const int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (wanted != flags) set_flags(fd_, F_SETFL, wanted);
}

bool Fd::nonblocking() const {
    return (get_flags(fd_, F_GETFL) & O_NONBLOCK) != 0;
}

void Fd::set_inheritable(bool on) const {
    const int flags = get_flags(fd_, F_GETFD);
    set_flags(fd_, F_SETFD, on ? (flags & ~FD_CLOEXEC) : (flags | FD_CLOEXEC));
}

bool Fd::inheritable() const {
    return (get_flags(fd_, F_GETFD) & FD_CLOEXEC) == 0;
}

Fd Fd::duplicate() const {
    const int copy = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) throw_errno("fcntl(F_DUPFD_CLOEXEC)", name_of(fd_));
    return Fd(copy);
}

}  // namespace ipckit
