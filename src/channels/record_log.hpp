// channels/record_log.hpp — the format of a recorded log (`file:PATH`), and its reader.
//
// Internal: used by the file: channel (src/channels/channel_file.cpp) and its fuzz target.
// A log is a 16-byte header, then records, all integers little-endian (docs/record-replay.md):
//
//     header:  magic "IPKLOG\r\n" (8 bytes), version u32 (1), flags u32 (0)
//     record:  length u32, timestamp u64 (ns since the Unix epoch, when it was sent), bytes
//
// The file may come from anyone who could write it and is untrusted: a wrong magic or version,
// a length over the limit, or a log that ends inside a header or a record is an Error that
// says where (byte offset and record number, counted from 1), thrown only once every record
// before it was taken. Lengths are checked against the limit and the file's size before any
// allocation.
//
// Example:
//     detail::LogReader log(std::move(fd), 16 << 20, "file:/tmp/cam.ipk");
//     while (const auto* next = log.peek()) { std::vector<std::byte> m(next->length); log.take(m); }
//
// Errors: std::errc::protocol_error (not a log: magic, version), std::errc::message_size (a
// length over the limit), std::errc::bad_message (the log ends inside a header or a record).
// A failure is sticky: every later call throws it again. Thread-safety: one thread per reader.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"

namespace ipckit::detail {

inline constexpr std::array<char, 8> kLogMagic{'I', 'P', 'K', 'L', 'O', 'G', '\r', '\n'};
inline constexpr std::uint32_t kLogVersion = 1;
inline constexpr std::size_t kLogHeaderSize = 16;
inline constexpr std::size_t kLogRecordHeaderSize = 12;  // length u32, timestamp u64

[[nodiscard]] std::array<std::byte, kLogHeaderSize> encode_log_header();
[[nodiscard]] std::array<std::byte, kLogRecordHeaderSize> encode_log_record_header(
    std::uint32_t length, std::uint64_t timestamp_ns);

struct LogRecord {
    std::uint32_t length = 0;
    std::uint64_t timestamp_ns = 0;
    std::uint64_t number = 0;  // from 1
    std::uint64_t offset = 0;  // of its record header
};

class LogReader {
public:
    // Reads and checks the log's header from the descriptor's current offset (0 for a fresh open).
    LogReader(Fd fd, std::size_t limit, std::string object);

    // The next record's header, not consumed, or nullptr at the end of the log. Throws on a
    // damaged record (see above). Repeated calls return the same record until take().
    [[nodiscard]] const LogRecord* peek();
    // Reads the body of the peeked record into `out` (exactly its length) and consumes it.
    void take(std::span<std::byte> out);
    // Consumes the peeked record without reading its body.
    void skip();
    // Bytes of whole records and header read so far: where the next record starts.
    [[nodiscard]] std::uint64_t offset() const { return offset_; }
    [[nodiscard]] std::uint64_t records() const { return taken_; }

private:
    [[noreturn]] void fail(std::errc code, const std::string& what);
    // Reads exactly out.size() bytes; fewer only at the end of the file.
    [[nodiscard]] std::size_t read_fully(std::span<std::byte> out);
    [[nodiscard]] std::uint64_t file_size() const;

    Fd fd_;
    std::size_t limit_;
    std::string object_;
    std::uint64_t offset_ = 0;
    std::uint64_t taken_ = 0;
    std::uint64_t known_size_ =
        0;  // the file's size when last asked (a file cut shorter since: take() sees it)
    std::optional<LogRecord> next_;
    std::optional<Error> failure_;
};

}  // namespace ipckit::detail
