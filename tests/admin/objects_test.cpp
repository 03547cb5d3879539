// Objects: list_objects, remove_object, remove_stale and the registry, on real objects made
// by real child processes that are then killed. Every sweep here is limited to the test's own
// addresses (`match`): other programs' objects on this machine are never touched.
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <thread>

#include "ipckit/address.hpp"
#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/io.hpp"
#include "ipckit/objects.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

// The registry of this test program lives in its own private directory, so records written
// here never mix with those of the user or of other test programs running at the same time.
[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

// --- Objects made in children, and guards that remove them whatever happens -------------

using test::kill_and_reap;  // support/process.hpp, with spawn_holding
using test::spawn_holding;

struct ShmName {
    std::string name = "/" + test::unique_name("ipckit-objtest");
    std::string address() const { return "shm:" + name; }
    ~ShmName() { ::shm_unlink(name.c_str()); }
};

struct MqName {
    std::string name = "/" + test::unique_name("ipckit-objtest");
    std::string address() const { return "posixmq:" + name; }
    ~MqName() { ::mq_unlink(name.c_str()); }
};

// A System V key nobody uses now; the object is removed at the end only if the key still
// names the object this test made (an id alone could by then belong to someone else).
template <bool Queue>
struct SysvObject {
    key_t key = 0;
    int id = -1;
    SysvObject() {
        std::mt19937 random(std::random_device{}());
        do {
            key = static_cast<key_t>(0x1c000000u | (random() & 0x00ffffffu));
        } while ((Queue ? ::msgget(key, 0) : ::shmget(key, 0, 0)) >= 0);
    }
    std::string address() const {
        char text[40];
        std::snprintf(text, sizeof text, "%s:0x%08x", Queue ? "sysvmq" : "sysvshm",
                      static_cast<unsigned>(key));
        return text;
    }
    // Called in the child that creates it; the id is found again by key in the parent.
    void create() const {
        const int made = Queue ? ::msgget(key, IPC_CREAT | IPC_EXCL | 0600)
                               : ::shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0600);
        if (made < 0) throw_errno(Queue ? "msgget" : "shmget", address());
    }
    int find() {
        id = Queue ? ::msgget(key, 0) : ::shmget(key, 0, 0);
        return id;
    }
    bool exists() const { return (Queue ? ::msgget(key, 0) : ::shmget(key, 0, 0)) >= 0; }
    ~SysvObject() {
        if (id < 0 || (Queue ? ::msgget(key, 0) : ::shmget(key, 0, 0)) != id) return;
        if (Queue) {
            ::msgctl(id, IPC_RMID, nullptr);
        } else {
            ::shmctl(id, IPC_RMID, nullptr);
        }
    }
};
using SysvQueue = SysvObject<true>;
using SysvSegment = SysvObject<false>;

std::optional<IpcObject> find_listed(const std::string& address) {
    for (auto& object : list_objects())
        if (object.address == address) return object;
    return std::nullopt;
}

bool path_exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// Removes what is stale among exactly this address, and says what was removed.
std::vector<std::string> sweep(const std::string& address, bool dry_run = false) {
    const auto report = remove_stale({.match = address, .dry_run = dry_run});
    EXPECT_TRUE(report.errors.empty()) << report.errors.front();
    std::vector<std::string> addresses;
    for (const auto& removed : report.removed)
        addresses.push_back(removed.address);
    return addresses;
}

int bind_socket(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd, 1) != 0)
        throw_errno("bind", path);
    return fd;
}

// --- Each kind: a killed creator makes it stale; a live user keeps it --------------------

TEST(ObjectsTest, ShmOfKilledCreatorIsListedStaleAndRemovedBySweep) {
    ShmName shm;
    auto creator = spawn_holding([&] {
        const int fd = ::shm_open(shm.name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
        if (fd < 0 || ::ftruncate(fd, 4096) != 0) throw_errno("shm_open", shm.name);
        ::close(fd);
        registry_record(ObjectKind::shm, shm.address());
    });
    const pid_t creator_pid = creator.pid();

    auto alive = find_listed(shm.address());
    ASSERT_TRUE(alive);
    EXPECT_EQ(alive->creator_pid, creator_pid);
    EXPECT_EQ(alive->creator_source, CreatorSource::registry);
    EXPECT_TRUE(alive->creator_alive);
    EXPECT_FALSE(alive->stale);
    EXPECT_TRUE(sweep(shm.address()).empty()) << "a live creator's object was swept";

    kill_and_reap(creator);
    const auto dead = find_listed(shm.address());
    ASSERT_TRUE(dead);
    EXPECT_EQ(dead->kind, ObjectKind::shm);
    EXPECT_EQ(dead->creator_pid, creator_pid);
    EXPECT_FALSE(dead->creator_alive);
    EXPECT_FALSE(dead->in_use);
    EXPECT_TRUE(dead->stale);
    EXPECT_EQ(dead->size, 4096u);
    EXPECT_EQ(dead->mode, 0600u);
    EXPECT_EQ(dead->owner_uid, ::geteuid());

    EXPECT_EQ(sweep(shm.address()), std::vector<std::string>{shm.address()});
    EXPECT_FALSE(path_exists("/dev/shm" + shm.name));
    EXPECT_FALSE(find_listed(shm.address()));
}

TEST(ObjectsTest, ShmStillMappedByALiveProcessIsInUseAndKept) {
    ShmName shm;
    auto creator = spawn_holding([&] {
        const int fd = ::shm_open(shm.name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
        if (fd < 0 || ::ftruncate(fd, 4096) != 0) throw_errno("shm_open", shm.name);
        ::close(fd);
        registry_record(ObjectKind::shm, shm.address());
    });
    // The user maps it and closes its descriptor: only /proc/PID/maps shows the use.
    auto user = spawn_holding([&] {
        const int fd = ::shm_open(shm.name.c_str(), O_RDWR, 0);
        if (fd < 0) throw_errno("shm_open", shm.name);
        if (::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED)
            throw_errno("mmap", shm.name);
        ::close(fd);
    });
    kill_and_reap(creator);

    const auto listed = find_listed(shm.address());
    ASSERT_TRUE(listed);
    EXPECT_FALSE(listed->creator_alive);
    EXPECT_TRUE(listed->in_use);
    EXPECT_FALSE(listed->stale);
    EXPECT_TRUE(sweep(shm.address()).empty());
    EXPECT_TRUE(path_exists("/dev/shm" + shm.name));

    kill_and_reap(user);
    EXPECT_EQ(sweep(shm.address()), std::vector<std::string>{shm.address()});
    EXPECT_FALSE(path_exists("/dev/shm" + shm.name));
}

TEST(ObjectsTest, FifoOfKilledCreatorIsStaleUnlessALiveProcessHasItOpen) {
    test::TempDir dir;
    const std::string path = dir.file("pipe");
    const std::string address = "fifo:" + path;
    auto creator = spawn_holding([&] {
        if (::mkfifo(path.c_str(), 0600) != 0) throw_errno("mkfifo", path);
        registry_record(ObjectKind::fifo, address);
    });
    auto opener = spawn_holding([&] {
        if (::open(path.c_str(), O_RDWR | O_NONBLOCK) < 0) throw_errno("open", path);
    });
    const pid_t creator_pid = creator.pid();
    kill_and_reap(creator);

    auto listed = find_listed(address);
    ASSERT_TRUE(listed) << "a FIFO ipckit recorded is listed";
    EXPECT_EQ(listed->creator_pid, creator_pid);
    EXPECT_FALSE(listed->creator_alive);
    EXPECT_TRUE(listed->in_use);
    EXPECT_TRUE(sweep(address).empty());

    kill_and_reap(opener);
    listed = find_listed(address);
    ASSERT_TRUE(listed);
    EXPECT_FALSE(listed->in_use);
    EXPECT_TRUE(listed->stale);
    EXPECT_EQ(sweep(address), std::vector<std::string>{address});
    EXPECT_FALSE(path_exists(path));
}

TEST(ObjectsTest, SocketFileIsInUseWhileBoundAndStaleOnceItsCreatorIsKilled) {
    test::TempDir dir;
    const std::string path = dir.file("sock");
    const std::string address = "unix:" + path;
    auto creator = spawn_holding([&] {
        (void)bind_socket(path);
        registry_record(ObjectKind::unix_socket, address);
    });
    auto listed = find_listed(address);
    ASSERT_TRUE(listed);
    EXPECT_TRUE(listed->in_use) << "a listening socket is bound to the file";
    EXPECT_TRUE(sweep(address).empty());

    kill_and_reap(creator);
    listed = find_listed(address);
    ASSERT_TRUE(listed);
    EXPECT_FALSE(listed->in_use);
    EXPECT_TRUE(listed->stale);
    EXPECT_EQ(sweep(address), std::vector<std::string>{address});
    EXPECT_FALSE(path_exists(path));
}

TEST(ObjectsTest, SysvSegmentCreatorComesFromTheKernelAndAttachmentKeepsIt) {
    SysvSegment segment;
    auto creator = spawn_holding([&] { segment.create(); });  // not registered: the kernel knows
    ASSERT_GE(segment.find(), 0);
    auto user = spawn_holding([&] {
        if (::shmat(::shmget(segment.key, 0, 0), nullptr, 0) == reinterpret_cast<void*>(-1))
            throw_errno("shmat", segment.address());
    });
    const pid_t creator_pid = creator.pid();
    kill_and_reap(creator);

    auto listed = find_listed(segment.address());
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->sysv_id, segment.id);
    EXPECT_EQ(listed->creator_source, CreatorSource::kernel);
    EXPECT_EQ(listed->creator_pid, creator_pid);
    EXPECT_FALSE(listed->creator_alive);
    EXPECT_TRUE(listed->in_use) << "nattch is 1";
    EXPECT_EQ(listed->size, 8192u);
    EXPECT_TRUE(sweep(segment.address()).empty());

    kill_and_reap(user);
    listed = find_listed(segment.address());
    ASSERT_TRUE(listed);
    EXPECT_TRUE(listed->stale);
    EXPECT_EQ(sweep(segment.address()), std::vector<std::string>{segment.address()});
    EXPECT_FALSE(segment.exists());
}

TEST(ObjectsTest, RemovingAnAttachedSegmentMarksItAndSaysSo) {
    SysvSegment segment;
    auto user = spawn_holding([&] {
        segment.create();
        if (::shmat(::shmget(segment.key, 0, 0), nullptr, 0) == reinterpret_cast<void*>(-1))
            throw_errno("shmat", segment.address());
    });
    ASSERT_GE(segment.find(), 0);
    const auto removed = remove_object(segment.address());
    EXPECT_EQ(removed.description, "marked " + segment.address() + " for removal (id " +
                                       std::to_string(segment.id) +
                                       ", 8192 bytes): it goes when its 1 attached process(es) detach");
    EXPECT_FALSE(segment.exists()) << "the key no longer reaches it";
    shmid_ds ds{};
    EXPECT_EQ(::shmctl(segment.id, IPC_STAT, &ds), 0) << "still there for its user";
    kill_and_reap(user);
    EXPECT_NE(::shmctl(segment.id, IPC_STAT, &ds), 0) << "gone with its last user";
}

TEST(ObjectsTest, SysvQueueCreatorComesFromTheRegistry) {
    SysvQueue queue;
    auto creator = spawn_holding([&] {
        queue.create();
        registry_record(ObjectKind::sysvmq, queue.address());
    });
    ASSERT_GE(queue.find(), 0);
    const pid_t creator_pid = creator.pid();
    auto listed = find_listed(queue.address());
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->creator_pid, creator_pid);
    EXPECT_TRUE(listed->creator_alive);
    EXPECT_TRUE(sweep(queue.address()).empty());

    kill_and_reap(creator);
    listed = find_listed(queue.address());
    ASSERT_TRUE(listed);
    EXPECT_FALSE(listed->creator_alive);
    EXPECT_TRUE(listed->stale);
    EXPECT_EQ(sweep(queue.address()), std::vector<std::string>{queue.address()});
    EXPECT_FALSE(queue.exists());
}

TEST(ObjectsTest, SysvQueueWithALiveSenderOrAWaitingReceiverIsInUse) {
    SysvQueue queue;
    auto creator = spawn_holding([&] { queue.create(); });  // unregistered: creator unknown
    ASSERT_GE(queue.find(), 0);
    kill_and_reap(creator);
    auto listed = find_listed(queue.address());
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->creator_source, CreatorSource::unknown);
    EXPECT_TRUE(listed->stale) << "unknown creator, nobody sent or received";

    // A receiver blocked in msgrcv has not received anything yet: only its system call shows it.
    auto receiver = test::spawn([&] {
        struct {
            long type;
            char text[16];
        } message{};
        return ::msgrcv(queue.id, &message, sizeof message.text, 0, 0) < 0 ? 1 : 0;
    });
    bool seen_waiting = false;
    for (int attempt = 0; attempt < 2000 && !seen_waiting; ++attempt) {  // until it is blocked
        listed = find_listed(queue.address());
        seen_waiting = listed && listed->in_use;
        if (!seen_waiting) std::this_thread::sleep_for(5ms);
    }
    EXPECT_TRUE(seen_waiting) << "a receiver waiting in msgrcv makes the queue in use";
    EXPECT_TRUE(sweep(queue.address()).empty());
    kill_and_reap(receiver);

    // A live process that sent is the queue's last sender.
    auto sender = spawn_holding([&] {
        struct {
            long type;
            char text[4];
        } message{1, "hi"};
        if (::msgsnd(queue.id, &message, sizeof message.text, 0) != 0) throw_errno("msgsnd", queue.address());
    });
    listed = find_listed(queue.address());
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->last_sender_pid, sender.pid());
    EXPECT_EQ(listed->messages, 1u);
    EXPECT_EQ(listed->size, 4u);
    EXPECT_TRUE(listed->in_use);
    EXPECT_TRUE(sweep(queue.address()).empty());

    kill_and_reap(sender);
    EXPECT_EQ(sweep(queue.address()), std::vector<std::string>{queue.address()});
    EXPECT_FALSE(queue.exists());
}

TEST(ObjectsTest, PosixQueueOfKilledCreatorIsListedAndRemoved) {
    MqName mq;
    auto creator = spawn_holding([&] {
        mq_attr attr{};
        attr.mq_maxmsg = 4;
        attr.mq_msgsize = 64;
        if (::mq_open(mq.name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &attr) == (mqd_t)-1)
            throw_errno("mq_open", mq.name);
        registry_record(ObjectKind::posixmq, mq.address());
    });
    const pid_t creator_pid = creator.pid();
    auto listed = find_listed(mq.address());
    ASSERT_TRUE(listed) << "found through /dev/mqueue or, unmounted, through the registry";
    EXPECT_TRUE(listed->in_use) << "the creator still has it open";
    EXPECT_TRUE(sweep(mq.address()).empty());

    kill_and_reap(creator);
    listed = find_listed(mq.address());
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->creator_pid, creator_pid);
    EXPECT_FALSE(listed->creator_alive);
    EXPECT_FALSE(listed->in_use);
    EXPECT_EQ(listed->owner_uid, ::geteuid());
    EXPECT_EQ(sweep(mq.address()), std::vector<std::string>{mq.address()});
    const mqd_t gone = ::mq_open(mq.name.c_str(), O_RDONLY);
    EXPECT_EQ(gone, (mqd_t)-1);
    EXPECT_EQ(errno, ENOENT);
}

// --- Sweeping and removing safely --------------------------------------------------------

TEST(ObjectsTest, DryRunReportsButRemovesNothing) {
    ShmName shm;
    auto creator = spawn_holding([&] {
        ::close(::shm_open(shm.name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600));
        registry_record(ObjectKind::shm, shm.address());
    });
    kill_and_reap(creator);
    const auto report = remove_stale({.match = shm.address(), .dry_run = true});
    ASSERT_EQ(report.removed.size(), 1u);
    EXPECT_EQ(report.removed[0].address, shm.address());
    EXPECT_TRUE(report.removed[0].description.starts_with("would remove " + shm.address()));
    EXPECT_TRUE(path_exists("/dev/shm" + shm.name));
}

TEST(ObjectsTest, SweepTouchesOnlyMatchingAddresses) {
    ShmName mine, other;
    auto creator = spawn_holding([&] {
        for (const auto* name : {&mine.name, &other.name})
            ::close(::shm_open(name->c_str(), O_CREAT | O_EXCL | O_RDWR, 0600));
    });
    kill_and_reap(creator);
    EXPECT_EQ(sweep(mine.address()), std::vector<std::string>{mine.address()});
    EXPECT_TRUE(path_exists("/dev/shm" + other.name)) << "a stale object outside the pattern was removed";
}

TEST(ObjectsTest, RemoveRefusesWhatIsNotAFifoAtAFifoAddress) {
    test::TempDir dir;
    const std::string file = dir.file("regular");
    Fd(::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)).reset();
    const std::string fifo = dir.file("real-fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const std::string link = dir.file("link");
    ASSERT_EQ(::symlink(fifo.c_str(), link.c_str()), 0);

    for (const auto& [path, what] : {std::pair{file, "a regular file"}, std::pair{link, "a symbolic link"}}) {
        try {
            (void)remove_object("fifo:" + path);
            ADD_FAILURE() << "removed " << path;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::operation_not_permitted);
            EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
        }
        EXPECT_TRUE(path_exists(path));
    }
    EXPECT_TRUE(path_exists(fifo)) << "the symlink's target was removed";
    EXPECT_THROW((void)remove_object("unix:" + fifo), Error) << "a FIFO is not a socket";
    EXPECT_EQ(remove_object("fifo:" + fifo).description, "removed fifo:" + fifo);
    EXPECT_FALSE(path_exists(fifo));
}

TEST(ObjectsTest, RemovingAMissingObjectIsAClearError) {
    ShmName shm;
    SysvQueue queue;
    test::TempDir dir;
    for (const auto& address :
         {shm.address(), queue.address(), "fifo:" + dir.file("none"), std::string("sysvshm:id=2147483000")}) {
        try {
            (void)remove_object(address);
            ADD_FAILURE() << "no error for " << address;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
            EXPECT_NE(std::string(e.what()).find("no such object"), std::string::npos) << e.what();
        }
    }
}

TEST(ObjectsTest, AnotherUsersObjectIsRefusedUnlessForced) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to give an object to another user";
    ShmName shm;
    const int fd = ::shm_open(shm.name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::fchown(fd, 65534, 65534), 0);
    ::close(fd);
    try {
        (void)remove_object(shm.address());
        ADD_FAILURE() << "removed another user's object";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::operation_not_permitted);
        EXPECT_NE(std::string(e.what()).find("uid 65534"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(path_exists("/dev/shm" + shm.name));
    // Not ours, so never swept either, even when stale.
    EXPECT_TRUE(sweep(shm.address()).empty());
    EXPECT_EQ(remove_object(shm.address(), {.force = true}).address, shm.address());
    EXPECT_FALSE(path_exists("/dev/shm" + shm.name));
}

TEST(ObjectsTest, MalformedAddressesAreRejected) {
    for (const char* address : {"tcp://localhost:1", "fd:3", "shm:noslash", "shm:/a/b", "posixmq:/", "fifo:",
                                "unix:@abstract", "sysvmq:private", "sysvmq:id=x", "nonsense", "what:ever"}) {
        try {
            (void)remove_object(address);
            ADD_FAILURE() << "accepted " << address;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::invalid_argument) << address << ": " << e.what();
        }
    }
}

TEST(ObjectsTest, AddressPatternsAreShellGlobs) {
    EXPECT_TRUE(address_matches("shm:/app-1", "shm:/app-*"));
    EXPECT_TRUE(address_matches("fifo:/tmp/x/y", "fifo:/tmp/*"));
    EXPECT_FALSE(address_matches("shm:/other", "shm:/app-*"));
    EXPECT_TRUE(address_matches("sysvmq:0x0000abcd", "*"));
}

// --- The registry ------------------------------------------------------------------------

TEST(RegistryTest, RecordOfAVanishedObjectIsPruned) {
    ShmName shm;
    ::close(::shm_open(shm.name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600));
    registry_record(ObjectKind::shm, shm.address());
    const auto count_records = [] {
        std::size_t n = 0;
        for (const auto& entry : std::filesystem::directory_iterator(registry_directory()))
            n += entry.path().extension() == ".rec" ? 1 : 0;
        return n;
    };
    const std::size_t before = count_records();
    ASSERT_GE(before, 1u);
    ::shm_unlink(shm.name.c_str());
    (void)list_objects();
    EXPECT_EQ(count_records(), before - 1);
}

TEST(RegistryTest, AnObjectMadeAgainAtTheSameAddressIsNotTheOldCreatorsAnyMore) {
    test::TempDir dir;
    const std::string path = dir.file("pipe");
    auto creator = spawn_holding([&] {
        if (::mkfifo(path.c_str(), 0600) != 0) throw_errno("mkfifo", path);
        registry_record(ObjectKind::fifo, "fifo:" + path);
    });
    kill_and_reap(creator);
    // Someone replaces it without going through ipckit (made beside it, renamed over it, so
    // it surely has another inode): the record no longer describes what is at the path.
    const std::string replacement = dir.file("replacement");
    ASSERT_EQ(::mkfifo(replacement.c_str(), 0600), 0);
    ASSERT_EQ(::rename(replacement.c_str(), path.c_str()), 0);
    EXPECT_FALSE(find_listed("fifo:" + path)) << "the old record was taken for the new FIFO";
    EXPECT_TRUE(sweep("fifo:" + path).empty());
    EXPECT_TRUE(path_exists(path));
}

TEST(RegistryTest, AParsedAddressIsRecordedUnderItsCanonicalNameWithoutParsingAgain) {
    test::TempDir dir;
    const std::string path = dir.file("pipe");
    ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
    // As a channel holds it: a transport, options and all (options never reach the record).
    const auto entry = registry_record(parse_address("fifo:" + path + "?mode=0600&framing=line"));
    ASSERT_TRUE(entry);
    EXPECT_EQ(entry->kind, ObjectKind::fifo);
    EXPECT_EQ(entry->address, "fifo:" + path);
    const auto listed = find_listed(entry->address);
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->creator_source, CreatorSource::registry);
    EXPECT_EQ(listed->creator_pid, ::getpid());
    EXPECT_TRUE(listed->creator_alive);
    registry_forget(*entry);
    EXPECT_FALSE(find_listed(entry->address)) << "a FIFO is listed only through its record";

    // A socket file is recorded as unix: whichever socket type made it.
    const auto socket = registry_record(parse_address("unix+seqpacket:" + dir.file("sock")));
    ASSERT_TRUE(socket);
    EXPECT_EQ(socket->kind, ObjectKind::unix_socket);
    EXPECT_EQ(socket->address, "unix:" + dir.file("sock"));
    registry_forget(*socket);

    // What leaves no object behind is not recorded at all.
    for (const char* nothing : {"tcp://localhost:5555", "fd:3", "unix:@ipckit-objtest", "sysvmq:0"})
        EXPECT_FALSE(registry_record(parse_address(nothing))) << nothing;
}

TEST(RegistryTest, AnUnsafeDirectoryIsNotUsedAndNothingFails) {
    test::TempDir dir;
    const std::string open_dir = dir.file("shared");
    ASSERT_EQ(::mkdir(open_dir.c_str(), 0777), 0);
    ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
    const std::string link = dir.file("link");
    ASSERT_EQ(::symlink(dir.path().c_str(), link.c_str()), 0);
    const std::string saved = std::getenv("IPCKIT_REGISTRY_DIR");
    for (const auto& unsafe : {open_dir, link}) {
        ::setenv("IPCKIT_REGISTRY_DIR", unsafe.c_str(), 1);
        EXPECT_EQ(registry_directory(), "") << unsafe;
        registry_record(ObjectKind::fifo, "fifo:" + dir.file("x"));  // must not throw
        registry_forget(ObjectKind::fifo, "fifo:" + dir.file("x"));
    }
    ::setenv("IPCKIT_REGISTRY_DIR", saved.c_str(), 1);
    EXPECT_TRUE(std::filesystem::is_empty(open_dir));
    registry_record(ObjectKind::fifo, "not an address");  // must not throw either
}

}  // namespace
}  // namespace ipckit
