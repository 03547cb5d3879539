// ipckit/mapping.hpp — an owned region of shared memory mapped into this process.
//
// `Mapping` is what every shared-memory object (POSIX shm, memfd, an anonymous region
// shared across fork) becomes once mapped: a span of bytes that is unmapped (munmap) when
// the Mapping goes away. Mappings are always MAP_SHARED: a write is seen by every process
// mapping the same object. They do not order anything: see ipckit/sync.hpp for that.
//
// Options for latency-critical users:
//   - `populate` (MAP_POPULATE) faults every page in now, so the first touch of a page in
//     the hot path does not stall on a page fault;
//   - `lock` (mlock) keeps the pages in RAM; the kernel limits locked memory per process
//     (RLIMIT_MEMLOCK, `ulimit -l`) unless the process has CAP_IPC_LOCK;
//   - `huge_pages`: `explicit_pages` asks for MAP_HUGETLB pages, which exist only when an
//     administrator reserved them (vm.nr_hugepages) and only for anonymous mappings;
//     `transparent` asks for transparent huge pages with madvise(MADV_HUGEPAGE), which for
//     shared memory needs /sys/kernel/mm/transparent_hugepage/shmem_enabled other than
//     "never". Either gives a clear Error when the kernel has none, never a silent fallback.
//
// Example:
//     auto region = ipckit::Mapping::anonymous_shared(1 << 20, {.populate = true});
//     if (fork() == 0) { region.bytes()[0] = std::byte{42}; _exit(0); }   // parent sees 42
//
// Errors: mmap/mlock/madvise failures throw `ipckit::Error` naming the call and the object
// (its name when the caller gave one, else "fd N" or "anonymous").
// Thread-safety: a Mapping is a value owned by one thread at a time; the bytes it maps are
// shared with everyone and follow the usual rules for shared data.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "ipckit/fd.hpp"

namespace ipckit {

// How a process means to use a shared object: PROT_READ, or PROT_READ | PROT_WRITE.
enum class Access { read_only, read_write };

enum class HugePages {
    none,            // ordinary pages
    transparent,     // madvise(MADV_HUGEPAGE): the kernel uses huge pages where it can
    explicit_pages,  // MAP_HUGETLB: pages reserved in vm.nr_hugepages (anonymous mappings only)
};

struct MapOptions {
    bool populate = false;  // MAP_POPULATE: pre-fault every page now
    bool lock = false;      // mlock after mapping (see Mapping::lock)
    HugePages huge_pages = HugePages::none;
    off_t offset = 0;  // into the object; a multiple of the page size
};

namespace detail {

// Owns one range from mmap(2): munmaps it (which also drops an mlock) when destroyed or
// replaced; a moved-from range is empty. With it, Mapping's moves need no code of their own.
struct MappedRange {
    std::byte* data = nullptr;
    std::size_t size = 0;         // what the caller asked for
    std::size_t mapped_size = 0;  // what munmap needs (a whole number of huge pages)
    bool locked = false;

    MappedRange() noexcept = default;
    MappedRange(void* address, std::size_t requested, std::size_t mapped) noexcept
        : data(static_cast<std::byte*>(address)), size(requested), mapped_size(mapped) {}
    MappedRange(MappedRange&& other) noexcept
        : data(std::exchange(other.data, nullptr)),
          size(std::exchange(other.size, 0)),
          mapped_size(std::exchange(other.mapped_size, 0)),
          locked(std::exchange(other.locked, false)) {}
    MappedRange& operator=(MappedRange&& other) noexcept {
        if (this != &other) {
            reset();
            data = std::exchange(other.data, nullptr);
            size = std::exchange(other.size, 0);
            mapped_size = std::exchange(other.mapped_size, 0);
            locked = std::exchange(other.locked, false);
        }
        return *this;
    }
    MappedRange(const MappedRange&) = delete;
    MappedRange& operator=(const MappedRange&) = delete;
    ~MappedRange() { reset(); }

    void reset() noexcept;
};

}  // namespace detail

class Mapping {
public:
    // Maps `size` bytes of the object behind `fd`. `object` names it in errors.
    [[nodiscard]] static Mapping map(const Fd& fd, std::size_t size, Access access, MapOptions options = {},
                                     std::string_view object = {});
    // MAP_SHARED | MAP_ANONYMOUS: shared with children forked after this call, and no one else.
    [[nodiscard]] static Mapping anonymous_shared(std::size_t size, MapOptions options = {});

    Mapping() noexcept = default;
    Mapping(Mapping&& other) noexcept = default;
    Mapping& operator=(Mapping&& other) noexcept = default;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() = default;

    [[nodiscard]] std::span<std::byte> bytes() const noexcept { return {range_.data, range_.size}; }
    [[nodiscard]] std::byte* data() const noexcept { return range_.data; }
    [[nodiscard]] std::size_t size() const noexcept { return range_.size; }
    [[nodiscard]] bool writable() const noexcept { return access_ == Access::read_write; }
    [[nodiscard]] bool locked() const noexcept { return range_.locked; }
    [[nodiscard]] const std::string& object() const noexcept { return object_; }
    explicit operator bool() const noexcept { return range_.data != nullptr; }

    // mlock: keeps every page in RAM (and faults it in). Refusal names RLIMIT_MEMLOCK and
    // its current value, since that limit is nearly always the reason.
    void lock();
    void unlock();

private:
    detail::MappedRange range_;
    Access access_ = Access::read_only;
    std::string object_;
};

}  // namespace ipckit
