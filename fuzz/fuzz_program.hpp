// fuzz/fuzz_program.hpp — what the shared-memory fuzz targets (ring, topic, lanes, shrink)
// share: the reader of an input as a program of operations, and the heap region they run over.
//
// Thread-safety: one target call at a time uses each object.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <system_error>
#include <vector>

#include "ipckit/detail/endpoint.hpp"  // kLineSize
#include "ipckit/error.hpp"

namespace ipckit::fuzz {

// The input, read front to back as opcodes and their arguments. Past the end it reads as zeros,
// so every input is a valid program.
class ProgramInput {
public:
    ProgramInput(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    [[nodiscard]] bool empty() const { return at_ == size_; }
    // The next `bytes` bytes (at most 8) as a little-endian number.
    std::uint64_t take(std::size_t bytes) {
        std::uint64_t value = 0;
        for (std::size_t i = 0; i < bytes; ++i) {
            const std::uint64_t byte = at_ < size_ ? data_[at_++] : 0;
            value |= byte << (8 * i);
        }
        return value;
    }
    // Up to `bytes` of what is left, as they are.
    std::span<const std::uint8_t> take_span(std::size_t bytes) {
        const std::size_t n = std::min(bytes, size_ - at_);
        const std::span<const std::uint8_t> s(data_ + at_, n);
        at_ += n;
        return s;
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t at_ = 0;
};

// A shared region stand-in on the heap at its exact size, aligned as a mapping's first line, so
// one byte read or written past its end is an AddressSanitizer report (a mapping would have no
// red zone after it). Zeroed, as a fresh mapping is.
struct HeapRegion {
    static constexpr std::align_val_t kAlignment{detail::ring::kLineSize};
    explicit HeapRegion(std::size_t n)
        : bytes(static_cast<std::byte*>(::operator new(n, kAlignment))), size(n) {
        std::memset(bytes, 0, n);
    }
    ~HeapRegion() { ::operator delete(bytes, kAlignment); }
    HeapRegion(const HeapRegion&) = delete;
    HeapRegion& operator=(const HeapRegion&) = delete;
    [[nodiscard]] std::span<std::byte> span() const { return {bytes, size}; }
    std::byte* bytes;
    std::size_t size;
};

// Message number `sequence` of `size` bytes: each differs, so a stale or shifted record shows.
inline std::vector<std::byte> make_message(std::uint64_t sequence, std::size_t size) {
    std::vector<std::byte> m(size);
    for (std::size_t i = 0; i < size; ++i)
        m[i] = static_cast<std::byte>(sequence * 31 + i);
    return m;
}

inline bool is(const Error& e, std::errc code) {
    return e.code() == std::make_error_condition(code);
}

}  // namespace ipckit::fuzz
