// The shared touch routines (see bench_touch.hpp). GCC's vector extension makes the 32-byte
// operations explicit, so they do not depend on the optimiser's cost model at -O2.
#include "bench_touch.hpp"

#include <cstdint>
#include <cstring>

namespace ipckit::bench {
namespace {

using Vec = std::uint64_t __attribute__((vector_size(32)));
constexpr std::size_t kVec = sizeof(Vec);

bool aligned(const std::byte* p) noexcept {
    return reinterpret_cast<std::uintptr_t>(p) % kVec == 0;
}

}  // namespace

#if defined(__x86_64__) && !defined(__clang__)
#define IPCKIT_TOUCH_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define IPCKIT_TOUCH_CLONES
#endif

IPCKIT_TOUCH_CLONES void touch_write(std::span<std::byte> bytes, std::uint64_t seed) noexcept {
    std::byte* out = bytes.data();
    const std::size_t n = bytes.size();
    std::size_t i = 0;
    // Words up to a 32-byte boundary first (a ring's payload is 8-aligned), as memcpy aligns its
    // stores, so that no vector store is split across two cache lines.
    for (; i + sizeof seed <= n && !aligned(out + i); i += sizeof seed, ++seed)
        std::memcpy(out + i, &seed, sizeof seed);
    Vec a = {seed, seed + 1, seed + 2, seed + 3};
    Vec b = a + 4;
    for (; i + 2 * kVec <= n; i += 2 * kVec) {
        std::memcpy(out + i, &a, kVec);
        std::memcpy(out + i + kVec, &b, kVec);
        a += 8;
        b += 8;
    }
    std::uint64_t word = a[0];
    for (; i + sizeof word <= n; i += sizeof word, ++word)
        std::memcpy(out + i, &word, sizeof word);
    for (; i < n; ++i)
        out[i] = static_cast<std::byte>(word);
}

IPCKIT_TOUCH_CLONES std::uint64_t touch_read(std::span<const std::byte> bytes) noexcept {
    const std::byte* in = bytes.data();
    const std::size_t n = bytes.size();
    Vec a = {}, b = {};
    std::size_t i = 0;
    std::uint64_t head = 0;  // the words before a 32-byte boundary, as in touch_write
    for (; i + sizeof head <= n && !aligned(in + i); i += sizeof head) {
        std::uint64_t word;
        std::memcpy(&word, in + i, sizeof word);
        head ^= word;
    }
    for (; i + 2 * kVec <= n; i += 2 * kVec) {
        Vec x, y;
        std::memcpy(&x, in + i, kVec);
        std::memcpy(&y, in + i + kVec, kVec);
        a ^= x;
        b ^= y;
    }
    a ^= b;
    std::uint64_t fold = head ^ a[0] ^ a[1] ^ a[2] ^ a[3];
    for (; i + sizeof fold <= n; i += sizeof fold) {
        std::uint64_t word;
        std::memcpy(&word, in + i, sizeof word);
        fold ^= word;
    }
    for (; i < n; ++i)
        fold += std::to_integer<std::uint64_t>(in[i]);
    return fold;
}

}  // namespace ipckit::bench
