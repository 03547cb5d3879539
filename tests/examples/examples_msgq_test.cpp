// The lecture's message-queue producer and consumer, run as unrelated exec'd programs, over a
// System V queue (selective receive by type) and a POSIX queue (priorities).
#include <fcntl.h>
#include <mqueue.h>
#include <sys/msg.h>

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/posix_queue.hpp"
#include "ipckit/sysv_queue.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

// A key no other run uses, and a guard that removes its queue whatever the test did.
struct KeyGuard {
    std::string text;
    KeyGuard() {
        static std::mt19937 random(std::random_device{}());
        for (;;) {
            const auto key = static_cast<key_t>(0x1d000000u | (random() & 0xffffffu));
            if (::msgget(key, 0) < 0) {
                char hex[16];
                std::snprintf(hex, sizeof hex, "0x%x", static_cast<unsigned>(key));
                text = hex;
                return;
            }
        }
    }
    KeyGuard(const KeyGuard&) = delete;
    KeyGuard& operator=(const KeyGuard&) = delete;
    ~KeyGuard() {
        const int id = ::msgget(SysvKey::parse(text).value(), 0);
        if (id >= 0) ::msgctl(id, IPC_RMID, nullptr);
    }
    [[nodiscard]] bool exists() const { return ::msgget(SysvKey::parse(text).value(), 0) >= 0; }
};

struct NameGuard {
    std::string name = "/" + test::unique_name("ipckit-mq-example");
    NameGuard() = default;
    NameGuard(const NameGuard&) = delete;
    NameGuard& operator=(const NameGuard&) = delete;
    ~NameGuard() { ::mq_unlink(name.c_str()); }
    [[nodiscard]] bool exists() const {
        const mqd_t fd = ::mq_open(name.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return false;
        ::mq_close(fd);
        return true;
    }
};

// A program run in the background: a forked child runs it and leaves its output in files.
class Background {
public:
    explicit Background(std::vector<std::string> argv) {
        child_ = test::spawn([this, argv] {
            const auto r = test::run(argv);
            std::ofstream(dir_.file("out")) << r.out;
            std::ofstream(dir_.file("err")) << r.err;
            return r.exit_code;
        });
    }
    test::RunResult finish() {
        test::RunResult result;
        result.exit_code = child_.wait(120s);
        std::stringstream out, err;
        out << std::ifstream(dir_.file("out")).rdbuf();
        err << std::ifstream(dir_.file("err")).rdbuf();
        result.out = out.str();
        result.err = err.str();
        return result;
    }

private:
    test::TempDir dir_;
    test::Child child_;
};

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST(ExamplesMsgqTest, SysvConsumerReadsWhatTheProducerLeftLowestTypeFirst) {
    KeyGuard key;
    const auto producer = test::run({test::bin_path("msgq_producer"), "--key", key.text, "--count", "5"});
    ASSERT_EQ(producer.exit_code, 0) << producer.err;
    EXPECT_TRUE(contains(producer.out, "sent 15 records")) << producer.out;
    // Connection-less: the producer has exited and its messages wait in the kernel.
    ASSERT_TRUE(key.exists());
    EXPECT_EQ(SysvQueue::open(SysvKey::parse(key.text)).stat().messages, 16u);

    const auto consumer = test::run({test::bin_path("msgq_consumer"), "--key", key.text});
    ASSERT_EQ(consumer.exit_code, 0) << consumer.out << consumer.err;
    EXPECT_TRUE(contains(consumer.out, "type 1: 5\ntype 2: 5\ntype 3: 5\n")) << consumer.out;
    EXPECT_TRUE(contains(consumer.out, "total: 15 (producer sent 15)")) << consumer.out;
    // Sent 3, 2, 1, 3, 2, 1, ...; received by lowest type.
    EXPECT_TRUE(contains(consumer.out, "order: 1x5 2x5 3x5\n")) << consumer.out;
    EXPECT_FALSE(key.exists()) << "the consumer removes the queue";
}

TEST(ExamplesMsgqTest, SysvConsumerTakesTheChosenTypeFirst) {
    KeyGuard key;
    ASSERT_EQ(test::run({test::bin_path("msgq_producer"), "--key", key.text, "--count", "4"}).exit_code, 0);
    const auto consumer = test::run({test::bin_path("msgq_consumer"), "--key", key.text, "--first", "3"});
    ASSERT_EQ(consumer.exit_code, 0) << consumer.err;
    EXPECT_TRUE(contains(consumer.out, "order: 3x4 1x4 2x4\n")) << consumer.out;
    EXPECT_TRUE(contains(consumer.out, "total: 12 (producer sent 12)")) << consumer.out;
    EXPECT_FALSE(key.exists());
}

TEST(ExamplesMsgqTest, SysvPairRunsAtTheSameTimeThroughAFullQueue) {
    KeyGuard key;
    // The consumer starts first and waits for the queue; 3000 records are more than the
    // queue's 16 KiB, so the producer blocks until the consumer makes room.
    Background consumer({test::bin_path("msgq_consumer"), "--key", key.text, "--wait", "60"});
    const auto producer = test::run({test::bin_path("msgq_producer"), "--key", key.text, "--count", "1000"});
    EXPECT_EQ(producer.exit_code, 0) << producer.err;
    const auto report = consumer.finish();
    ASSERT_EQ(report.exit_code, 0) << report.out << report.err;
    EXPECT_TRUE(contains(report.out, "type 1: 1000\ntype 2: 1000\ntype 3: 1000\n")) << report.out;
    EXPECT_TRUE(contains(report.out, "total: 3000 (producer sent 3000)")) << report.out;
    EXPECT_FALSE(key.exists());
}

TEST(ExamplesMsgqTest, SysvProducerRefusesAnExistingQueueAndLeavesItAlone) {
    KeyGuard key;
    ASSERT_EQ(test::run({test::bin_path("msgq_producer"), "--key", key.text, "--count", "1"}).exit_code, 0);
    const auto again = test::run({test::bin_path("msgq_producer"), "--key", key.text});
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_TRUE(contains(again.err, "File exists")) << again.err;
    EXPECT_TRUE(contains(again.err, "msgq_consumer --key " + key.text)) << again.err;
    EXPECT_EQ(SysvQueue::open(SysvKey::parse(key.text)).stat().messages, 4u);
}

TEST(ExamplesMsgqTest, SysvBadKeyAndMissingQueueAreReported) {
    const auto bad = test::run({test::bin_path("msgq_producer"), "--key", "0xnope"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_TRUE(contains(bad.err, "bad System V key \"0xnope\"")) << bad.err;
    KeyGuard key;
    const auto missing = test::run({test::bin_path("msgq_consumer"), "--key", key.text, "--wait", "0"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_TRUE(contains(missing.err, "No such file or directory")) << missing.err;
}

TEST(ExamplesMsgqTest, PosixConsumerReceivesHighestPriorityFirst) {
    NameGuard name;
    const auto producer = test::run({test::bin_path("posixmq_producer"), "--name", name.name});
    ASSERT_EQ(producer.exit_code, 0) << producer.err;
    EXPECT_TRUE(contains(producer.out, "sent 9 records")) << producer.out;
    ASSERT_TRUE(name.exists());
    EXPECT_EQ(PosixQueue::open(name.name).message_count(), 10u);

    const auto consumer = test::run({test::bin_path("posixmq_consumer"), "--name", name.name});
    ASSERT_EQ(consumer.exit_code, 0) << consumer.out << consumer.err;
    EXPECT_TRUE(contains(consumer.out, "priority 3: 3\npriority 2: 3\npriority 1: 3\n")) << consumer.out;
    // Sent lowest priority first; received highest first.
    EXPECT_TRUE(contains(consumer.out, "order: 3x3 2x3 1x3\n")) << consumer.out;
    EXPECT_TRUE(contains(consumer.out, "total: 9 (producer sent 9)")) << consumer.out;
    EXPECT_FALSE(name.exists()) << "the consumer unlinks the queue";
}

TEST(ExamplesMsgqTest, PosixPairRunsAtTheSameTimeThroughAFullQueue) {
    NameGuard name;
    Background consumer({test::bin_path("posixmq_consumer"), "--name", name.name, "--wait", "60"});
    const auto producer = test::run(
        {test::bin_path("posixmq_producer"), "--name", name.name, "--count", "200", "--wait", "60"});
    EXPECT_EQ(producer.exit_code, 0) << producer.err;
    const auto report = consumer.finish();
    ASSERT_EQ(report.exit_code, 0) << report.out << report.err;
    EXPECT_TRUE(contains(report.out, "priority 3: 200\npriority 2: 200\npriority 1: 200\n")) << report.out;
    EXPECT_TRUE(contains(report.out, "total: 600 (producer sent 600)")) << report.out;
    EXPECT_FALSE(name.exists());
}

TEST(ExamplesMsgqTest, PosixBadNameIsReportedQuotingIt) {
    const auto bad = test::run({test::bin_path("posixmq_producer"), "--name", "no-slash"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_TRUE(contains(bad.err, "bad POSIX queue name \"no-slash\"")) << bad.err;
}

}  // namespace
}  // namespace ipckit
