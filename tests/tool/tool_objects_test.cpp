// `ipckit ls` and `ipckit rm`, end to end: build/bin/ipckit run on objects that real child
// processes made before they were killed. Every `rm --stale` here carries `--match` with the
// test's own addresses: tests of other programs run on this machine at the same time, and
// their objects must never be touched.
#include <fcntl.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <sstream>

#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/io.hpp"
#include "ipckit/objects.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

// The children and the tool share one private registry, passed down in the environment.
[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

bool path_exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

test::RunResult ipckit_tool(std::vector<std::string> args) {
    args.insert(args.begin(), test::bin_path("ipckit"));
    return test::run(args);
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

// Reads `ipckit ls --json` with Python's own parser and prints the fields the tests check,
// one object per line: "address creator_pid creator_alive in_use stale".
std::vector<std::string> parse_ls_json(const std::string& json) {
    const auto parsed =
        test::run({"/usr/bin/env", "python3", "-c",
                   "import json, sys\n"
                   "for o in json.load(sys.stdin):\n"
                   "    assert {'kind', 'address', 'owner', 'mode', 'size', 'creator_pid',\n"
                   "            'creator_alive', 'in_use'} <= set(o), o\n"
                   "    print(o['address'], o['creator_pid'], o['creator_alive'], o['in_use'],\n"
                   "          o['stale'])\n"},
                  json);
    EXPECT_EQ(parsed.exit_code, 0) << "ipckit ls --json is not valid JSON: " << parsed.err << "\n" << json;
    return lines_of(parsed.out);
}

using test::kill_and_reap;  // support/process.hpp, with spawn_holding
using test::spawn_holding;

struct ShmName {
    std::string name = "/" + test::unique_name("ipckit-tooltest");
    std::string address() const { return "shm:" + name; }
    ~ShmName() { ::shm_unlink(name.c_str()); }
};

// A System V queue, removed at the end only if its key still names the queue this test made.
struct QueueGuard {
    key_t key = 0;
    int id = -1;
    ~QueueGuard() {
        if (id >= 0 && ::msgget(key, 0) == id) ::msgctl(id, IPC_RMID, nullptr);
    }
};

std::string key_address(const char* kind, key_t key) {
    char text[40];
    std::snprintf(text, sizeof text, "%s:0x%08x", kind, static_cast<unsigned>(key));
    return text;
}

key_t unused_key(bool queue) {
    std::mt19937 random(std::random_device{}());
    key_t key = 0;
    do {
        key = static_cast<key_t>(0x1d000000u | (random() & 0x00ffffffu));
    } while ((queue ? ::msgget(key, 0) : ::shmget(key, 0, 0)) >= 0);
    return key;
}

TEST(ToolObjectsTest, LsJsonParsesAndShowsTheDeadCreator) {
    ShmName shm;
    auto creator = spawn_holding([&] {
        ::close(::shm_open(shm.name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600));
        registry_record(ObjectKind::shm, shm.address());
    });
    const std::string pid = std::to_string(creator.pid());
    auto listed = ipckit_tool({"ls", "--json", "--match", shm.address()});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_EQ(parse_ls_json(listed.out),
              std::vector<std::string>{shm.address() + " " + pid + " True False False"});

    kill_and_reap(creator);
    listed = ipckit_tool({"ls", "--json", "--match", shm.address()});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_EQ(parse_ls_json(listed.out),
              std::vector<std::string>{shm.address() + " " + pid + " False False True"});

    // The table: a header, then the object with its creator marked dead.
    const auto table = ipckit_tool({"ls", "--match", shm.address()});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    const auto rows = lines_of(table.out);
    ASSERT_EQ(rows.size(), 2u) << table.out;
    EXPECT_TRUE(rows[0].starts_with("KIND")) << rows[0];
    EXPECT_NE(rows[1].find(shm.address()), std::string::npos);
    EXPECT_NE(rows[1].find(" " + pid + " no "), std::string::npos) << rows[1];
}

TEST(ToolObjectsTest, EmptyListingIsAnEmptyJsonArray) {
    const auto listed = ipckit_tool({"ls", "--json", "--match", "shm:/" + test::unique_name("none")});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_TRUE(parse_ls_json(listed.out).empty());
}

TEST(ToolObjectsTest, RmStaleRemovesWhatKilledPeersLeftAndDryRunRemovesNothing) {
    test::TempDir dir;
    ShmName shm;
    const std::string fifo = dir.file("pipe");
    QueueGuard queue{unused_key(true)};
    const key_t segment_key = unused_key(false);
    int segment_id = -1;
    auto creator = spawn_holding([&] {
        ::close(::shm_open(shm.name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600));
        registry_record(ObjectKind::shm, shm.address());
        if (::mkfifo(fifo.c_str(), 0600) != 0) throw_errno("mkfifo", fifo);
        registry_record(ObjectKind::fifo, "fifo:" + fifo);
        if (::msgget(queue.key, IPC_CREAT | IPC_EXCL | 0600) < 0) throw_errno("msgget", "queue");
        registry_record(ObjectKind::sysvmq, key_address("sysvmq", queue.key));
        if (::shmget(segment_key, 4096, IPC_CREAT | IPC_EXCL | 0600) < 0) throw_errno("shmget", "segment");
    });
    queue.id = ::msgget(queue.key, 0);
    segment_id = ::shmget(segment_key, 0, 0);
    ASSERT_GE(queue.id, 0);
    ASSERT_GE(segment_id, 0);
    const std::string creator_pid = std::to_string(creator.pid());
    kill_and_reap(creator);

    const std::vector<std::string> addresses = {
        shm.address(), "fifo:" + fifo, key_address("sysvmq", queue.key), key_address("sysvshm", segment_key)};
    for (const auto& address : addresses) {
        const auto dry = ipckit_tool({"rm", "--stale", "--dry-run", "--match", address});
        EXPECT_EQ(dry.exit_code, 0) << dry.err;
        EXPECT_EQ(lines_of(dry.out).size(), 1u) << dry.out;
        EXPECT_TRUE(dry.out.starts_with("would remove " + address)) << dry.out;
    }
    EXPECT_TRUE(path_exists("/dev/shm" + shm.name));
    EXPECT_TRUE(path_exists(fifo));
    EXPECT_EQ(::msgget(queue.key, 0), queue.id);
    EXPECT_EQ(::shmget(segment_key, 0, 0), segment_id);

    for (const auto& address : addresses) {
        const auto removed = ipckit_tool({"rm", "--stale", "--match", address});
        EXPECT_EQ(removed.exit_code, 0) << removed.err;
        EXPECT_EQ(lines_of(removed.out), std::vector<std::string>{"removed " + address + " (creator " +
                                                                  creator_pid + " gone, not in use)"})
            << removed.out;
    }
    EXPECT_FALSE(path_exists("/dev/shm" + shm.name));
    EXPECT_FALSE(path_exists(fifo));
    EXPECT_LT(::msgget(queue.key, 0), 0);
    EXPECT_LT(::shmget(segment_key, 0, 0), 0);
    // Safety net if the tool failed: remove the segment only if its key still names ours.
    if (::shmget(segment_key, 0, 0) == segment_id) ::shmctl(segment_id, IPC_RMID, nullptr);
}

TEST(ToolObjectsTest, RmStaleKeepsWhatALiveProcessStillHasOpen) {
    ShmName shm;
    auto creator = spawn_holding([&] {
        ::close(::shm_open(shm.name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600));
        registry_record(ObjectKind::shm, shm.address());
    });
    auto user = spawn_holding([&] {
        if (::shm_open(shm.name.c_str(), O_RDWR, 0) < 0) throw_errno("shm_open", shm.name);
    });
    kill_and_reap(creator);
    const auto kept = ipckit_tool({"rm", "--stale", "--match", shm.address()});
    EXPECT_EQ(kept.exit_code, 0) << kept.err;
    EXPECT_EQ(kept.out, "");
    EXPECT_TRUE(path_exists("/dev/shm" + shm.name));
    kill_and_reap(user);
}

TEST(ToolObjectsTest, IpcmkQueueIsListedAndStaleOnceIpcmkHasExited) {
    if (!path_exists("/usr/bin/ipcmk")) GTEST_SKIP() << "ipcmk (util-linux) is not installed";
    const auto made = test::run({"/usr/bin/ipcmk", "-Q", "-p", "0600"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    // "Message queue id: 42"
    const auto colon = made.out.rfind(':');
    ASSERT_NE(colon, std::string::npos) << made.out;
    QueueGuard queue;
    queue.id = std::stoi(made.out.substr(colon + 1));
    msqid_ds ds{};
    ASSERT_EQ(::msgctl(queue.id, IPC_STAT, &ds), 0);
    queue.key = ds.msg_perm.__key;
    const std::string address =
        queue.key == IPC_PRIVATE ? "sysvmq:id=" + std::to_string(queue.id) : key_address("sysvmq", queue.key);

    const auto listed = ipckit_tool({"ls", "--json", "--match", address});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_EQ(parse_ls_json(listed.out), std::vector<std::string>{address + " None False False True"})
        << "the kernel records no creator, ipcmk has exited and nobody sent or received";

    const auto removed = ipckit_tool({"rm", "--stale", "--match", address});
    EXPECT_EQ(removed.exit_code, 0) << removed.err;
    EXPECT_EQ(removed.out, "removed " + address + " (creator unknown, not in use)\n");
    msqid_ds gone{};
    EXPECT_NE(::msgctl(queue.id, IPC_STAT, &gone), 0);
}

TEST(ToolObjectsTest, RmRefusesARegularFileAtAFifoAddress) {
    test::TempDir dir;
    const std::string file = dir.file("precious");
    Fd(::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)).reset();
    const auto refused = ipckit_tool({"rm", "fifo:" + file});
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_EQ(lines_of(refused.err).size(), 1u) << refused.err;
    EXPECT_NE(refused.err.find("is a regular file, not a FIFO"), std::string::npos) << refused.err;
    EXPECT_EQ(refused.out, "");
    EXPECT_TRUE(path_exists(file));
}

TEST(ToolObjectsTest, RmOfAMissingObjectIsAClearError) {
    const std::string address = "shm:/" + test::unique_name("missing");
    const auto missing = ipckit_tool({"rm", address});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(lines_of(missing.err).size(), 1u) << missing.err;
    EXPECT_NE(missing.err.find("no such object: " + address), std::string::npos) << missing.err;
}

TEST(ToolObjectsTest, RmRemovesOneObjectByAddressAndSaysSo) {
    test::TempDir dir;
    const std::string fifo = dir.file("pipe");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const auto removed = ipckit_tool({"rm", "fifo:" + fifo});
    EXPECT_EQ(removed.exit_code, 0) << removed.err;
    EXPECT_EQ(removed.out, "removed fifo:" + fifo + "\n");
    EXPECT_FALSE(path_exists(fifo));
}

TEST(ToolObjectsTest, RmUsageErrorsExitTwo) {
    for (const auto& args : std::vector<std::vector<std::string>>{{"rm"},
                                                                  {"rm", "shm:/x", "--stale"},
                                                                  {"rm", "shm:/x", "--dry-run"},
                                                                  {"rm", "--stale", "--force"}}) {
        const auto result = ipckit_tool(args);
        EXPECT_EQ(result.exit_code, 2) << args.size() << ": " << result.err;
        EXPECT_EQ(lines_of(result.err).size(), 1u) << result.err;
    }
}

TEST(ToolObjectsTest, RmOfAMalformedAddressQuotesIt) {
    const auto result = ipckit_tool({"rm", "tcp://localhost:1"});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_NE(result.err.find("\"tcp://localhost:1\""), std::string::npos) << result.err;
}

}  // namespace
}  // namespace ipckit
