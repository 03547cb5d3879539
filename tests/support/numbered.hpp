// Test support: numbered, checksummed messages, and the receiver's check of a stream of them.
//
// The fault suites send a stream of these and kill a process somewhere in it. Each message
// says which one it is and carries a checksum of its own bytes, so the survivor can tell a
// whole message from a torn one, and a duplicate or a gap from the expected next one.
//
//     [sequence: u64][payload length: u32][FNV-1a of the payload: u32][payload]
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

namespace ipckit::test {

inline constexpr std::size_t kNumberedHeader = 16;

inline std::uint32_t fnv1a(std::span<const std::byte> bytes) {
    std::uint32_t hash = 2166136261u;
    for (const std::byte b : bytes) {
        hash ^= static_cast<std::uint32_t>(b);
        hash *= 16777619u;
    }
    return hash;
}

// Message `sequence` with `payload` bytes that differ from one message to the next.
inline std::vector<std::byte> numbered_message(std::uint64_t sequence, std::size_t payload) {
    std::vector<std::byte> message(kNumberedHeader + payload);
    std::uint64_t x = sequence * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
    for (std::size_t i = kNumberedHeader; i < message.size(); ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        message[i] = static_cast<std::byte>(x);
    }
    const auto length = static_cast<std::uint32_t>(payload);
    const std::uint32_t sum = fnv1a(std::span(message).subspan(kNumberedHeader));
    std::memcpy(message.data(), &sequence, 8);
    std::memcpy(message.data() + 8, &length, 4);
    std::memcpy(message.data() + 12, &sum, 4);
    return message;
}

// The message's sequence number, or nothing when it is not whole (short, wrong length, or a
// checksum that does not match).
inline std::optional<std::uint64_t> whole_message_sequence(std::span<const std::byte> message) {
    if (message.size() < kNumberedHeader) return std::nullopt;
    std::uint64_t sequence = 0;
    std::uint32_t length = 0;
    std::uint32_t sum = 0;
    std::memcpy(&sequence, message.data(), 8);
    std::memcpy(&length, message.data() + 8, 4);
    std::memcpy(&sum, message.data() + 12, 4);
    if (length != message.size() - kNumberedHeader) return std::nullopt;
    if (fnv1a(message.subspan(kNumberedHeader)) != sum) return std::nullopt;
    return sequence;
}

// What a receiver saw of a stream numbered from 0.
struct SequenceCheck {
    std::uint64_t next = 0;        // the sequence number expected next = whole messages in order
    std::uint64_t received = 0;    // whole messages, in order or not
    std::uint64_t torn = 0;        // not whole
    std::uint64_t duplicated = 0;  // a number seen before
    std::uint64_t skipped = 0;     // numbers jumped over: lost in the middle of the stream

    void take(std::span<const std::byte> message) {
        const auto sequence = whole_message_sequence(message);
        if (!sequence) {
            ++torn;
            return;
        }
        ++received;
        if (*sequence < next) {
            ++duplicated;
            return;
        }
        skipped += *sequence - next;
        next = *sequence + 1;
    }
};

}  // namespace ipckit::test
