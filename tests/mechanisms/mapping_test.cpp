// Mapping: shared regions across fork, read-only protection, pre-faulting, locking, huge
// pages and their refusals, and the ShmSafe placement checks.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/shm_safe.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

std::size_t page_size() {
    return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// How many pages of the range are resident in memory (mincore).
std::size_t resident_pages(const Mapping& mapping) {
    const std::size_t pages = (mapping.size() + page_size() - 1) / page_size();
    std::vector<unsigned char> vector(pages);
    if (::mincore(mapping.data(), mapping.size(), vector.data()) != 0) throw_errno("mincore", "test mapping");
    std::size_t resident = 0;
    for (const unsigned char v : vector)
        resident += (v & 1U);
    return resident;
}

std::string first_line(const char* path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

// The kB figure of a /proc/self/status line ("VmLck:     64 kB").
long status_kb(const std::string& key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
    }
    return -1;
}

Fd raw_memfd(std::size_t size) {
    Fd fd(::memfd_create("mapping-test", MFD_CLOEXEC));
    if (!fd) throw_errno("memfd_create", "mapping-test");
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) throw_errno("ftruncate", "mapping-test");
    return fd;
}

TEST(MappingTest, AnonymousSharedRegionIsSeenByAForkedChild) {
    auto region = Mapping::anonymous_shared(8192);
    ASSERT_EQ(region.size(), 8192U);
    ASSERT_TRUE(region.writable());
    auto child = test::spawn([&] {
        region.bytes()[0] = std::byte{42};
        region.bytes()[8191] = std::byte{7};
        return 0;
    });
    ASSERT_EQ(child.wait(), 0);
    EXPECT_EQ(region.bytes()[0], std::byte{42});
    EXPECT_EQ(region.bytes()[8191], std::byte{7});
}

TEST(MappingTest, TwoMappingsOfOneDescriptorShareBytesAcrossProcesses) {
    const Fd fd = raw_memfd(4096);
    auto writer = Mapping::map(fd, 4096, Access::read_write);
    writer.bytes()[100] = std::byte{9};
    auto child = test::spawn([&] {
        // A fresh mapping of the same object sees the parent's write, and writes back.
        auto own = Mapping::map(fd, 4096, Access::read_write, {}, "child view");
        if (own.bytes()[100] != std::byte{9}) return 1;
        own.bytes()[200] = std::byte{10};
        return 0;
    });
    EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(writer.bytes()[200], std::byte{10});
}

TEST(MappingTest, WritingThroughAReadOnlyMappingKillsTheWriter) {
    const Fd fd = raw_memfd(4096);
    auto view = Mapping::map(fd, 4096, Access::read_only);
    EXPECT_FALSE(view.writable());
    auto child = test::spawn([&] {
        ::signal(SIGSEGV, SIG_DFL);  // a sanitizer's handler would turn the signal into exit(1)
        *reinterpret_cast<volatile std::byte*>(view.data()) = std::byte{1};
        return 0;
    });
    EXPECT_EQ(child.wait(), -SIGSEGV);
    // The kernel refuses it too: read(2) into the mapping fails with EFAULT.
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const Fd read_end(fds[0]), write_end(fds[1]);
    ASSERT_EQ(::write(write_end.get(), "x", 1), 1);
    EXPECT_EQ(::read(read_end.get(), view.data(), 1), -1);
    EXPECT_EQ(errno, EFAULT);
}

TEST(MappingTest, ReadWriteMappingOfAReadOnlyDescriptorIsRefusedClearly) {
    const Fd fd = raw_memfd(4096);
    const std::string path = "/proc/self/fd/" + std::to_string(fd.get());
    const Fd read_only(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(read_only.valid());
    try {
        (void)Mapping::map(read_only, 4096, Access::read_write, {}, "the object");
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::permission_denied);
        EXPECT_NE(std::string(e.what()).find("the object"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("read-write"), std::string::npos) << e.what();
    }
}

TEST(MappingTest, DestructionUnmapsAndMoveTransfersOwnership) {
    void* address = nullptr;
    {
        auto first = Mapping::anonymous_shared(4096);
        address = first.data();
        Mapping second = std::move(first);
        EXPECT_FALSE(first);
        EXPECT_EQ(second.data(), address);
        unsigned char v = 0;
        EXPECT_EQ(::mincore(address, 4096, &v), 0);
    }
    unsigned char v = 0;
    EXPECT_EQ(::mincore(address, 4096, &v), -1);
    EXPECT_EQ(errno, ENOMEM);  // no longer mapped
}

TEST(MappingTest, PopulateFaultsEveryPageInAtOnce) {
    const std::size_t size = 64 * page_size();
    auto lazy = Mapping::anonymous_shared(size);
    EXPECT_EQ(resident_pages(lazy), 0U);
    auto eager = Mapping::anonymous_shared(size, {.populate = true});
    EXPECT_EQ(resident_pages(eager), 64U);
    const Fd fd = raw_memfd(size);
    auto file_backed = Mapping::map(fd, size, Access::read_write, {.populate = true});
    EXPECT_EQ(resident_pages(file_backed), 64U);
}

// AddressSanitizer replaces mlock with a no-op that reports success.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool mlock_is_real = false;
#else
constexpr bool mlock_is_real = true;
#endif

TEST(MappingTest, LockKeepsPagesInMemory) {
    if (!mlock_is_real) GTEST_SKIP() << "AddressSanitizer turns mlock into a no-op";
    const std::size_t size = 16 * page_size();
    // Only a limit too low for the test is a reason to skip (root locks past it: CAP_IPC_LOCK).
    rlimit limit{};
    ASSERT_EQ(::getrlimit(RLIMIT_MEMLOCK, &limit), 0);
    const long before = status_kb("VmLck");
    if (::geteuid() != 0 && limit.rlim_cur != RLIM_INFINITY &&
        limit.rlim_cur < size + static_cast<rlim_t>(before) * 1024)
        GTEST_SKIP() << "RLIMIT_MEMLOCK is " << limit.rlim_cur << " bytes, " << before
                     << " KiB of it in use: too little to lock " << size << " bytes";
    try {
        auto region = Mapping::anonymous_shared(size, {.lock = true});
        EXPECT_TRUE(region.locked());
        EXPECT_EQ(resident_pages(region), 16U);
        EXPECT_GE(status_kb("VmLck") - before, static_cast<long>(size / 1024));
        region.unlock();
        EXPECT_FALSE(region.locked());
    } catch (const Error& e) {
        // Within the limit checked above a refusal is a fault, not a reason to skip.
        FAIL() << e.what();
    }
}

TEST(MappingTest, LockRefusedByTheLimitNamesRlimitMemlock) {
    if (!mlock_is_real) GTEST_SKIP() << "AddressSanitizer turns mlock into a no-op";
    auto child = test::spawn([] {
        auto region = Mapping::anonymous_shared(16 * page_size());
        const rlimit none{0, 0};
        if (::setrlimit(RLIMIT_MEMLOCK, &none) != 0) return 2;
        // root ignores RLIMIT_MEMLOCK (CAP_IPC_LOCK): become an ordinary user first.
        if (::geteuid() == 0 && ::setuid(65534) != 0) return 3;
        try {
            region.lock();
            return 4;
        } catch (const Error& e) {
            const std::string what = e.what();
            if (what.find("RLIMIT_MEMLOCK") == std::string::npos || what.find("mlock(anonymous") != 0) {
                std::fprintf(stderr, "unexpected message: %s\n", e.what());
                return 5;
            }
            return region.locked() ? 6 : 0;
        }
    });
    EXPECT_EQ(child.wait(), 0);
}

TEST(MappingTest, ExplicitHugePagesWorkOrSayTheKernelHasNone) {
    const std::string reserved = first_line("/proc/sys/vm/nr_hugepages");
    try {
        auto region = Mapping::anonymous_shared(4096, {.huge_pages = HugePages::explicit_pages});
        EXPECT_NE(reserved, "0") << "got huge pages although none are reserved";
        region.bytes()[0] = std::byte{1};
        EXPECT_EQ(region.size(), 4096U);
    } catch (const Error& e) {
        EXPECT_EQ(reserved, "0") << e.what();
        EXPECT_NE(std::string(e.what()).find("vm.nr_hugepages = 0"), std::string::npos) << e.what();
    }
}

TEST(MappingTest, ExplicitHugePagesOnASharedMemoryFileAreRefusedWithAHint) {
    const Fd fd = raw_memfd(4096);
    try {
        (void)Mapping::map(fd, 4096, Access::read_write, {.huge_pages = HugePages::explicit_pages}, "memfd");
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("HugePages::transparent"), std::string::npos) << e.what();
    }
}

TEST(MappingTest, TransparentHugePagesFollowShmemEnabled) {
    const std::string setting = first_line("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
    const bool off = setting.empty() || setting.find("[never]") != std::string::npos ||
                     setting.find("[deny]") != std::string::npos;
    try {
        auto region = Mapping::anonymous_shared(std::size_t{4} << 20, {.huge_pages = HugePages::transparent});
        EXPECT_FALSE(off) << "accepted although shmem_enabled is '" << setting << "'";
    } catch (const Error& e) {
        EXPECT_TRUE(off) << e.what();
        EXPECT_EQ(e.code(), std::errc::operation_not_supported);
        EXPECT_NE(std::string(e.what()).find("shmem_enabled"), std::string::npos) << e.what();
    }
}

TEST(MappingTest, ZeroBytesIsRefused) {
    EXPECT_THROW((void)Mapping::anonymous_shared(0), Error);
    const Fd fd = raw_memfd(4096);
    EXPECT_THROW((void)Mapping::map(fd, 0, Access::read_only), Error);
}

// ---- ShmSafe ----------------------------------------------------------------------------

struct Plain {
    std::uint64_t a;
    std::uint32_t b[4];
};
struct WithAtomics {
    std::atomic<std::uint64_t> sequence;
    std::uint64_t payload[8];
    using shm_fields = ShmFields<decltype(sequence), decltype(payload)>;
};
struct Big {
    std::uint64_t words[4];
};
struct WithLockBasedAtomic {
    std::atomic<Big> value;  // not lock-free: its lock would be private to each process
    using shm_fields = ShmFields<decltype(value)>;
};
struct WithPointer {
    int* p;
    using shm_fields = ShmFields<decltype(p)>;
};

static_assert(ShmSafe<int>);
static_assert(ShmSafe<Plain>);
static_assert(ShmSafe<WithAtomics>);
static_assert(ShmSafe<std::atomic<std::uint32_t>>);
static_assert(!ShmSafe<int*>);
static_assert(!ShmSafe<std::string>);
static_assert(!ShmSafe<std::vector<int>>);
static_assert(!ShmSafe<std::atomic<Big>>);
static_assert(!ShmSafe<WithLockBasedAtomic>);
static_assert(!ShmSafe<WithPointer>);

TEST(ShmSafeTest, ConstructAtAndObjectAtShareOneObjectAcrossProcesses) {
    auto region = Mapping::anonymous_shared(4096);
    auto& created = construct_at<WithAtomics>(region.bytes(), 64);
    created.sequence.store(5);
    auto child = test::spawn([&] {
        auto& seen = object_at<WithAtomics>(region.bytes(), 64);
        seen.sequence.fetch_add(1);
        return 0;
    });
    ASSERT_EQ(child.wait(), 0);
    EXPECT_EQ(created.sequence.load(), 6U);
}

TEST(ShmSafeTest, PlacementOutsideTheRegionOrMisalignedIsRefused) {
    auto region = Mapping::anonymous_shared(4096);
    EXPECT_THROW((void)object_at<WithAtomics>(region.bytes(), 4096 - 8), Error);
    EXPECT_THROW((void)object_at<WithAtomics>(region.bytes(), 1 << 20), Error);
    try {
        (void)construct_at<WithAtomics>(region.bytes(), 4);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not aligned"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace ipckit
