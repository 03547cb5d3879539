// ipckit/io.hpp — reading and writing descriptors without the usual traps.
//
// Every helper retries on EINTR, completes short reads and writes, honours a `Deadline`
// (poll(2) on the monotonic clock), and never raises SIGPIPE: writing to a pipe or socket
// whose reader is gone returns `Status::closed` instead of killing the process. End of file
// is a value too (`Status::closed`), never an exception. For a pipe, no SIGPIPE costs three
// system calls around each write (the signal is held back for this thread, and consumed if
// the write raised it) unless the process called `ignore_sigpipe()`.
//
// Example:
//     std::array<std::byte, 4> header;
//     auto r = ipckit::read_exact(fd.get(), header, ipckit::Deadline::never(), "fifo /tmp/x");
//     if (r.status == ipckit::Status::closed && r.bytes == 0) { /* clean end of stream */ }
//
// A deadline is exact for any descriptor: when it is not `never`, each system call is
// preceded by a poll(2). `Deadline::never()` skips the poll and costs only the call itself.
//
// Errors: any other failure throws `ipckit::Error` naming the call and `object`.
// Thread-safety: the helpers keep no state; SIGPIPE is held back per calling thread.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "ipckit/deadline.hpp"

namespace ipckit {

// Reads once: at least one byte unless the result is not ok. EOF gives `closed` with 0 bytes.
[[nodiscard]] IoResult read_some(int fd, std::span<std::byte> buffer, Deadline deadline,
                                 std::string_view object);

// Reads exactly `buffer.size()` bytes. End of file before that gives `closed` with the count
// read so far (0 = a clean end between records; more = the peer stopped mid-record).
// The deadline applies until the first byte: once a record has begun it is read to the end
// (or to end of file), so a timeout never leaves a stream torn.
[[nodiscard]] IoResult read_exact(int fd, std::span<std::byte> buffer, Deadline deadline,
                                  std::string_view object);

// What a descriptor is, when the caller knows: a socket is written with MSG_NOSIGNAL, anything
// else under a SIGPIPE guard. `unknown` costs one fstat(2) per write to find out.
enum class DescriptorKind { unknown, pipe, socket };

// Writes all of `data`. A reader that is gone gives `closed` with the count written. Like
// read_exact, the deadline applies until the first byte is out.
[[nodiscard]] IoResult write_all(int fd, std::span<const std::byte> data, Deadline deadline,
                                 std::string_view object, DescriptorKind kind = DescriptorKind::unknown);

// Writes all of several buffers in order, with writev(2) so that a small header and its
// body leave in one system call (and, for at most PIPE_BUF bytes on a pipe, atomically).
[[nodiscard]] IoResult write_all(int fd, std::span<const std::span<const std::byte>> parts, Deadline deadline,
                                 std::string_view object, DescriptorKind kind = DescriptorKind::unknown);

// Sets SIGPIPE to be ignored in the whole process, for good. Writes to pipes then need no
// per-write guard (three system calls fewer each). Programs that own their signal handling,
// like the ipckit tool, call it at start; a library user may, and need not.
void ignore_sigpipe();

// Waits until the descriptor is readable (or has hung up) / writable.
[[nodiscard]] Status wait_readable(int fd, Deadline deadline, std::string_view object);
[[nodiscard]] Status wait_writable(int fd, Deadline deadline, std::string_view object);

// Bytes of a string, for the common case of sending text.
[[nodiscard]] inline std::span<const std::byte> as_bytes(std::string_view text) noexcept {
    return std::as_bytes(std::span(text.data(), text.size()));
}

}  // namespace ipckit
