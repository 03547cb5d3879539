// ipckit/memfd.hpp — anonymous shared memory that travels as a descriptor, and seals.
//
// A memfd (memfd_create) is shared memory with no name in any filesystem: it exists while a
// descriptor or a mapping refers to it, so it cannot be leaked by a crash. It is shared by
// handing the descriptor to another process (inherited across fork, or sent over a Unix
// socket with SCM_RIGHTS).
//
// The receiver cannot trust a size it did not choose: the sender could shrink the memfd
// after the receiver mapped it, and the receiver's next access would die with SIGBUS.
// Seals fix that. Once F_SEAL_SHRINK and F_SEAL_GROW are set, nobody can change the size;
// F_SEAL_WRITE makes the contents immutable too (it needs every writable mapping gone
// first); F_SEAL_SEAL forbids adding or removing seals. Seals cannot be removed. A receiver
// calls `Memfd::adopt(fd, required_seals)`, which checks the seals are really there before
// it maps anything.
//
// Example:
//     auto memfd = ipckit::Memfd::create("frame", 1 << 20);
//     { auto m = memfd.map(ipckit::Access::read_write); fill(m.bytes()); }
//     memfd.seal(ipckit::Memfd::fixed_size | F_SEAL_WRITE);
//     // the receiver, given the descriptor:
//     auto frame = ipckit::Memfd::adopt(std::move(fd), ipckit::Memfd::fixed_size);
//     auto view = frame.map(ipckit::Access::read_only);   // its size cannot change under us
//
// Errors: `ipckit::Error` naming the call and "memfd:NAME"; a change a seal forbids is
// EPERM with the seal named; missing seals at `adopt` are std::errc::operation_not_permitted.
// Thread-safety: one owner at a time, like a descriptor.
#pragma once

#include <fcntl.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "ipckit/fd.hpp"
#include "ipckit/mapping.hpp"

namespace ipckit {

class Memfd {
public:
    // The seals that make the size trustworthy, and forbid changing seals afterwards.
    static constexpr int fixed_size = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

    // A new memfd of `size` bytes (zero-filled). With `sealable = false` the kernel sets
    // F_SEAL_SEAL at once, so no seal can ever be added.
    [[nodiscard]] static Memfd create(std::string_view name, std::size_t size, bool sealable = true);
    // Takes a descriptor received from elsewhere; it must be a memfd carrying every seal in
    // `required_seals` (0: no check), so the receiver can trust it before mapping it.
    [[nodiscard]] static Memfd adopt(Fd fd, int required_seals);

    [[nodiscard]] const Fd& fd() const noexcept { return fd_; }
    [[nodiscard]] Fd release() noexcept { return std::move(fd_); }
    [[nodiscard]] const std::string& name() const noexcept { return object_; }
    [[nodiscard]] std::size_t size() const;

    // ftruncate; a seal that forbids it gives EPERM naming the seal.
    void resize(std::size_t size);
    // F_ADD_SEALS. F_SEAL_WRITE with a writable mapping still alive gives EBUSY, said plainly.
    void seal(int seals);
    [[nodiscard]] int seals() const;
    // "shrink|grow|seal", for messages.
    [[nodiscard]] static std::string describe_seals(int seals);

    // Maps the whole memfd.
    [[nodiscard]] Mapping map(Access access, MapOptions options = {}) const;

private:
    Memfd(Fd fd, std::string object) noexcept : fd_(std::move(fd)), object_(std::move(object)) {}

    Fd fd_;
    std::string object_;  // "memfd:NAME"
};

}  // namespace ipckit
