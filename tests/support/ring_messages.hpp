// Test support for the ring's tests (tests/rings/ring_*_test.cpp): a ring's region in shared
// memory, messages whose bytes depend on their sequence number and size (so a lost, repeated,
// reordered, torn or truncated message cannot pass for the expected one), and the error a call
// throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "ipckit/error.hpp"
#include "rings/ring_layout.hpp"
#include "support/shared_memory.hpp"

namespace ipckit::test::ring {

namespace layout = detail::ring;

// A ring's region in shared memory (tests/support/shared_memory.hpp).
class SharedRegion : public SharedMemory {
public:
    using SharedMemory::SharedMemory;
    [[nodiscard]] layout::RingHeader& header() const { return at<layout::RingHeader>(); }
    [[nodiscard]] std::byte* data() const { return base() + layout::kHeaderSize; }
};

inline std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
    x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
    return x ^ (x >> 31);
}

// Message `seq` of `size` bytes: contents depend on both, so a lost, repeated, reordered, torn or
// truncated message cannot pass for the expected one.
inline void fill_message(std::span<std::byte> out, std::uint64_t seq) {
    std::uint64_t word = mix(seq);
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (i % 8 == 0) word = mix(word + i);
        out[i] = static_cast<std::byte>(word >> ((i % 8) * 8));
    }
}

inline std::vector<std::byte> make_message(std::uint64_t seq, std::size_t size) {
    std::vector<std::byte> m(size);
    fill_message(m, seq);
    return m;
}

inline bool is_message(std::span<const std::byte> got, std::uint64_t seq, std::size_t size) {
    if (got.size() != size) return false;
    const auto want = make_message(seq, size);
    return size == 0 || std::memcmp(got.data(), want.data(), size) == 0;
}

// Sizes for the random-size tests: mostly small, some up to the ring's limit.
class SizeStream {
public:
    SizeStream(std::uint64_t seed, std::size_t max) : rng_(seed), max_(max) {}
    std::size_t next() {
        const auto r = rng_();
        if (r % 64 == 0) return static_cast<std::size_t>((r >> 8) % (max_ + 1));
        return static_cast<std::size_t>((r >> 8) % 257);
    }

private:
    std::mt19937_64 rng_;
    std::size_t max_;
};

template <typename F>
std::error_code error_of(F&& f, std::string* message = nullptr) {
    try {
        f();
    } catch (const Error& e) {
        if (message) *message = e.what();
        return e.code();
    }
    return {};
}

}  // namespace ipckit::test::ring
