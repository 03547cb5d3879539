// The lecture's shared-memory programs, run as a user would: shm_race (no synchronisation)
// must report a well-formed, self-consistent count; shm_sync must deliver every item once.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "support/process.hpp"

namespace ipckit {
namespace {

struct Report {
    std::uint64_t produced = 0, consumed = 0, lost = 0, duplicated = 0, torn = 0;
};

// Parses "NAME: produced P, consumed C, lost L, duplicated D, torn T[ — verdict]".
bool parse_report(const std::string& program, const std::string& out, Report& report, std::string& verdict) {
    const std::string first = out.substr(0, out.find('\n'));
    const std::string format =
        program + ": produced %llu, consumed %llu, lost %llu, duplicated %llu, torn %llu%n";
    unsigned long long fields[5] = {};
    int end = -1;
    if (std::sscanf(first.c_str(), format.c_str(), &fields[0], &fields[1], &fields[2], &fields[3], &fields[4],
                    &end) != 5 ||
        end < 0)
        return false;
    verdict = first.substr(static_cast<std::size_t>(end));
    if (!verdict.empty() && verdict.rfind(" \u2014 ", 0) != 0) return false;
    report = {fields[0], fields[1], fields[2], fields[3], fields[4]};
    return true;
}

TEST(ExamplesShmTest, RaceReportIsWellFormedAndConsistent) {
    const auto result = test::run({test::bin_path("shm_race"), "--count", "100000"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    Report r;
    std::string verdict;
    ASSERT_TRUE(parse_report("shm_race", result.out, r, verdict)) << result.out;
    EXPECT_EQ(r.produced, 100000U);
    // Every item is read some number of times, zero (lost) or more (duplicated beyond once).
    EXPECT_EQ(r.consumed, r.produced - r.lost + r.duplicated);
    EXPECT_LE(r.lost, r.produced);
    if (r.lost + r.duplicated + r.torn > 0) {
        EXPECT_NE(verdict.find("without synchronisation items are lost"), std::string::npos) << verdict;
        EXPECT_NE(result.out.find("shm_sync"), std::string::npos) << result.out;
    } else {
        EXPECT_NE(verdict.find("no race showed this run"), std::string::npos) << verdict;
    }
}

TEST(ExamplesShmTest, SynchronisedRunDeliversEveryItemOnceInOrder) {
    for (const char* slots : {"64", "1"}) {
        const auto result = test::run({test::bin_path("shm_sync"), "--count", "50000", "--slots", slots});
        ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
        EXPECT_EQ(result.out, "shm_sync: produced 50000, consumed 50000, lost 0, duplicated 0, torn 0\n");
        EXPECT_EQ(result.err, "");
    }
}

TEST(ExamplesShmTest, BadArgumentsAreRefusedWithUsage) {
    for (const auto& program : {"shm_race", "shm_sync"}) {
        const auto result = test::run({test::bin_path(program), "--count", "many"});
        EXPECT_EQ(result.exit_code, 2);
        EXPECT_NE(result.err.find("--count needs a positive whole number, got 'many'"), std::string::npos)
            << result.err;
        const auto unknown = test::run({test::bin_path(program), "--fast"});
        EXPECT_EQ(unknown.exit_code, 2);
        EXPECT_NE(unknown.err.find("usage:"), std::string::npos) << unknown.err;
    }
    // shm_race has a single mailbox, so no --slots.
    EXPECT_EQ(test::run({test::bin_path("shm_race"), "--slots", "4"}).exit_code, 2);
}

}  // namespace
}  // namespace ipckit
