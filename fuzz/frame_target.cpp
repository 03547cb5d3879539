// Fuzz target: the frame decoder of every stream transport (src/channels/framing.hpp).
// The stream comes from another process, so any bytes must give whole messages, `closed`, or an
// Error (a stream that ends inside a frame is one) — never a crash, an allocation of a size the peer chose,
// or a message over the limit.
//
// Input: byte 0 picks the framing (bit 0: line), the descriptor (bit 1: socketpair, else pipe)
// and how messages are read (bits 2-3: into a vector, into a fixed buffer, or alternating);
// byte 1 is the channel's limit (255 means 70000, above the decoder's 64 KiB read-ahead); byte 2
// the fixed buffer's size; the rest is the stream. The stream is written whole into a real pipe
// or socketpair whose write end is then closed, so every read ends; the messages the decoder
// delivers are compared with a straightforward reference decoder of the same bytes.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "channels/framing.hpp"
#include "fuzz_targets.hpp"
#include "ipckit/address.hpp"
#include "ipckit/deadline.hpp"
#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"

namespace ipckit::fuzz {
namespace {
// Named: tests/faults/fuzz_regression_test.cpp includes every target into one translation unit.
namespace frame_input {

using Bytes = std::vector<std::byte>;

void check(bool ok, const char* what) {
    if (!ok) fuzz_fail("frame", what);
}

// What a correct decoder delivers: the messages in order, then either end of stream or the first
// error (its code).
struct Expected {
    std::vector<Bytes> messages;
    std::optional<std::errc> error;
};

std::uint32_t le32(std::span<const std::byte> bytes) {
    return static_cast<std::uint32_t>(little_endian(bytes, 4));
}

Expected reference_length(std::span<const std::byte> stream, std::size_t limit) {
    Expected e;
    std::size_t at = 0;
    while (stream.size() - at >= detail::kFrameHeaderSize) {
        if (le32(stream.subspan(at)) != detail::kFrameMagic) {
            e.error = std::errc::protocol_error;
            return e;
        }
        const std::size_t length = le32(stream.subspan(at + 4));
        if (length > limit) {
            e.error = std::errc::message_size;
            return e;
        }
        at += detail::kFrameHeaderSize;
        if (stream.size() - at < length) {  // a torn body is never delivered, and is an error
            e.error = std::errc::bad_message;
            return e;
        }
        e.messages.emplace_back(stream.begin() + static_cast<std::ptrdiff_t>(at),
                                stream.begin() + static_cast<std::ptrdiff_t>(at + length));
        at += length;
    }
    if (at != stream.size()) e.error = std::errc::bad_message;  // so is a torn header at the end
    return e;
}

Expected reference_line(std::span<const std::byte> stream, std::size_t limit) {
    Expected e;
    std::size_t at = 0;
    while (at < stream.size()) {
        const auto first = stream.begin() + static_cast<std::ptrdiff_t>(at);
        const auto newline = std::find(first, stream.end(), std::byte{'\n'});
        const auto length = static_cast<std::size_t>(newline - first);
        if (length > limit) {
            e.error = std::errc::message_size;
            return e;
        }
        e.messages.emplace_back(first, newline);  // a last line without its newline counts too
        at += length + (newline != stream.end() ? 1 : 0);
    }
    return e;
}

bool is(const Error& e, std::errc code) {
    return e.code() == std::make_error_condition(code);
}

// Writes the stream into a fresh pipe or socketpair, closes the writer, returns the reader.
Fd feed(std::span<const std::byte> stream, bool socket) {
    std::array<int, 2> ends{};
    if (socket) {
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends.data()) != 0)
            throw_errno("socketpair", "fuzz");
    } else {
        if (::pipe2(ends.data(), O_CLOEXEC) != 0) throw_errno("pipe2", "fuzz");
    }
    Fd reader(ends[0]);
    const Fd writer(ends[1]);
    // The stream is capped below the smallest buffer (a pipe's 64 KiB), so this never blocks.
    const IoResult r = write_all(writer.get(), stream, Deadline::never(), "fuzz");
    check(r.ok() && r.bytes == stream.size(), "the stream did not fit in the pipe");
    return reader;
}

void decode_header_alone(std::span<const std::byte> stream, std::size_t limit) {
    if (stream.size() < detail::kFrameHeaderSize) return;
    const auto header = stream.first<detail::kFrameHeaderSize>();
    try {
        const std::size_t length = detail::decode_frame_header(header, limit, "fuzz");
        check(le32(header) == detail::kFrameMagic && length == le32(header.subspan(4)) && length <= limit,
              "decode_frame_header accepted a bad header or changed the length");
    } catch (const Error& e) {
        check(is(e, std::errc::protocol_error) || is(e, std::errc::message_size),
              "decode_frame_header threw an unexpected error code");
    }
}

}  // namespace frame_input
}  // namespace

int fuzz_frame(const std::uint8_t* data, std::size_t size) {
    using namespace frame_input;
    constexpr std::size_t kConfigBytes = 3;
    constexpr std::size_t kMaxStream = 60000;
    if (size < kConfigBytes) return 0;
    const Framing framing = (data[0] & 1) != 0 ? Framing::line : Framing::length;
    const bool socket = (data[0] & 2) != 0;
    const unsigned read_style = (data[0] >> 2) & 3;  // 0 vector, 1 fixed buffer, 2/3 alternate
    const std::size_t limit = data[1] == 255 ? 70000 : data[1];
    Bytes fixed(data[2]);
    const std::span<const std::byte> stream(reinterpret_cast<const std::byte*>(data) + kConfigBytes,
                                            std::min(size - kConfigBytes, kMaxStream));

    decode_header_alone(stream, limit);
    const Expected expected =
        framing == Framing::length ? reference_length(stream, limit) : reference_line(stream, limit);

    const Fd reader = feed(stream, socket);
    detail::FrameReader frames(framing, limit, "fuzz");
    std::size_t delivered = 0;
    bool retry_into_vector = false;
    for (std::size_t round = 0;; ++round) {
        check(round <= expected.messages.size() + 2, "more reads than the stream has messages");
        (void)frames.message_buffered();  // inspects the read-ahead buffer: must stay in bounds
        Bytes message;
        IoResult r;
        const bool into_fixed =
            !retry_into_vector && (read_style == 1 || (read_style >= 2 && round % 2 == 1));
        try {
            retry_into_vector = false;
            if (into_fixed) {
                r = frames.read(reader.get(), fixed, Deadline::never());
                if (r.ok())
                    message.assign(fixed.begin(), fixed.begin() + static_cast<std::ptrdiff_t>(r.bytes));
            } else {
                r = frames.read(reader.get(), message, Deadline::never());
                check(!r.ok() || r.bytes == message.size(), "vector read reports a size it did not give");
            }
        } catch (const Error& e) {
            // message_size is also the reference's error for a frame over the limit; a buffer
            // too small is told apart by what comes next: a message that fits the limit.
            if (into_fixed && is(e, std::errc::message_size) && delivered < expected.messages.size() &&
                expected.messages[delivered].size() > fixed.size()) {
                // The message stays queued; a large enough buffer must get it next.
                retry_into_vector = true;
                continue;
            }
            check(expected.error.has_value() && delivered == expected.messages.size(),
                  "an error where the reference decodes a message");
            check(is(e, *expected.error), "an error of another kind than the reference's");
            return 0;
        }
        if (r.status == Status::closed) {
            check(!expected.error && delivered == expected.messages.size(), "closed before every message");
            return 0;
        }
        check(r.ok(), "neither a message nor closed from a stream whose writer has closed");
        check(delivered < expected.messages.size(), "a message the reference does not have");
        check(message.size() <= limit, "a message over the channel's limit");
        check(message == expected.messages[delivered], "a message that differs from the reference's");
        ++delivered;
    }
}

}  // namespace ipckit::fuzz
