// `ipckit bench`'s one way of touching a message in place: the producer of every zero-copy row
// writes each byte with `touch_write`, the consumer reads each byte with `touch_read`. The
// bare loan ring (raw-loan-ring), the ring's loan rows (shm-loan…) and Google Benchmark's loan
// benchmarks all call these two functions, so a gap between them is the ring's, not a
// difference in how the bytes were touched.
//
// Both work on 32-byte vectors, aligned as memcpy aligns them (words up to the first 32-byte
// boundary, so no vector access is split across two cache lines: a ring's payload is only
// 8-aligned), and are compiled twice (AVX2 and the x86-64 baseline), the CPU picking one when
// the program loads, so they run at the speed glibc's memcpy gets from the same machine: the
// copying rows are not favoured by a vectorised memcpy against a byte loop.
// Thread-safety: pure functions of their arguments. Errors: none.
//
// Example:
//     touch_write(loan.buffer, sequence);                 // producer: the message, built in place
//     checksum ^= touch_read(view.message);               // consumer: every byte read
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ipckit::bench {

// Writes every byte of `bytes`: 64-bit words seed, seed+1, … (any tail byte from the next one).
void touch_write(std::span<std::byte> bytes, std::uint64_t seed) noexcept;

// Reads every byte of `bytes` and folds them into one word (XOR of the 64-bit words, the tail
// bytes added in), so the reads cannot be dropped by the compiler.
[[nodiscard]] std::uint64_t touch_read(std::span<const std::byte> bytes) noexcept;

// The "pass a frame by reference" rows touch only this much of each message: a header.
inline constexpr std::size_t kHeaderBytes = 64;

}  // namespace ipckit::bench
