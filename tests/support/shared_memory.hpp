// Test support: anonymous shared memory a test and the processes it forks all map, unmapped when
// the test ends (even when it fails). The ring, lanes and topic tests lay their regions out in it.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <span>

#include "ipckit/error.hpp"

namespace ipckit::test {

class SharedMemory {
public:
    explicit SharedMemory(std::size_t size) : size_(size) {
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw_errno("mmap", "test region");
        base_ = static_cast<std::byte*>(p);
    }
    SharedMemory(const SharedMemory&) = delete;
    SharedMemory& operator=(const SharedMemory&) = delete;
    ~SharedMemory() { ::munmap(base_, size_); }

    [[nodiscard]] std::span<std::byte> span() const { return {base_, size_}; }
    [[nodiscard]] std::byte* base() const { return base_; }
    // The bytes at `offset`, seen as a T (a header of the layout under test).
    template <typename T>
    [[nodiscard]] T& at(std::size_t offset = 0) const {
        return *reinterpret_cast<T*>(base_ + offset);
    }

private:
    std::byte* base_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace ipckit::test
