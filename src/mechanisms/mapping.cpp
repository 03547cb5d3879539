#include "ipckit/mapping.hpp"

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <utility>

#include "ipckit/error.hpp"
#include "ipckit/shm_safe.hpp"

namespace ipckit {
namespace {

std::string read_first_line(const char* path) {
    std::ifstream in(path);
    std::string line;
    if (!std::getline(in, line)) return {};
    return line;
}

// The default huge page size from /proc/meminfo ("Hugepagesize:    2048 kB").
std::size_t huge_page_size() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    std::size_t value = 0;
    std::string unit;
    while (in >> key >> value) {
        std::getline(in, unit);
        if (key == "Hugepagesize:") return value * 1024;
    }
    return std::size_t{2} << 20;
}

std::string size_text(std::size_t size) {
    return std::to_string(size) + " bytes";
}

[[noreturn]] void throw_hugetlb_refused(const std::string& object, std::size_t size, bool anonymous,
                                        int err) {
    // std::system_error appends ": <reason>" to the message.
    std::string message = "mmap(MAP_HUGETLB, " + object + ", " + size_text(size) + "): ";
    if (!anonymous) {
        message +=
            "explicit huge pages work only for anonymous mappings and hugetlbfs files; "
            "use HugePages::transparent for shared memory objects";
    } else {
        const std::string reserved = read_first_line("/proc/sys/vm/nr_hugepages");
        message += "the kernel has no free huge pages (vm.nr_hugepages = " +
                   (reserved.empty() ? std::string("unknown") : reserved) +
                   "); reserve some with `sysctl vm.nr_hugepages=N` or use HugePages::transparent";
    }
    throw Error(std::error_code(err, std::system_category()), message);
}

// Transparent huge pages for shared memory (tmpfs, memfd, System V, MAP_SHARED|MAP_ANONYMOUS)
// follow shmem_enabled, not `enabled`: madvise succeeds either way, so ask the kernel first
// rather than let the caller believe they got huge pages.
void check_shmem_thp(const std::string& object, std::size_t size) {
    const char* path = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";
    const std::string setting = read_first_line(path);
    std::string chosen;
    if (const auto open = setting.find('['); open != std::string::npos) {
        const auto close = setting.find(']', open);
        if (close != std::string::npos) chosen = setting.substr(open + 1, close - open - 1);
    }
    if (setting.empty() || chosen == "never" || chosen == "deny") {
        throw Error(std::make_error_code(std::errc::operation_not_supported),
                    "madvise(MADV_HUGEPAGE, " + object + ", " + size_text(size) +
                        "): the kernel gives no transparent huge pages to shared memory (" + path + " is " +
                        (setting.empty() ? std::string("absent") : "'" + chosen + "'") +
                        "); set it to 'advise' or use HugePages::none");
    }
}

}  // namespace

namespace detail {

void throw_bad_placement(std::size_t offset, std::size_t size, std::size_t alignment, std::size_t region_size,
                         bool misaligned) {
    std::string message = "shared object of " + size_text(size) + " at offset " + std::to_string(offset);
    if (misaligned) {
        message += " is not aligned to " + std::to_string(alignment) + " bytes";
    } else {
        message += " does not fit in a region of " + size_text(region_size);
    }
    throw_error(std::errc::invalid_argument, message);
}

}  // namespace detail

Mapping Mapping::map(const Fd& fd, std::size_t size, Access access, MapOptions options,
                     std::string_view object) {
    std::string name = object.empty() ? "fd " + std::to_string(fd.get()) : std::string(object);
    Mapping mapping;
    const int prot = access == Access::read_write ? PROT_READ | PROT_WRITE : PROT_READ;
    int flags = MAP_SHARED;
    if (options.populate) flags |= MAP_POPULATE;
    if (options.huge_pages == HugePages::explicit_pages) flags |= MAP_HUGETLB;
    if (size == 0) throw_error(std::errc::invalid_argument, "mmap(" + name + "): cannot map 0 bytes");
    void* address = ::mmap(nullptr, size, prot, flags, fd.get(), options.offset);
    if (address == MAP_FAILED) {
        const int err = errno;
        if (options.huge_pages == HugePages::explicit_pages) throw_hugetlb_refused(name, size, false, err);
        if (err == EACCES && access == Access::read_write) {
            throw Error(std::error_code(err, std::system_category()),
                        "mmap(" + name + "): mapping read-write needs a descriptor opened read-write");
        }
        throw_errno("mmap", name + ", " + size_text(size), err);
    }
    mapping.range_ = detail::MappedRange(address, size, size);
    mapping.access_ = access;
    mapping.object_ = std::move(name);
    if (options.huge_pages == HugePages::transparent) {
        check_shmem_thp(mapping.object_, size);
        if (::madvise(address, size, MADV_HUGEPAGE) != 0)
            throw_errno("madvise(MADV_HUGEPAGE)", mapping.object_);
    }
    if (options.lock) mapping.lock();
    return mapping;
}

Mapping Mapping::anonymous_shared(std::size_t size, MapOptions options) {
    Mapping mapping;
    mapping.object_ = "anonymous";
    if (size == 0) throw_error(std::errc::invalid_argument, "mmap(anonymous): cannot map 0 bytes");
    int flags = MAP_SHARED | MAP_ANONYMOUS;
    std::size_t mapped = size;
    if (options.populate) flags |= MAP_POPULATE;
    if (options.huge_pages == HugePages::explicit_pages) {
        flags |= MAP_HUGETLB;
        const std::size_t page = huge_page_size();
        mapped = (size + page - 1) / page * page;  // munmap of hugetlb needs whole pages
    }
    void* address = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (address == MAP_FAILED) {
        const int err = errno;
        if (options.huge_pages == HugePages::explicit_pages)
            throw_hugetlb_refused("anonymous", size, true, err);
        throw_errno("mmap", "anonymous, " + size_text(size), err);
    }
    mapping.range_ = detail::MappedRange(address, size, mapped);
    mapping.access_ = Access::read_write;
    if (options.huge_pages == HugePages::transparent) {
        check_shmem_thp(mapping.object_, size);
        if (::madvise(address, mapped, MADV_HUGEPAGE) != 0)
            throw_errno("madvise(MADV_HUGEPAGE)", mapping.object_);
    }
    if (options.lock) mapping.lock();
    return mapping;
}

void detail::MappedRange::reset() noexcept {
    // munmap also drops any mlock on the range.
    if (data != nullptr) ::munmap(data, mapped_size);
    data = nullptr;
    size = mapped_size = 0;
    locked = false;
}

void Mapping::lock() {
    if (range_.locked || range_.data == nullptr) return;
    if (::mlock(range_.data, range_.mapped_size) != 0) {
        const int err = errno;
        if (err == ENOMEM || err == EPERM || err == EAGAIN) {
            rlimit limit{};
            ::getrlimit(RLIMIT_MEMLOCK, &limit);
            const std::string current =
                limit.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(limit.rlim_cur) + " bytes";
            throw Error(
                std::error_code(err, std::system_category()),
                "mlock(" + object_ + ", " + size_text(range_.mapped_size) + "): refused by RLIMIT_MEMLOCK (" +
                    current +
                    " may be locked by this process; raise it with `ulimit -l` or grant CAP_IPC_LOCK)");
        }
        throw_errno("mlock", object_, err);
    }
    range_.locked = true;
}

void Mapping::unlock() {
    if (!range_.locked) return;
    if (::munlock(range_.data, range_.mapped_size) != 0) throw_errno("munlock", object_);
    range_.locked = false;
}

}  // namespace ipckit
