// ipckit/detail/owned.hpp — a value with a clean-up that runs once, handed over by moves.
//
// What Fd does for a descriptor, for the other kernel objects a class may have to clean up: a
// name to unlink, a System V id to remove, an attachment to detach, a file it made (OwnedFile). `Release` is
// a small functor
// (`void operator()(const T&) const noexcept`) that does the clean-up; it runs when the owner
// goes, when another Owned is moved over it, or on `reset()`. A moved-from Owned holds
// `Release::empty()` (or `T{}` without one) and cleans nothing up, so the classes built of these
// members need only `= default` moves.
//
// Example (PosixShm):
//     struct ShmUnlink { void operator()(const std::string& name) const noexcept; };
//     detail::Owned<std::string, ShmUnlink> name_{name, /*owns=*/true};
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <utility>

namespace ipckit::detail {

template <class T, class Release>
class Owned {
public:
    Owned() noexcept = default;
    Owned(T value, bool owns, Release release = {}) noexcept
        : value_(std::move(value)), release_(release), owns_(owns) {}
    Owned(Owned&& other) noexcept
        : value_(std::exchange(other.value_, empty())),
          release_(other.release_),
          owns_(std::exchange(other.owns_, false)) {}
    Owned& operator=(Owned&& other) noexcept {
        if (this != &other) {
            reset();
            value_ = std::exchange(other.value_, empty());
            release_ = other.release_;
            owns_ = std::exchange(other.owns_, false);
        }
        return *this;
    }
    Owned(const Owned&) = delete;
    Owned& operator=(const Owned&) = delete;
    ~Owned() { reset(); }

    [[nodiscard]] const T& get() const noexcept { return value_; }
    // Reads as its value (an id or a descriptor number passes straight to a system call).
    operator const T&() const noexcept { return value_; }  // NOLINT(google-explicit-constructor)
    [[nodiscard]] bool owns() const noexcept { return owns_; }
    // Leaves the object behind: nothing is cleaned up, the value stays.
    void keep() noexcept { owns_ = false; }
    // Cleans up now (if owned); the value stays, owned no longer.
    void reset() noexcept {
        if (std::exchange(owns_, false)) release_(value_);
    }
    // Gives up the value and the duty to clean it up, to a caller that does it itself.
    [[nodiscard]] T release() noexcept {
        owns_ = false;
        return std::exchange(value_, empty());
    }

private:
    static T empty() noexcept {
        if constexpr (requires { Release::empty(); })
            return Release::empty();
        else
            return T{};
    }

    T value_ = empty();
    Release release_{};
    bool owns_ = false;
};

// A file a class made in the filesystem (a FIFO, a bound socket's file): its path, and what
// identifies the very file (its type, device and inode).
struct MadeFile {
    std::string path;
    mode_t type = 0;  // S_IFIFO, S_IFSOCK
    dev_t device = 0;
    ino_t inode = 0;
    // Whether `st` (an lstat of the path) is this very file.
    [[nodiscard]] bool is(const struct stat& st) const noexcept;
};
// Unlinks a MadeFile only while its path still names that very file: one that replaced it since
// survives.
struct UnlinkIfSame {
    void operator()(const MadeFile& file) const noexcept;
};
using OwnedFile = Owned<MadeFile, UnlinkIfSame>;

}  // namespace ipckit::detail
