// ipckit/pipe.hpp — unnamed pipes: a one-way byte stream between related processes.
//
// `Pipe::create()` makes a pipe as two typed ends, a `PipeReader` and a `PipeWriter`, each
// owning its descriptor (close-on-exec). A child made by fork(2) inherits both; keep the
// end you use and let the other go, or end of file never comes. To hand an end to a program
// started with exec(2), call `inherit_across_exec()` on that one end in the child and pass the
// number it returns in argv; the program takes it back with `PipeReader::adopt(number)`.
// FIFOs (ipckit/fifo.hpp) open into the same two types.
//
// Results: reads and writes return `IoResult`. End of file (every writer closed) and a write
// with no reader left are `Status::closed`: a value, never an exception and never SIGPIPE.
// With a deadline, `timed_out` is a value too; with Deadline::immediate(), `would_block`
// (for writes, also call set_nonblocking(true): a blocking descriptor's write(2) waits for
// room whatever the deadline). Deadline::never() waits, even on a non-blocking end.
//
// Atomicity: a write of at most `atomic_write_limit` (PIPE_BUF, 4096 bytes on Linux) bytes
// is never interleaved with other writers' data, so several processes may write records of
// that size into one pipe and the reader gets each record whole. Larger writes may be split.
//
// Example (the lecture's pipe2):
//     auto pipe = ipckit::Pipe::create();
//     if (fork() == 0) {
//         pipe.writer.close();                       // or the reader never sees end of file
//         std::array<std::byte, 64> buffer;
//         auto r = pipe.reader.read_some(buffer);
//         ...
//     }
//     pipe.reader.close();
//     (void)pipe.writer.write_all(ipckit::as_bytes("123"));
//
// Errors: a failing system call throws `ipckit::Error` naming the call and the end
// ("read(pipe fd 3): ..."). `adopt` throws when the number is not an open pipe or FIFO end
// of the right direction; `set_capacity` throws when the kernel refuses the size.
// Thread-safety: like `Fd`. One thread at a time per end; distinct ends are independent.
#pragma once

#include <limits.h>  // PIPE_BUF

#include <cstddef>
#include <span>
#include <string>
#include <utility>

#include "ipckit/deadline.hpp"
#include "ipckit/fd.hpp"

namespace ipckit {

namespace detail {

// What both ends of a pipe or FIFO share. Not used on its own.
class PipeEnd {
public:
    // Writes of at most this many bytes are atomic: never interleaved with another writer's.
    static constexpr std::size_t atomic_write_limit = PIPE_BUF;

    [[nodiscard]] const Fd& fd() const noexcept { return fd_; }
    [[nodiscard]] bool valid() const noexcept { return fd_.valid(); }
    // What errors call this end: "pipe fd 3" or "fifo /tmp/x".
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    // Gives up the descriptor: the caller now owns it.
    [[nodiscard]] Fd release() noexcept;
    // Closes this end now (a writer's reader then sees end of file once all writers closed).
    void close() noexcept;

    void set_nonblocking(bool on) const;

    // The pipe's buffer size in bytes (F_GETPIPE_SZ); 65536 by default on Linux.
    [[nodiscard]] std::size_t capacity() const;
    // Sets the buffer size (F_SETPIPE_SZ) and returns the size the kernel chose: at least
    // `bytes`, rounded up to a power-of-two number of pages. Throws when the kernel refuses:
    // over /proc/sys/fs/pipe-max-size without CAP_SYS_RESOURCE, or smaller than the data
    // the pipe holds now.
    std::size_t set_capacity(std::size_t bytes) const;

    // Makes this one descriptor survive exec(2) and returns its number, for the exec'd
    // program's argv. Call it in the child after fork(2): in the parent, any other thread
    // that forks and execs meanwhile would hand this end to its program as well.
    [[nodiscard]] int inherit_across_exec() const;

protected:
    PipeEnd() = default;
    PipeEnd(Fd fd, std::string name) noexcept;
    PipeEnd(PipeEnd&&) noexcept = default;
    PipeEnd& operator=(PipeEnd&&) noexcept = default;
    ~PipeEnd() = default;

    Fd fd_;
    std::string name_;
};

}  // namespace detail

// The read end of a pipe or FIFO.
class PipeReader : public detail::PipeEnd {
public:
    PipeReader() = default;
    // Takes ownership of an open read end; `name` is what errors will call it.
    PipeReader(Fd fd, std::string name) noexcept : PipeEnd(std::move(fd), std::move(name)) {}

    // Takes ownership of an inherited descriptor (the number pipe3 passes to pipe4, or 0 when
    // standard input is a pipe), after checking with fstat(2) and fcntl(2) that it is an open
    // pipe or FIFO readable end. It is made close-on-exec so it is not handed further.
    // When the check fails, the descriptor is left open and as it was.
    [[nodiscard]] static PipeReader adopt(int fd);

    // Reads at least one byte, or returns why not: `closed` at end of file (every writer
    // closed), `would_block` (Deadline::immediate() and nothing to read), `timed_out`.
    [[nodiscard]] IoResult read_some(std::span<std::byte> buffer, Deadline deadline = Deadline::never());
    // Fills `buffer` entirely; at end of file gives `closed` with the bytes read so far
    // (0 = a clean end between records, more = the writer stopped mid-record).
    [[nodiscard]] IoResult read_exact(std::span<std::byte> buffer, Deadline deadline = Deadline::never());
};

// The write end of a pipe or FIFO.
class PipeWriter : public detail::PipeEnd {
public:
    PipeWriter() = default;
    PipeWriter(Fd fd, std::string name) noexcept : PipeEnd(std::move(fd), std::move(name)) {}

    // As PipeReader::adopt, for an inherited writable end.
    [[nodiscard]] static PipeWriter adopt(int fd);

    // Writes all of `data`; at most atomic_write_limit bytes are written atomically.
    // `closed` means no reader is left (no SIGPIPE is raised).
    [[nodiscard]] IoResult write_all(std::span<const std::byte> data, Deadline deadline = Deadline::never());
    // Writes several parts in order with one writev(2): a header and its body stay together,
    // atomically when their total is at most atomic_write_limit.
    [[nodiscard]] IoResult write_all(std::span<const std::span<const std::byte>> parts,
                                     Deadline deadline = Deadline::never());
};

// An unnamed pipe: what goes into `writer` comes out of `reader`, in order.
struct Pipe {
    PipeReader reader;
    PipeWriter writer;

    // pipe2(2) with O_CLOEXEC: neither end leaks into a program started with exec.
    [[nodiscard]] static Pipe create();
};

}  // namespace ipckit
