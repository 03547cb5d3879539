// ipckit/fifo.hpp — named pipes (FIFOs): a pipe with a name in the filesystem, so that
// unrelated processes can find it.
//
// One process creates the FIFO with `Fifo::create` and owns its name: the owner unlinks it
// when it goes away, unless `keep()` was called. Any process with permission opens it with
// `Fifo::open_read` or `Fifo::open_write`, which give the same `PipeReader` / `PipeWriter` as
// an unnamed pipe (ipckit/pipe.hpp): end of file and a vanished reader are `Status::closed`.
//
// Opening follows the kernel's rules, which the lecture describes:
//   OpenMode::blocking     open for reading waits until a writer opens, and the other way round.
//   OpenMode::nonblocking  open for reading returns at once, writer or not (a read then gives
//                          `would_block` with Deadline::immediate(), or `closed` from a plain
//                          read(2) while no writer has the FIFO open); open for writing with
//                          no reader fails with ENXIO, thrown as an Error with that code.
// The Deadline forms wait for the other side at most until the deadline and give
// std::nullopt when it did not come: open_write retries the non-blocking open until a reader
// has the FIFO open; open_read opens at once and waits until a writer has written or come and
// gone (the kernel shows no sign of a writer that opened and stays silent). While waiting, a
// path that does not exist yet counts as "the other side has not come yet", so a peer may
// start before the creator; if it still does not exist at the deadline, that is an Error.
// Ends opened with a Deadline are in blocking mode.
//
// Safety: creation is exclusive (an existing path of any kind is EEXIST) with exact
// permissions, 0600 by default, whatever the umask. Nothing is ever opened through a
// symbolic link (O_NOFOLLOW), and a path that is not a FIFO (a regular file, a device...) is
// refused before it is opened, then checked again with fstat(2) on what was opened.
//
// Example:
//     auto fifo = ipckit::Fifo::create("/tmp/telemetry");               // consumer
//     auto reader = ipckit::Fifo::open_read(fifo.path());                // waits for a writer
//
//     auto writer = ipckit::Fifo::open_write("/tmp/telemetry",           // producer
//                                            ipckit::Deadline::after(std::chrono::seconds(5)));
//     if (!writer) { /* no consumer within 5 s */ }
//     (void)writer->write_all(ipckit::as_bytes("hello"));
//
// Errors: `ipckit::Error` naming the call and the path: "mkfifo(/tmp/x): File exists",
// "open(/tmp/x): No such device or address" (ENXIO: no reader), "open(/tmp/x): a regular
// file, not a FIFO: Invalid argument", "open(/tmp/x): a symbolic link, ...".
// Thread-safety: a Fifo is a value-like owner; the static functions are safe from any thread.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "ipckit/deadline.hpp"
#include "ipckit/detail/owned.hpp"
#include "ipckit/pipe.hpp"

namespace ipckit {

enum class OpenMode {
    blocking,     // open(2) waits for the other side
    nonblocking,  // O_NONBLOCK: open(2) returns at once, and the end stays non-blocking
};

class Fifo {
public:
    // mkfifo(2) exclusively, then sets `mode` exactly (the umask does not apply).
    [[nodiscard]] static Fifo create(std::string path, mode_t mode = 0600);

    // Opens with the kernel's blocking or non-blocking semantics (see above).
    [[nodiscard]] static PipeReader open_read(const std::string& path, OpenMode mode = OpenMode::blocking);
    [[nodiscard]] static PipeWriter open_write(const std::string& path, OpenMode mode = OpenMode::blocking);
    // Waits for the other side until `deadline`; std::nullopt when it did not come.
    [[nodiscard]] static std::optional<PipeReader> open_read(const std::string& path, Deadline deadline);
    [[nodiscard]] static std::optional<PipeWriter> open_write(const std::string& path, Deadline deadline);

    Fifo() = default;
    Fifo(Fifo&&) noexcept = default;
    Fifo& operator=(Fifo&&) noexcept = default;  // removes what it replaces, as the destructor
    Fifo(const Fifo&) = delete;
    Fifo& operator=(const Fifo&) = delete;
    // Unlinks the FIFO unless kept, and only if the path still names the FIFO this owner
    // created (something put there since is left alone).
    ~Fifo() = default;

    [[nodiscard]] const std::string& path() const noexcept { return file_.get().path; }
    // Whether this owner will unlink the FIFO when it goes away.
    [[nodiscard]] bool owns() const noexcept { return file_.owns(); }

    // Leaves the FIFO in the filesystem when this owner goes away.
    void keep() noexcept { file_.keep(); }
    // Unlinks the FIFO now; afterwards this owner owns nothing. Throws if unlink(2) fails or
    // the path no longer names the FIFO this owner created.
    void remove();

private:
    explicit Fifo(detail::MadeFile file) noexcept;

    detail::OwnedFile file_;  // unlinked only while the path still names this FIFO
};

}  // namespace ipckit
