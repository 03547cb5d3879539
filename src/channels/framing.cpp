#include "framing.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "channel_backend.hpp"
#include "ipckit/error.hpp"
#include "ipckit/io.hpp"

namespace ipckit::detail {
namespace {

constexpr std::size_t kReadAhead = 64 * 1024;

void put_u32(std::byte* out, std::uint32_t value) {
    for (int i = 0; i < 4; ++i)
        out[i] = static_cast<std::byte>(value >> (8 * i));
}

std::uint32_t get_u32(const std::byte* in) {
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i)
        value |= std::to_integer<std::uint32_t>(in[i]) << (8 * i);
    return value;
}

[[noreturn]] void too_large(std::string_view address, std::size_t length, std::size_t limit,
                            std::string_view what) {
    throw_error(std::errc::message_size,
                std::string(address) + ": " + std::string(what) + " of " + std::to_string(length) +
                    " bytes exceeds the channel's limit of " + std::to_string(limit) +
                    " bytes (max=" + format_size(limit) + ")");
}

}  // namespace

void throw_buffer_too_small(std::string_view address, std::size_t message, std::size_t buffer) {
    throw_error(std::errc::message_size, std::string(address) + ": the next message is " +
                                             std::to_string(message) + " bytes and the buffer holds " +
                                             std::to_string(buffer) +
                                             "; it stays queued for a larger buffer");
}

std::array<std::byte, kFrameHeaderSize> encode_frame_header(std::size_t length) {
    std::array<std::byte, kFrameHeaderSize> header{};
    put_u32(header.data(), kFrameMagic);
    put_u32(header.data() + 4, static_cast<std::uint32_t>(length));
    return header;
}

std::size_t decode_frame_header(std::span<const std::byte, kFrameHeaderSize> header, std::size_t limit,
                                std::string_view address) {
    if (get_u32(header.data()) != kFrameMagic) {
        char shown[3 * kFrameHeaderSize + 1] = {};
        for (std::size_t i = 0; i < kFrameHeaderSize; ++i) {
            std::snprintf(shown + 3 * i, 4, "%02x ", std::to_integer<unsigned>(header[i]));
        }
        throw_error(std::errc::protocol_error,
                    std::string(address) + ": the stream is not ipckit frames (it starts with " +
                        std::string(shown, 3 * kFrameHeaderSize - 1) +
                        "); if the peer writes lines of text, add ?framing=line to the address");
    }
    const std::size_t length = get_u32(header.data() + 4);
    if (length > limit) too_large(address, length, limit, "a frame header announces a message");
    return length;
}

IoResult write_frame(int fd, Framing framing, std::span<const std::byte> message, Deadline deadline,
                     std::size_t limit, std::string_view address, DescriptorKind kind) {
    if (message.size() > limit) too_large(address, message.size(), limit, "a message");
    if (framing == Framing::line) {
        if (std::find(message.begin(), message.end(), std::byte{'\n'}) != message.end()) {
            throw_error(std::errc::invalid_argument,
                        std::string(address) + ": a message with a newline cannot be sent with framing=line");
        }
        static constexpr std::byte newline{'\n'};
        const std::array<std::span<const std::byte>, 2> parts{message, std::span(&newline, 1)};
        const IoResult r = write_all(fd, parts, deadline, address, kind);
        return {r.status, r.ok() ? message.size() : 0};
    }
    const auto header = encode_frame_header(message.size());
    const std::array<std::span<const std::byte>, 2> parts{header, message};
    const IoResult r = write_all(fd, parts, deadline, address, kind);
    return {r.status, r.ok() ? message.size() : 0};
}

FrameReader::FrameReader(Framing framing, std::size_t limit, std::string address)
    : framing_(framing), limit_(limit), address_(std::move(address)) {
    buffer_.resize(framing_ == Framing::length
                       ? std::min(kReadAhead, limit_ + kFrameHeaderSize) + kFrameHeaderSize
                       : std::min(kReadAhead, limit_ + 1));
}

bool FrameReader::message_buffered() const {
    if (framing_ == Framing::line) {
        return std::find(buffer_.begin() + static_cast<std::ptrdiff_t>(begin_),
                         buffer_.begin() + static_cast<std::ptrdiff_t>(end_),
                         std::byte{'\n'}) != buffer_.begin() + static_cast<std::ptrdiff_t>(end_);
    }
    if (has_pending_) return buffered() >= pending_;
    if (buffered() < kFrameHeaderSize) return false;
    const std::size_t length = get_u32(buffer_.data() + begin_ + 4);
    return buffered() >= kFrameHeaderSize + length;
}

Status FrameReader::fill(int fd, std::size_t count, Deadline deadline) {
    while (buffered() < count) {
        if (eof_) return Status::closed;
        if (buffer_.size() - begin_ < count) {  // make room at the back
            std::memmove(buffer_.data(), buffer_.data() + begin_, buffered());
            end_ -= begin_;
            begin_ = 0;
            if (buffer_.size() < count)
                buffer_.resize(std::max(count, std::min(buffer_.size() * 2, limit_ + 1)));
        }
        // Once part of a message is here, the rest is awaited whatever the deadline, so a
        // timeout never tears a message; a dead peer still ends the wait with end of file.
        const Deadline wait = buffered() > 0 ? Deadline::never() : deadline;
        const IoResult r = read_some(fd, std::span(buffer_).subspan(end_), wait, address_);
        if (r.status == Status::closed) {
            eof_ = true;
            return Status::closed;
        }
        if (r.status != Status::ok) return r.status;
        end_ += r.bytes;
    }
    return Status::ok;
}

Status FrameReader::next_length(int fd, Deadline deadline, std::size_t& length) {
    if (has_pending_) {
        length = pending_;
        return Status::ok;
    }
    if (framing_ == Framing::line) {
        std::size_t scanned = 0;
        for (;;) {
            const auto first = buffer_.begin() + static_cast<std::ptrdiff_t>(begin_);
            const auto last = buffer_.begin() + static_cast<std::ptrdiff_t>(end_);
            const auto newline =
                std::find(first + static_cast<std::ptrdiff_t>(scanned), last, std::byte{'\n'});
            if (newline != last) {
                length = static_cast<std::size_t>(newline - first);
                break;
            }
            scanned = buffered();
            if (scanned > limit_) too_large(address_, scanned, limit_, "a line");
            const Status s = fill(fd, scanned + 1, deadline);
            if (s == Status::closed && scanned > 0) {
                length = scanned;  // a last line without its newline is still a message
                break;
            }
            if (s != Status::ok) return s;
        }
    } else {
        const Status s = fill(fd, kFrameHeaderSize, deadline);
        if (s != Status::ok) {
            if (s == Status::closed && buffered() > 0) {
                // A torn header is dropped, never delivered, and never passed off as a clean end.
                const std::size_t got = buffered();
                begin_ = end_;
                throw_error(std::errc::bad_message, address_ + ": the stream ended inside a frame header (" +
                                                        std::to_string(got) + " of " +
                                                        std::to_string(kFrameHeaderSize) + " bytes)");
            }
            return s;
        }
        length = decode_frame_header(std::span(buffer_).subspan(begin_).first<kFrameHeaderSize>(), limit_,
                                     address_);
        begin_ += kFrameHeaderSize;
    }
    pending_ = length;
    has_pending_ = true;
    return Status::ok;
}

IoResult FrameReader::take_body(int fd, std::span<std::byte> out, std::size_t length) {
    const std::size_t here = std::min(length, buffered());
    if (here != 0) std::memcpy(out.data(), buffer_.data() + begin_, here);  // an empty vector has no data()
    begin_ += here;
    has_pending_ = false;
    if (framing_ == Framing::line) {
        if (begin_ < end_) ++begin_;  // the newline
    } else if (here < length) {
        // Large bodies go straight into the caller's buffer, not through ours.
        const IoResult r = read_exact(fd, out.subspan(here, length - here), Deadline::never(), address_);
        if (r.status != Status::ok) {
            eof_ = r.status == Status::closed;
            if (r.status != Status::closed) return {r.status, 0};
            // The peer stopped mid-message: nothing partial is delivered, and the reader is told.
            throw_error(std::errc::bad_message, address_ + ": the stream ended inside a frame (" +
                                                    std::to_string(here + r.bytes) + " of " +
                                                    std::to_string(length) + " body bytes)");
        }
    }
    if (begin_ == end_) begin_ = end_ = 0;
    return {Status::ok, length};
}

IoResult FrameReader::read(int fd, std::span<std::byte> out, Deadline deadline) {
    std::size_t length = 0;
    const Status s = next_length(fd, deadline, length);
    if (s != Status::ok) return {s, 0};
    if (length > out.size()) throw_buffer_too_small(address_, length, out.size());
    return take_body(fd, out, length);
}

IoResult FrameReader::read(int fd, std::vector<std::byte>& out, Deadline deadline) {
    std::size_t length = 0;
    const Status s = next_length(fd, deadline, length);
    if (s != Status::ok) return {s, 0};
    out.resize(length);
    return take_body(fd, out, length);
}

}  // namespace ipckit::detail
