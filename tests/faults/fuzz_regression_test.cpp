// Replays every checked-in fuzz input — the seeds (fuzz/corpus/<target>/) and each input that once
// crashed a target (fuzz/regressions/<target>/) — through the same entry functions libFuzzer
// calls, in the normal test build. So a crash found once stays a test, also under the asan
// preset, on machines without clang.
//
// The entry functions are compiled in by including their sources: tests/CMakeLists.txt builds
// each tests/*_test.cpp alone against the library, and the fuzz targets live in fuzz/ (their
// libFuzzer programs are only built with clang). Including the .cpp files keeps one copy of
// each target without a build rule of its own.
#include "../../fuzz/address_target.cpp"
#include "../../fuzz/frame_target.cpp"
#include "../../fuzz/lanes_target.cpp"
#include "../../fuzz/log_target.cpp"
#include "../../fuzz/ring_target.cpp"
#include "../../fuzz/service_target.cpp"
#include "../../fuzz/shrink_target.cpp"
#include "../../fuzz/topic_target.cpp"
// The files above make one translation unit; each keeps its helpers in a namespace of its own
// (address_input, frame_input, ring_input, topic_input, lanes_input, service_input, shrink_input, log_input).

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace ipckit::fuzz {
namespace {

namespace fs = std::filesystem;

using Target = int (*)(const std::uint8_t*, std::size_t);

std::vector<fs::path> inputs(const std::string& target) {
    std::vector<fs::path> files;
    for (const char* kind : {"corpus", "regressions"}) {
        const fs::path folder = fs::path(IPCKIT_SOURCE_DIR) / "fuzz" / kind / target;
        if (!fs::is_directory(folder)) continue;
        for (const auto& entry : fs::directory_iterator(folder)) {
            if (entry.is_regular_file()) files.push_back(entry.path());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::vector<std::uint8_t> contents(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Each input runs in its own child process: a crash (or a sanitizer abort, or a broken invariant)
// fails the test naming the file, and the other inputs still run.
void replay(const std::string& target, Target entry, std::size_t at_least) {
    const auto files = inputs(target);
    ASSERT_GE(files.size(), at_least) << "the seed corpus fuzz/corpus/" << target << " is missing";
    for (const auto& file : files) {
        const auto bytes = contents(file);
        test::Child child = test::spawn([&] { return entry(bytes.data(), bytes.size()); });
        EXPECT_EQ(child.wait(), 0) << target << " target fails on " << file.string()
                                   << " (replay it: build-fuzz/bin/" << target << "_fuzz " << file.string()
                                   << ")";
    }
}

TEST(FuzzRegressionTest, EveryAddressInputParsesOrGivesInvalidArgument) {
    replay("address", fuzz_address, 20);
}

TEST(FuzzRegressionTest, EveryStreamDecodesLikeTheReferenceOrGivesAnError) {
    replay("frame", fuzz_frame, 10);
}

TEST(FuzzRegressionTest, EveryRingProgramStaysInsideTheRegion) {
    replay("ring", fuzz_ring, 10);
}

TEST(FuzzRegressionTest, EveryTopicProgramStaysInsideTheRegion) {
    replay("topic", fuzz_topic, 8);
}

TEST(FuzzRegressionTest, EveryLanesProgramStaysInsideTheRegion) {
    replay("lanes", fuzz_lanes, 4);
}

TEST(FuzzRegressionTest, EveryServiceProgramStaysInsideTheRegion) {
    replay("service", fuzz_service, 4);
}

TEST(FuzzRegressionTest, EveryShrinkingRingProgramEndsInAnErrorNeverSigbus) {
    replay("shrink", fuzz_shrink, 5);
}

TEST(FuzzRegressionTest, EveryLogReadsLikeTheReferenceOrGivesAnErrorSayingWhere) {
    replay("log", fuzz_log, 6);
}

// The targets themselves must be able to fail: a broken invariant ends the process.
TEST(FuzzRegressionTest, ABrokenInvariantEndsTheProcess) {
    test::Child child = test::spawn([]() -> int {
        ::close(STDERR_FILENO);  // the message is expected; keep the test output clean
        fuzz_fail("self-test", "deliberately");
    });
    EXPECT_EQ(child.wait(), -SIGABRT);
}

}  // namespace
}  // namespace ipckit::fuzz
