// Recording and replaying with the built tool and no subcommand of its own: `ipckit bridge`
// from a topic into a file: log, and from the log (paced) back into a topic; `ipckit recv` of a
// damaged log prints what came before and then the error.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "channels/record_log.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using test::run;

// The built tool, as the user runs it.
const std::string kIpckit = test::bin_path("ipckit");

TEST(ToolFileTest, BridgeRecordsATopicAndReplaysItPacedIntoAnother) {
    test::TempDir dir;
    const std::string log = dir.file("cam.ipk");
    const std::string recorded = "topic:/" + test::unique_name("ipckit-test-rec");
    const std::string replayed = "topic:/" + test::unique_name("ipckit-test-play");
    std::string lines;
    for (int i = 1; i <= 500; ++i)
        lines += "frame " + std::to_string(i) + "\n";

    // Recording: the bridge subscribes (creating the topic), the publisher comes and goes,
    // and the bridge ends when its source closes.
    auto recorder = test::spawn([&] {
        const auto r =
            run({kIpckit, "bridge", recorded, "file:" + log, "--progress", "0", "--timeout", "20"});
        if (r.exit_code != 0) std::fprintf(stderr, "record: %s\n", r.err.c_str());
        return r.exit_code;
    });
    const auto sent = run({kIpckit, "send", recorded, "--timeout", "20"}, lines);
    ASSERT_EQ(sent.exit_code, 0) << sent.err;
    ASSERT_EQ(recorder.wait(), 0);

    // Replaying at the recorded pace into a second topic, to a subscriber that was there first.
    auto player = test::spawn([&] {
        const auto r = run({kIpckit, "recv", replayed, "--timeout", "20"});
        if (r.out != lines) std::fprintf(stderr, "replayed %zu bytes of %zu\n", r.out.size(), lines.size());
        return r.exit_code == 0 && r.out == lines ? 0 : 1;
    });
    const auto replay = run({kIpckit, "bridge", "file:" + log + "?pace=recorded", replayed, "--progress", "0",
                             "--timeout", "20"});
    EXPECT_EQ(replay.exit_code, 0) << replay.err;
    EXPECT_NE(replay.err.find("500 messages"), std::string::npos) << replay.err;
    EXPECT_EQ(player.wait(), 0);
}

TEST(ToolFileTest, RecvOfADamagedLogPrintsTheRecordsBeforeTheDamageThenWhere) {
    test::TempDir dir;
    const std::string log = dir.file("torn.ipk");
    {
        std::ofstream out(log, std::ios::binary);
        const auto header = detail::encode_log_header();
        out.write(reinterpret_cast<const char*>(header.data()), header.size());
        for (const std::string text : {"one", "two"}) {
            const auto record = detail::encode_log_record_header(3, 1);
            out.write(reinterpret_cast<const char*>(record.data()), record.size());
            out << text;
        }
        const auto torn = detail::encode_log_record_header(50, 2);
        out.write(reinterpret_cast<const char*>(torn.data()), torn.size());
        out << "only part";
    }
    const auto r = run({kIpckit, "recv", "file:" + log});
    EXPECT_EQ(r.out, "one\ntwo\n");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("record 3 at byte 46: the log ends inside a record of 50 bytes"), std::string::npos)
        << r.err;
}

}  // namespace
}  // namespace ipckit
