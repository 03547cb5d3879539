// The lecture's pipe programs, run as built (build/bin/) and judged by their output:
// pipe1..pipe4, and fifo_producer / fifo_consumer as two separately exec'd processes.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "../../examples/fifo_record.hpp"
#include "ipckit/fifo.hpp"
#include "ipckit/io.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST(ExamplesPipeTest, Pipe1ReadsBackWhatItWrote) {
    const auto r = test::run({test::bin_path("pipe1")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "Read 123\n");
}

TEST(ExamplesPipeTest, Pipe2ChildReadsWhatTheParentWrote) {
    const auto r = test::run({test::bin_path("pipe2")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "Read 123\n");
}

TEST(ExamplesPipeTest, Pipe3ExecsPipe4WhichReadsThroughTheDescriptorNumber) {
    const auto r = test::run({test::bin_path("pipe3")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "read 123\n");
    EXPECT_EQ(r.err, "");
}

TEST(ExamplesPipeTest, Pipe4ReadsAnyInheritedPipeSuchAsStandardInput) {
    const auto r = test::run({test::bin_path("pipe4"), "0"}, "123");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "read 123\n");
}

TEST(ExamplesPipeTest, Pipe4RejectsAnArgumentThatIsNotADescriptorNumber) {
    const std::string pipe4 = test::bin_path("pipe4");
    for (const std::vector<std::string>& argv :
         std::vector<std::vector<std::string>>{{pipe4},
                                               {pipe4, ""},
                                               {pipe4, "abc"},
                                               {pipe4, "3x"},
                                               {pipe4, "-1"},
                                               {pipe4, " 3"},
                                               {pipe4, "0", "1"},
                                               {pipe4, "99999999999999999999"}}) {
        const auto r = test::run(argv, "123");
        EXPECT_EQ(r.exit_code, 2) << argv.size() << " arguments, last '" << argv.back() << "'";
        EXPECT_TRUE(contains(r.err, "usage: pipe4 FD")) << r.err;
        EXPECT_EQ(r.out, "");
    }
}

TEST(ExamplesPipeTest, Pipe4RejectsADescriptorThatIsNotAPipeReadEnd) {
    const std::string pipe4 = test::bin_path("pipe4");
    const auto closed = test::run({pipe4, "987"});
    EXPECT_EQ(closed.exit_code, 1);
    EXPECT_TRUE(contains(closed.err, "adopt(fd 987): not an open descriptor")) << closed.err;

    const auto write_end = test::run({pipe4, "1"});  // standard output: the write end of a pipe
    EXPECT_EQ(write_end.exit_code, 1);
    EXPECT_TRUE(contains(write_end.err, "the write end of a pipe")) << write_end.err;

    test::TempDir dir;
    const std::string file = dir.file("plain");
    std::ofstream(file) << "123";
    const auto regular = test::run({"/bin/sh", "-c", "exec \"$0\" 5 5<\"$1\"", pipe4, file});
    EXPECT_EQ(regular.exit_code, 1);
    EXPECT_TRUE(contains(regular.err, "adopt(fd 5): a regular file, not a pipe or FIFO")) << regular.err;
}

class ExamplesFifoTest : public ::testing::Test {
protected:
    test::TempDir dir;
    std::string path = dir.file(test::unique_name("demo.fifo"));
};

TEST_F(ExamplesFifoTest, ProducerAndConsumerMoveEveryRecordIntact) {
    test::RunResult consumer;
    std::thread consumer_thread([&] {
        consumer = test::run({test::bin_path("fifo_consumer"), path, "--expect", "20000"}, {}, 120s);
    });
    // The producer starts at once; it waits for the consumer to create and open the FIFO.
    const auto producer = test::run({test::bin_path("fifo_producer"), path, "--count", "20000"}, {}, 120s);
    consumer_thread.join();
    EXPECT_EQ(producer.exit_code, 0) << producer.err;
    EXPECT_EQ(producer.out, "fifo_producer: sent 20000 records\n");
    EXPECT_EQ(consumer.exit_code, 0) << consumer.err;
    EXPECT_EQ(consumer.out, "fifo_consumer: received 20000 records, 0 torn, 0 out of order\n");
    EXPECT_FALSE(fs::exists(fs::symlink_status(path))) << "the consumer removes its FIFO";
}

// The consumer's checks are real: fed a corrupted record, a gap in the sequence and a record
// cut short, it reports each and fails.
TEST_F(ExamplesFifoTest, ConsumerCountsTornAndOutOfOrderRecords) {
    test::RunResult consumer;
    std::thread consumer_thread([&] {
        consumer = test::run({test::bin_path("fifo_consumer"), path}, {}, 60s);
    });
    {
        auto writer = Fifo::open_write(path, Deadline::after(60s));
        ASSERT_TRUE(writer.has_value());
        fifo_record::Bytes record;
        fifo_record::fill(record, 0);
        ASSERT_TRUE(writer->write_all(record).ok());
        fifo_record::fill(record, 1);
        record[100] ^= std::byte{1};  // torn
        ASSERT_TRUE(writer->write_all(record).ok());
        fifo_record::fill(record, 5);  // out of order: 1 was expected
        ASSERT_TRUE(writer->write_all(record).ok());
        fifo_record::fill(record, 6);
        ASSERT_TRUE(writer->write_all(std::span(record).first(10)).ok());  // cut short: torn
    }
    consumer_thread.join();
    EXPECT_EQ(consumer.out, "fifo_consumer: received 4 records, 2 torn, 1 out of order\n");
    EXPECT_EQ(consumer.exit_code, 1);
    EXPECT_FALSE(fs::exists(fs::symlink_status(path)));
}

TEST_F(ExamplesFifoTest, ConsumerRefusesAnExistingPath) {
    std::ofstream(path) << "someone else's";
    const auto r = test::run({test::bin_path("fifo_consumer"), path});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(contains(r.err, "mkfifo(" + path + "): File exists")) << r.err;
    std::ifstream file(path);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(file), {}), "someone else's");
}

TEST_F(ExamplesFifoTest, ProducerWithoutConsumerGivesUpWithAClearMessage) {
    const auto missing = test::run({test::bin_path("fifo_producer"), path, "--wait", "0"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_TRUE(contains(missing.err, "open(" + path + "): No such file or directory")) << missing.err;

    auto fifo = Fifo::create(path);
    const auto no_reader = test::run({test::bin_path("fifo_producer"), path, "--wait", "0"});
    EXPECT_EQ(no_reader.exit_code, 1);
    EXPECT_TRUE(contains(no_reader.err, "no consumer opened " + path)) << no_reader.err;
}

TEST_F(ExamplesFifoTest, BadArgumentsGiveUsage) {
    const auto producer = test::run({test::bin_path("fifo_producer"), path, "--count", "many"});
    EXPECT_EQ(producer.exit_code, 2);
    EXPECT_TRUE(contains(producer.err, "usage: fifo_producer PATH")) << producer.err;
    const auto consumer = test::run({test::bin_path("fifo_consumer")});
    EXPECT_EQ(consumer.exit_code, 2);
    EXPECT_TRUE(contains(consumer.err, "usage: fifo_consumer PATH")) << consumer.err;
    EXPECT_FALSE(fs::exists(fs::symlink_status(path)));
}

}  // namespace
}  // namespace ipckit
