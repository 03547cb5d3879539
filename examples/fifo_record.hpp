// The record fifo_producer sends and fifo_consumer checks: fixed size, a sequence number,
// a payload derived from it, and a checksum over both, so that a torn or mixed-up record
// cannot pass for a good one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "ipckit/pipe.hpp"

namespace fifo_record {

// At most PIPE_BUF, so each record is written atomically: never split, never interleaved.
constexpr std::size_t size = 256;
static_assert(size <= ipckit::PipeWriter::atomic_write_limit);

using Bytes = std::array<std::byte, size>;

// Layout: [sequence: 8 bytes][payload][checksum of everything before it: 8 bytes].
constexpr std::size_t payload_offset = sizeof(std::uint64_t);
constexpr std::size_t checksum_offset = size - sizeof(std::uint64_t);

inline std::uint64_t checksum(std::span<const std::byte> bytes) {
    std::uint64_t hash = 0xcbf29ce484222325;  // FNV-1a
    for (std::byte b : bytes) {
        hash ^= static_cast<std::uint64_t>(b);
        hash *= 0x100000001b3;
    }
    return hash;
}

inline void fill(Bytes& record, std::uint64_t sequence) {
    std::memcpy(record.data(), &sequence, sizeof sequence);
    for (std::size_t i = payload_offset; i < checksum_offset; ++i)
        record[i] = static_cast<std::byte>((sequence * 31 + i) & 0xff);
    const std::uint64_t sum = checksum(std::span(record).first(checksum_offset));
    std::memcpy(record.data() + checksum_offset, &sum, sizeof sum);
}

inline bool intact(const Bytes& record) {
    std::uint64_t sum = 0;
    std::memcpy(&sum, record.data() + checksum_offset, sizeof sum);
    return sum == checksum(std::span(record).first(checksum_offset));
}

inline std::uint64_t sequence_of(const Bytes& record) {
    std::uint64_t sequence = 0;
    std::memcpy(&sequence, record.data(), sizeof sequence);
    return sequence;
}

}  // namespace fifo_record
