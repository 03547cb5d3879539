// PosixShm: named objects under /dev/shm shared between real processes, exclusive creation,
// sizes from fstat, name rules, permissions, and removal of the name by its owner.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/posix_shm.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

std::string fresh_name() {
    return "/" + test::unique_name("ipckit-shm");
}

bool exists_in_dev_shm(const std::string& name) {
    struct stat st {};
    return ::stat(("/dev/shm" + name).c_str(), &st) == 0;
}

// Removes a name left by a test that failed half-way.
struct NameGuard {
    std::string name;
    ~NameGuard() {
        try {
            PosixShm::unlink(name);
        } catch (const Error&) {
        }
    }
};

TEST(PosixShmTest, CreatorAndOpenerInAnotherProcessShareBytes) {
    const std::string name = fresh_name();
    auto shm = PosixShm::create(name, 4096);
    EXPECT_TRUE(shm.owner());
    EXPECT_EQ(shm.size(), 4096U);
    auto mapping = shm.map();
    mapping.bytes()[10] = std::byte{1};
    auto child = test::spawn([&] {
        auto peer = PosixShm::open(name, Access::read_write, 4096);
        auto view = peer.map();
        if (view.bytes()[10] != std::byte{1}) return 1;
        view.bytes()[11] = std::byte{2};
        return 0;
    });
    ASSERT_EQ(child.wait(), 0);
    EXPECT_EQ(mapping.bytes()[11], std::byte{2});
}

TEST(PosixShmTest, CreatedObjectIsZeroFilledAndMode0600) {
    const std::string name = fresh_name();
    auto shm = PosixShm::create(name, 8192);
    struct stat st {};
    ASSERT_EQ(::stat(("/dev/shm" + name).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600U);
    auto mapping = shm.map(Access::read_only);
    for (const std::byte b : mapping.bytes())
        ASSERT_EQ(b, std::byte{0});
}

TEST(PosixShmTest, CreationIsExclusive) {
    const std::string name = fresh_name();
    auto shm = PosixShm::create(name, 4096);
    try {
        (void)PosixShm::create(name, 4096);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::file_exists);
        EXPECT_EQ(std::string(e.what()), "shm_open(" + name + "): File exists");
    }
    EXPECT_TRUE(exists_in_dev_shm(name));  // the failed create did not remove the owner's object
}

TEST(PosixShmTest, OpenMapsTheRealSizeNotAnAssumedOne) {
    const std::string name = fresh_name();
    auto shm = PosixShm::create(name, 3 * 4096 + 5);
    auto peer = PosixShm::open(name, Access::read_only);
    EXPECT_EQ(peer.size(), 3U * 4096 + 5);
    EXPECT_EQ(peer.map().size(), 3U * 4096 + 5);
}

TEST(PosixShmTest, SizeMismatchIsAClearError) {
    const std::string name = fresh_name();
    auto shm = PosixShm::create(name, 4096);
    try {
        (void)PosixShm::open(name, Access::read_only, 8192);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
        EXPECT_EQ(std::string(e.what()),
                  "shm_open(" + name + "): the object is 4096 bytes, expected 8192: Invalid argument");
    }
}

TEST(PosixShmTest, OwnerUnlinksTheNameAndMappingsOutliveIt) {
    const std::string name = fresh_name();
    Mapping survivor;
    {
        auto shm = PosixShm::create(name, 4096);
        survivor = shm.map();
        EXPECT_TRUE(exists_in_dev_shm(name));
    }
    EXPECT_FALSE(exists_in_dev_shm(name));
    survivor.bytes()[0] = std::byte{5};  // the memory lives while mapped
    try {
        (void)PosixShm::open(name, Access::read_only);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
    }
}

// A move hands the name over (the moved-from object unlinks nothing); assigning over an owner
// unlinks what it owned.
TEST(PosixShmTest, MovesHandTheNameOverAndAssigningOverAnOwnerUnlinksIt) {
    const std::string first = fresh_name();
    const std::string second = fresh_name();
    auto shm = PosixShm::create(first, 4096);
    {
        PosixShm moved = std::move(shm);
        EXPECT_FALSE(shm.owner());
        EXPECT_TRUE(moved.owner());
        shm = std::move(moved);  // back again: the name must survive both moves
    }
    EXPECT_TRUE(exists_in_dev_shm(first));
    shm = PosixShm::create(second, 4096);
    EXPECT_FALSE(exists_in_dev_shm(first));
    EXPECT_TRUE(exists_in_dev_shm(second));
    EXPECT_EQ(shm.name(), second);
}

TEST(PosixShmTest, KeptNameStaysUntilUnlinkedByName) {
    const std::string name = fresh_name();
    NameGuard guard{name};
    {
        auto shm = PosixShm::create(name, 4096);
        shm.keep();
    }
    EXPECT_TRUE(exists_in_dev_shm(name));
    auto child = test::spawn([&] { return PosixShm::unlink(name) ? 0 : 1; });
    EXPECT_EQ(child.wait(), 0);
    EXPECT_FALSE(exists_in_dev_shm(name));
    EXPECT_FALSE(PosixShm::unlink(name));
}

TEST(PosixShmTest, MalformedNamesAreRefusedQuotingThem) {
    const std::vector<std::string> names = {"no-slash", "/a/b", "/", "", "//x", "/" + std::string(300, 'x')};
    for (const std::string& bad : names) {
        try {
            (void)PosixShm::create(bad, 4096);
            FAIL() << "accepted " << bad;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::invalid_argument);
            EXPECT_NE(std::string(e.what()).find("\"" + bad + "\""), std::string::npos) << e.what();
        }
        EXPECT_THROW((void)PosixShm::open(bad, Access::read_only), Error);
    }
}

TEST(PosixShmTest, ZeroSizeIsRefusedAndLeavesNothing) {
    const std::string name = fresh_name();
    EXPECT_THROW((void)PosixShm::create(name, 0), Error);
    EXPECT_FALSE(exists_in_dev_shm(name));
}

TEST(PosixShmTest, ReadOnlyOpenCannotMapReadWrite) {
    const std::string name = fresh_name();
    auto shm = PosixShm::create(name, 4096);
    auto peer = PosixShm::open(name, Access::read_only);
    try {
        (void)peer.map(Access::read_write);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::permission_denied);
        EXPECT_NE(std::string(e.what()).find("opened read-only"), std::string::npos) << e.what();
    }
}

TEST(PosixShmTest, ModeThatDeniesWriteRefusesAReadWriteOpen) {
    const std::string name = fresh_name();
    // Root bypasses permission bits, so as root the refused opener is another user.
    const bool root = ::geteuid() == 0;
    auto shm = PosixShm::create(name, 4096, root ? 0644 : 0400);
    auto child = test::spawn([&] {
        if (root && ::setuid(65534) != 0) return 2;
        (void)PosixShm::open(name, Access::read_only);  // reading is allowed
        try {
            (void)PosixShm::open(name, Access::read_write);
            return 3;
        } catch (const Error& e) {
            return e.code() == std::errc::permission_denied ? 0 : 4;
        }
    });
    EXPECT_EQ(child.wait(), 0);
}

TEST(PosixShmTest, ObjectOwnedByAnotherUserIsRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user (uid 65534)";
    const std::string name = fresh_name();
    auto shm = PosixShm::create(name, 4096);  // 0600, owned by root
    auto child = test::spawn([&] {
        if (::setuid(65534) != 0) return 2;
        try {
            (void)PosixShm::open(name, Access::read_only);
            return 3;
        } catch (const Error& e) {
            return e.code() == std::errc::permission_denied ? 0 : 4;
        }
    });
    EXPECT_EQ(child.wait(), 0);
}

}  // namespace
}  // namespace ipckit
