// framing.hpp — the one framing routine of every stream transport.
//
// Internal. A byte stream (pipe, FIFO, stream socket, TCP) keeps no message boundaries, so
// ipckit sends each message as a frame: an 8-byte header (the magic "IPK1", then the body's
// length, both little-endian u32) and the body. With `framing=line` a message is one line of
// text instead, so ipckit talks to `echo`, `cat`, `socat` and `nc`.
//
// The header comes from another process and is untrusted: a wrong magic, or a length over
// the channel's limit, is an Error (std::errc::protocol_error / message_size) that says so —
// never an allocation of a hostile size.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ipckit/address.hpp"
#include "ipckit/deadline.hpp"
#include "ipckit/io.hpp"

namespace ipckit::detail {

inline constexpr std::size_t kFrameHeaderSize = 8;
inline constexpr std::uint32_t kFrameMagic = 0x314b5049;  // "IPK1" in little-endian byte order

[[nodiscard]] std::array<std::byte, kFrameHeaderSize> encode_frame_header(std::size_t length);
// Returns the body length; throws on a bad magic or a length over `limit`.
[[nodiscard]] std::size_t decode_frame_header(std::span<const std::byte, kFrameHeaderSize> header,
                                              std::size_t limit, std::string_view address);

// Writes one message as a frame (or a line) with a single writev.
[[nodiscard]] IoResult write_frame(int fd, Framing framing, std::span<const std::byte> message,
                                   Deadline deadline, std::size_t limit, std::string_view address,
                                   DescriptorKind kind = DescriptorKind::unknown);

// Reads frames from one descriptor. It reads ahead into its own buffer, so one read(2)
// usually brings a whole small message; the buffer never grows past the channel's limit.
class FrameReader {
public:
    FrameReader(Framing framing, std::size_t limit, std::string address);

    // One whole message into `out` (size in `bytes`). A message larger than `out` is an
    // Error saying both sizes; it stays pending for the next call.
    [[nodiscard]] IoResult read(int fd, std::span<std::byte> out, Deadline deadline);
    [[nodiscard]] IoResult read(int fd, std::vector<std::byte>& out, Deadline deadline);
    // True when a whole message is already buffered (a poll on the descriptor would miss it).
    [[nodiscard]] bool message_buffered() const;

private:
    // Ensures `count` bytes are buffered; the first read waits until `deadline`.
    [[nodiscard]] Status fill(int fd, std::size_t count, Deadline deadline);
    [[nodiscard]] Status next_length(int fd, Deadline deadline, std::size_t& length);
    [[nodiscard]] IoResult take_body(int fd, std::span<std::byte> out, std::size_t length);
    [[nodiscard]] std::size_t buffered() const { return end_ - begin_; }

    Framing framing_;
    std::size_t limit_;
    std::string address_;
    std::vector<std::byte> buffer_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    std::size_t pending_ = 0;  // length of a message whose header was read but not its body
    bool has_pending_ = false;
    bool eof_ = false;
};

}  // namespace ipckit::detail
