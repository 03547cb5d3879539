// SysvShm: segments by key and IPC_PRIVATE shared between real processes, attach/detach,
// IPC_STAT, the removal rule (alive until the last detach), permissions, and the kernel's
// size limit.
#include <signal.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>

#include "ipckit/error.hpp"
#include "ipckit/sysv_shm.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

// A segment under a random explicit key no one else uses (retries on a collision).
SysvShm create_with_fresh_key(std::size_t size, mode_t mode = 0600) {
    std::random_device random;
    for (int attempt = 0;; ++attempt) {
        const auto key = SysvKey::explicit_key(static_cast<key_t>(0x49500000U | (random() & 0xfffffU)));
        try {
            return SysvShm::create(key, size, mode);
        } catch (const Error& e) {
            if (e.code() != std::errc::file_exists || attempt > 100) throw;
        }
    }
}

SysvKey key_of(const SysvShm& shm) {
    shmid_ds ds{};
    if (::shmctl(shm.id(), IPC_STAT, &ds) != 0) throw_errno("shmctl(IPC_STAT)", shm.object());
    return SysvKey::explicit_key(ds.shm_perm.__key);
}

bool segment_exists(int id) {
    shmid_ds ds{};
    return ::shmctl(id, IPC_STAT, &ds) == 0;
}

TEST(SysvShmTest, CreatorAndOpenerInAnotherProcessShareBytesByKey) {
    auto segment = create_with_fresh_key(4096);
    const SysvKey key = key_of(segment);
    auto memory = segment.attach(Access::read_write);
    ASSERT_EQ(memory.size(), 4096U);
    memory.bytes()[0] = std::byte{3};
    auto child = test::spawn([&] {
        auto peer = SysvShm::open(key, Access::read_write);
        if (peer.id() != segment.id() || peer.owner()) return 1;
        auto view = peer.attach();
        if (view.bytes()[0] != std::byte{3}) return 2;
        view.bytes()[1] = std::byte{4};
        return 0;
    });
    ASSERT_EQ(child.wait(), 0);
    EXPECT_EQ(memory.bytes()[1], std::byte{4});
}

TEST(SysvShmTest, PrivateSegmentIsSharedWithAForkedChildAndReachableById) {
    auto segment = SysvShm::create(SysvKey::private_key(), 4096);
    auto child = test::spawn([&] {
        auto again = SysvShm::open_id(segment.id());
        auto view = again.attach();
        view.bytes()[7] = std::byte{7};
        return 0;
    });
    ASSERT_EQ(child.wait(), 0);
    EXPECT_EQ(segment.attach(Access::read_only).bytes()[7], std::byte{7});
    EXPECT_THROW((void)SysvShm::open(SysvKey::private_key()), Error);
}

TEST(SysvShmTest, StatReportsSizeAttachCountPidsOwnerAndMode) {
    auto segment = create_with_fresh_key(5000);
    SysvShmStatus st = segment.stat();
    EXPECT_EQ(st.size, 5000U);  // as asked, though the memory is whole pages
    EXPECT_EQ(st.attach_count, 0U);
    EXPECT_EQ(st.creator_pid, ::getpid());
    EXPECT_EQ(st.owner_uid, ::geteuid());
    EXPECT_EQ(st.creator_uid, ::geteuid());
    EXPECT_EQ(st.mode, 0600U);
    EXPECT_FALSE(st.marked_for_removal);
    auto first = segment.attach(Access::read_write);
    auto child = test::spawn([&] {
        auto second = segment.attach(Access::read_only);  // attached in the child: last pid is the child
        return segment.stat().attach_count == 3 ? 0 : 1;  // ours, the inherited one, the child's own
    });
    const pid_t child_pid = child.pid();
    ASSERT_EQ(child.wait(), 0);
    st = segment.stat();
    EXPECT_EQ(st.attach_count, 1U);     // the child's attachments went away with it
    EXPECT_EQ(st.last_pid, child_pid);  // its exit detached last
}

TEST(SysvShmTest, AttachmentDetachesWhenItGoesAway) {
    auto segment = create_with_fresh_key(4096);
    {
        auto a = segment.attach(Access::read_write);
        SysvAttachment b = std::move(a);
        EXPECT_FALSE(a);
        EXPECT_EQ(segment.stat().attach_count, 1U);
    }
    EXPECT_EQ(segment.stat().attach_count, 0U);
    auto c = segment.attach(Access::read_write);
    c.detach();
    EXPECT_EQ(segment.stat().attach_count, 0U);
}

TEST(SysvShmTest, RemovedSegmentLivesUntilTheLastDetach) {
    auto segment = create_with_fresh_key(4096);
    const SysvKey key = key_of(segment);
    const int id = segment.id();
    auto memory = segment.attach(Access::read_write);
    memory.bytes()[0] = std::byte{1};
    // A child keeps its own attachment and reads after the removal.
    auto ready = Mapping::anonymous_shared(4096);
    auto* flag = reinterpret_cast<volatile int*>(ready.data());
    auto child = test::spawn([&] {
        auto own = segment.attach(Access::read_write);
        memory.detach();
        flag[0] = 1;
        for (int i = 0; flag[1] == 0 && i < 10000; ++i)
            ::usleep(1000);
        own.bytes()[1] = std::byte{2};  // still mapped and writable after IPC_RMID
        return own.bytes()[0] == std::byte{1} ? 0 : 1;
    });
    for (int i = 0; flag[0] == 0 && i < 10000; ++i)
        ::usleep(1000);
    segment.remove();
    EXPECT_FALSE(segment.owner());
    const SysvShmStatus st = segment.stat();
    EXPECT_TRUE(st.marked_for_removal);
    EXPECT_EQ(st.attach_count, 2U);
    // The key is released at once.
    try {
        (void)SysvShm::open(key);
        ADD_FAILURE() << "opened a removed segment by key";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
        EXPECT_NE(std::string(e.what()).find("removed"), std::string::npos) << e.what();
    }
    flag[1] = 1;
    ASSERT_EQ(child.wait(), 0);
    EXPECT_EQ(memory.bytes()[1], std::byte{2});
    EXPECT_TRUE(segment_exists(id));
    memory.detach();
    EXPECT_FALSE(segment_exists(id));  // gone with the last detach
}

TEST(SysvShmTest, RemovingAnUnattachedSegmentDestroysItAtOnce) {
    auto segment = create_with_fresh_key(4096);
    const int id = segment.id();
    segment.remove();
    EXPECT_FALSE(segment_exists(id));
    EXPECT_THROW((void)segment.attach(Access::read_only), Error);
    EXPECT_THROW((void)SysvShm::open_id(id), Error);
}

TEST(SysvShmTest, OwnerRemovesOnDestructionUnlessKept) {
    int id = -1;
    {
        auto segment = create_with_fresh_key(4096);
        id = segment.id();
    }
    EXPECT_FALSE(segment_exists(id));
    {
        auto segment = create_with_fresh_key(4096);
        id = segment.id();
        segment.keep();
    }
    EXPECT_TRUE(segment_exists(id));
    auto again = SysvShm::open_id(id);
    again.remove();
    EXPECT_FALSE(segment_exists(id));
}

// Assigning over an owner removes its segment; assigning over an attachment detaches it; a
// moved-from one holds nothing.
TEST(SysvShmTest, AssigningOverAnOwnerOrAnAttachmentReleasesIt) {
    auto segment = create_with_fresh_key(4096);
    const int first = segment.id();
    auto attachment = segment.attach(Access::read_write);
    EXPECT_EQ(segment.stat().attach_count, 1U);
    attachment = segment.attach(Access::read_only);
    EXPECT_EQ(segment.stat().attach_count, 1U);
    EXPECT_FALSE(attachment.writable());
    SysvShm moved = std::move(segment);
    EXPECT_FALSE(segment.owner());
    EXPECT_EQ(segment.id(), -1);
    attachment = SysvAttachment();
    EXPECT_EQ(moved.stat().attach_count, 0U);
    moved = create_with_fresh_key(4096);
    EXPECT_FALSE(segment_exists(first));
    EXPECT_TRUE(segment_exists(moved.id()));
}

TEST(SysvShmTest, CreationIsExclusiveAndDefaultsTo0600) {
    auto segment = create_with_fresh_key(4096);
    const SysvKey key = key_of(segment);
    try {
        (void)SysvShm::create(key, 4096);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::file_exists);
        EXPECT_EQ(std::string(e.what()).rfind("shmget(" + key.to_string(), 0), 0U) << e.what();
    }
    EXPECT_EQ(segment.stat().mode, 0600U);
}

TEST(SysvShmTest, SizeBeyondShmmaxNamesTheLimit) {
    std::ifstream in("/proc/sys/kernel/shmmax");
    unsigned long long shmmax = 0;
    in >> shmmax;
    ASSERT_GT(shmmax, 0U);
    if (shmmax >= SIZE_MAX) GTEST_SKIP() << "kernel.shmmax is the largest size_t: nothing is beyond it";
    const std::size_t size = static_cast<std::size_t>(shmmax) + 1;
    try {
        auto segment = SysvShm::create(SysvKey::private_key(), size);
        FAIL() << "created a segment of " << size << " bytes";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
        EXPECT_NE(std::string(e.what()).find("kernel.shmmax (" + std::to_string(shmmax)), std::string::npos)
            << e.what();
    }
}

TEST(SysvShmTest, AttachingReadWriteASegmentOpenedReadOnlyIsRefused) {
    auto segment = create_with_fresh_key(4096);
    auto peer = SysvShm::open(key_of(segment), Access::read_only);
    try {
        (void)peer.attach(Access::read_write);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::permission_denied);
        EXPECT_NE(std::string(e.what()).find("opened read-only"), std::string::npos) << e.what();
    }
    auto view = peer.attach();
    EXPECT_FALSE(view.writable());
}

TEST(SysvShmTest, WritingThroughAReadOnlyAttachmentKillsTheWriter) {
    auto segment = SysvShm::create(SysvKey::private_key(), 4096);
    auto view = segment.attach(Access::read_only);
    auto child = test::spawn([&] {
        ::signal(SIGSEGV, SIG_DFL);  // a sanitizer's handler would turn the signal into exit(1)
        *reinterpret_cast<volatile std::byte*>(view.data()) = std::byte{1};
        return 0;
    });
    EXPECT_EQ(child.wait(), -SIGSEGV);
}

TEST(SysvShmTest, ForeignKeyIsRefusedToAnotherUser) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user (uid 65534)";
    auto segment = create_with_fresh_key(4096);  // 0600, owned by root
    const SysvKey key = key_of(segment);
    auto child = test::spawn([&] {
        if (::setuid(65534) != 0) return 2;
        try {
            (void)SysvShm::open(key, Access::read_only);
            return 3;
        } catch (const Error& e) {
            if (e.code() != std::errc::permission_denied) return 4;
            if (std::string(e.what()).find(key.to_string()) == std::string::npos) return 5;
        }
        // The inherited id does not help either: shmat checks the mode too.
        return ::shmat(segment.id(), nullptr, SHM_RDONLY) == reinterpret_cast<void*>(-1) && errno == EACCES
                   ? 0
                   : 6;
    });
    EXPECT_EQ(child.wait(), 0);
}

TEST(SysvShmTest, ModeThatDeniesWriteAllowsOnlyReadOnlyUse) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user (uid 65534)";
    auto segment = create_with_fresh_key(4096, 0644);
    const SysvKey key = key_of(segment);
    auto child = test::spawn([&] {
        if (::setuid(65534) != 0) return 2;
        try {
            (void)SysvShm::open(key, Access::read_write);
            return 3;
        } catch (const Error& e) {
            if (e.code() != std::errc::permission_denied) return 4;
        }
        auto reader = SysvShm::open(key, Access::read_only);
        auto view = reader.attach(Access::read_only);
        // Asking the kernel directly for a writable attachment is refused too.
        if (::shmat(reader.id(), nullptr, 0) != reinterpret_cast<void*>(-1) || errno != EACCES) return 5;
        return view.size() == 4096 ? 0 : 6;
    });
    EXPECT_EQ(child.wait(), 0);
}

TEST(SysvShmTest, ZeroSizeIsRefused) {
    EXPECT_THROW((void)SysvShm::create(SysvKey::private_key(), 0), Error);
}

}  // namespace
}  // namespace ipckit
