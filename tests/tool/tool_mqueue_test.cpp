// `ipckit ls` finds POSIX queues two ways: by reading a mounted /dev/mqueue (every queue), and,
// where it is not mounted, through ipckit's registry (only the queues ipckit made). Both paths
// run here whatever this machine has, each in a private mount namespace (unshare), where
// /dev/mqueue is mounted or unmounted for that child and the tool it runs, and nobody else.
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "ipckit/channel.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;

constexpr long kMqueueMagic = 0x19800202;
constexpr int kCannotMount = 77;

bool mqueue_mounted() {
    struct statfs fs {};
    return ::statfs("/dev/mqueue", &fs) == 0 && fs.f_type == kMqueueMagic;
}

// A queue made with mq_open directly: no registry record, so only a mounted /dev/mqueue shows it.
bool make_raw_queue(const std::string& name) {
    const mqd_t q = ::mq_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, nullptr);
    if (q == static_cast<mqd_t>(-1)) return false;
    ::mq_close(q);
    return true;
}

// Runs `body` in a child with a private mount namespace in which /dev/mqueue is `mounted` or not.
int in_namespace(bool mounted, const std::function<int()>& body) {
    auto child = test::spawn([&] {
        if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
            return kCannotMount;
        if (mounted && !mqueue_mounted() && ::mount("none", "/dev/mqueue", "mqueue", 0, nullptr) != 0)
            return kCannotMount;
        if (!mounted && mqueue_mounted() && ::umount2("/dev/mqueue", MNT_DETACH) != 0) return kCannotMount;
        return mqueue_mounted() == mounted ? body() : kCannotMount;
    });
    return child.wait(60s);
}

class ToolMqueueTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "mounting /dev/mqueue in a private namespace needs root";
        // The mount point: an empty directory, made for the test where the machine has none
        // (a directory is no IPC object; it is removed again below).
        made_dir_ = ::mkdir("/dev/mqueue", 01777) == 0;
    }
    void TearDown() override {
        ::mq_unlink(raw_.c_str());
        ::mq_unlink(registered_.c_str());
        if (made_dir_) ::rmdir("/dev/mqueue");
    }
    std::string ls() const {
        const auto r = test::run({test::bin_path("ipckit"), "ls"});
        return r.exit_code == 0 ? r.out : "ipckit ls failed: " + r.err;
    }

    std::string raw_ = "/" + test::unique_name("ipckit-test-raw");
    std::string registered_ = "/" + test::unique_name("ipckit-test-reg");
    bool made_dir_ = false;
};

TEST_F(ToolMqueueTest, MountedDevMqueueShowsEveryQueue) {
    const int status = in_namespace(true, [&] {
        if (!make_raw_queue(raw_)) return 2;
        const std::string out = ls();
        std::fputs(out.c_str(), stderr);
        return out.find("posixmq:" + raw_) != std::string::npos ? 0 : 1;
    });
    if (status == kCannotMount) GTEST_SKIP() << "cannot mount mqueue in a private mount namespace";
    EXPECT_EQ(status, 0) << "ls did not list a queue in the mounted /dev/mqueue";
}

TEST_F(ToolMqueueTest, WithoutDevMqueueTheRegistryStillShowsIpckitsQueues) {
    const int status = in_namespace(false, [&] {
        if (!make_raw_queue(raw_)) return 2;
        Receiver receiver = Receiver::create("posixmq:" + registered_);
        const std::string out = ls();
        std::fputs(out.c_str(), stderr);
        if (out.find("posixmq:" + registered_) == std::string::npos) return 1;
        // The raw queue has no record and no file to find: not listed, which is what this
        // path can do (and why CI mounts /dev/mqueue).
        return out.find("posixmq:" + raw_) == std::string::npos ? 0 : 3;
    });
    if (status == kCannotMount) GTEST_SKIP() << "cannot unmount /dev/mqueue in a private mount namespace";
    EXPECT_EQ(status, 0);
}

}  // namespace
}  // namespace ipckit
