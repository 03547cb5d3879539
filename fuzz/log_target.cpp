// Fuzz target: the reader of recorded logs (src/channels/record_log.hpp), what a file:
// receiver replays. A log may come from anyone who could write the file, so any bytes must give
// whole records, the end, or an Error — never a crash, an allocation of a size the file chose,
// or a record over the limit — and every record before the damage must come out first.
//
// Input: byte 0 is the reader's limit (255 means 70000); byte 1 bit 0 chooses skipping bodies
// instead of reading them; the rest is the log, written into a memfd that the reader reads as a
// file. The records it gives are compared with a straightforward reference decoder.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "channels/record_log.hpp"
#include "fuzz_targets.hpp"
#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/io.hpp"

namespace ipckit::fuzz {
namespace {
// Named: tests/faults/fuzz_regression_test.cpp includes every target into one translation unit.
namespace log_input {

using Bytes = std::vector<std::byte>;

void check(bool ok, const char* what) {
    if (!ok) fuzz_fail("log", what);
}

struct Expected {
    std::vector<Bytes> records;
    std::optional<std::errc> error;
};

Expected reference(std::span<const std::byte> log, std::size_t limit) {
    Expected e;
    if (log.size() < detail::kLogHeaderSize) {
        e.error = std::errc::bad_message;
        return e;
    }
    for (std::size_t i = 0; i < detail::kLogMagic.size(); ++i) {
        if (log[i] != static_cast<std::byte>(detail::kLogMagic[i])) {
            e.error = std::errc::protocol_error;
            return e;
        }
    }
    if (little_endian(log.subspan(8), 4) != detail::kLogVersion) {
        e.error = std::errc::protocol_error;
        return e;
    }
    std::size_t at = detail::kLogHeaderSize;
    while (at < log.size()) {
        if (log.size() - at < detail::kLogRecordHeaderSize) {
            e.error = std::errc::bad_message;
            return e;
        }
        const std::size_t length = little_endian(log.subspan(at), 4);
        if (length > limit) {
            e.error = std::errc::message_size;
            return e;
        }
        at += detail::kLogRecordHeaderSize;
        if (log.size() - at < length) {
            e.error = std::errc::bad_message;
            return e;
        }
        e.records.emplace_back(log.begin() + static_cast<std::ptrdiff_t>(at),
                               log.begin() + static_cast<std::ptrdiff_t>(at + length));
        at += length;
    }
    return e;
}

Fd file_of(std::span<const std::byte> log) {
    Fd fd(::memfd_create("ipckit-fuzz-log", MFD_CLOEXEC));
    if (!fd) throw_errno("memfd_create", "fuzz");
    const IoResult r = write_all(fd.get(), log, Deadline::never(), "fuzz");
    check(r.ok(), "the log could not be written to the memfd");
    if (::lseek(fd.get(), 0, SEEK_SET) != 0) throw_errno("lseek", "fuzz");
    return fd;
}

}  // namespace log_input
}  // namespace

int fuzz_log(const std::uint8_t* data, std::size_t size) {
    using namespace log_input;
    constexpr std::size_t kConfigBytes = 2;
    if (size < kConfigBytes) return 0;
    const std::size_t limit = data[0] == 255 ? 70000 : data[0];
    const bool skip_bodies = (data[1] & 1) != 0;
    const std::span<const std::byte> log(reinterpret_cast<const std::byte*>(data) + kConfigBytes,
                                         size - kConfigBytes);
    const Expected expected = reference(log, limit);
    std::size_t delivered = 0;
    try {
        detail::LogReader reader(file_of(log), limit, "fuzz");
        for (;;) {
            const detail::LogRecord* next = reader.peek();
            if (next == nullptr) break;
            check(delivered < expected.records.size(), "a record the reference does not have");
            check(next->length <= limit, "a record over the limit");
            check(next->number == delivered + 1, "a record numbered out of turn");
            if (skip_bodies) {
                check(next->length == expected.records[delivered].size(), "a length unlike the reference's");
                reader.skip();
            } else {
                Bytes body(next->length);
                reader.take(body);
                check(body == expected.records[delivered], "a record unlike the reference's");
            }
            ++delivered;
        }
        check(!expected.error && delivered == expected.records.size(), "the end before every record");
    } catch (const Error& e) {
        check(expected.error.has_value() && delivered == expected.records.size(),
              "an error where the reference reads a record");
        check(e.code() == std::make_error_condition(*expected.error),
              "an error of another kind than the reference's");
    }
    return 0;
}

}  // namespace ipckit::fuzz
