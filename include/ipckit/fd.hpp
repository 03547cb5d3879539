// ipckit/fd.hpp — an owning, move-only file descriptor.
//
// `Fd` closes its descriptor when it goes away. Descriptors that ipckit opens are
// close-on-exec by default, so a child started with exec inherits only what the caller
// hands over on purpose (see `Fd::set_inheritable`, used to pass a pipe end to `pipe4`).
//
// Example:
//     ipckit::Fd fd(::open(path, O_RDONLY | O_CLOEXEC));   // adopts the descriptor
//     if (!fd) ipckit::throw_errno("open", path);            // Fd does not check for -1
//     fd.set_nonblocking(true);
//
// Thread-safety: like an int. Distinct objects may be used from distinct threads; one
// object must not be moved or reset while another thread uses its descriptor.
// Errors: `fcntl` failures throw `ipckit::Error` naming the descriptor.
#pragma once

#include <utility>

namespace ipckit {

class Fd {
public:
    Fd() noexcept = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    // Gives up ownership: the caller now closes the descriptor.
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
    // Closes the current descriptor (if any) and adopts `fd`.
    void reset(int fd = -1) noexcept;

    void set_nonblocking(bool on) const;
    [[nodiscard]] bool nonblocking() const;
    // Inheritable means: survives exec (close-on-exec cleared).
    void set_inheritable(bool on) const;
    [[nodiscard]] bool inheritable() const;
    // A second, independent owner of the same open file description (close-on-exec).
    [[nodiscard]] Fd duplicate() const;

private:
    int fd_ = -1;
};

}  // namespace ipckit
