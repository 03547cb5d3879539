// System V keys: the three ways to name an object, and every malformed spelling.
#include <sys/ipc.h>

#include <gtest/gtest.h>

#include <fstream>

#include "ipckit/error.hpp"
#include "ipckit/sysv_key.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

void expect_invalid(std::string_view text, std::string_view fragment) {
    try {
        (void)SysvKey::parse(text);
        ADD_FAILURE() << "\"" << text << "\" was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
        const std::string what = e.what();
        EXPECT_NE(what.find(std::string("\"") + std::string(text) + "\""), std::string::npos)
            << "the error should quote the input: " << what;
        EXPECT_NE(what.find(fragment), std::string::npos) << what;
    }
}

TEST(SysvKeyTest, ParsesDecimalAndHex) {
    EXPECT_EQ(SysvKey::parse("1234").value(), 1234);
    EXPECT_EQ(SysvKey::parse("0x1234").value(), 0x1234);
    EXPECT_EQ(SysvKey::parse("0X1aB").value(), 0x1ab);
    EXPECT_EQ(SysvKey::parse("0x1234").to_string(), "key 0x1234");
    EXPECT_EQ(SysvKey::parse("4660").to_string(), "key 0x1234");
    EXPECT_FALSE(SysvKey::parse("1").is_private());
}

TEST(SysvKeyTest, AcceptsTheWholeUnsignedRangeAsIpcsShowsIt) {
    const auto key = SysvKey::parse("0xffffffff");
    EXPECT_EQ(key.value(), static_cast<key_t>(-1));
    EXPECT_EQ(key.to_string(), "key 0xffffffff");
    EXPECT_EQ(SysvKey::parse("4294967295"), key);
}

TEST(SysvKeyTest, PrivateIsIpcPrivate) {
    EXPECT_TRUE(SysvKey::parse("private").is_private());
    EXPECT_EQ(SysvKey::parse("private").value(), IPC_PRIVATE);
    EXPECT_EQ(SysvKey::private_key().to_string(), "private key");
}

TEST(SysvKeyTest, FtokMatchesTheKernelsFormulaForNumberAndCharacterProjects) {
    test::TempDir dir;
    const auto path = dir.file("anchor");
    std::ofstream(path) << "x";
    EXPECT_EQ(SysvKey::parse(path + "#65").value(), ::ftok(path.c_str(), 65));
    EXPECT_EQ(SysvKey::parse(path + "#A").value(), ::ftok(path.c_str(), 'A'));
    EXPECT_EQ(SysvKey::parse(path + "#255").value(), ::ftok(path.c_str(), 255));
    EXPECT_NE(SysvKey::parse(path + "#1"), SysvKey::parse(path + "#2"));
    const auto text = SysvKey::parse(path + "#A").to_string();
    EXPECT_NE(text.find("(" + path + "#A)"), std::string::npos) << text;
    EXPECT_EQ(SysvKey::from_file(path, 'A'), SysvKey::parse(path + "#A"));
}

TEST(SysvKeyTest, APathMayContainAHash) {
    test::TempDir dir;
    const auto path = dir.file("a#b");
    std::ofstream(path) << "x";
    EXPECT_EQ(SysvKey::parse(path + "#3").value(), ::ftok(path.c_str(), 3));
}

TEST(SysvKeyTest, FtokOfAMissingFileNamesIt) {
    test::TempDir dir;
    const auto path = dir.file("missing");
    try {
        (void)SysvKey::parse(path + "#1");
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
        EXPECT_EQ(e.call(), "ftok");
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

TEST(SysvKeyTest, RejectsMalformedTextQuotingIt) {
    expect_invalid("", "expected");
    expect_invalid("abc", "expected");
    expect_invalid("12ab", "expected");
    expect_invalid("-5", "expected");
    expect_invalid("0x", "expected");
    expect_invalid("0xZZ", "expected");
    expect_invalid(" 12", "expected");
    expect_invalid("0", "IPC_PRIVATE");
    expect_invalid("0x0", "IPC_PRIVATE");
    expect_invalid("0x100000000", "32 bits");
    expect_invalid("99999999999999999999999", "expected");
    expect_invalid("#1", "path");
    expect_invalid("/tmp#", "PROJ");
    expect_invalid("/tmp#0", "PROJ");
    expect_invalid("/tmp#256", "PROJ");
    expect_invalid("/tmp#AB", "PROJ");
}

TEST(SysvKeyTest, ExplicitZeroIsRefused) {
    EXPECT_THROW((void)SysvKey::explicit_key(0), Error);
    EXPECT_THROW((void)SysvKey::from_file("/", 0), Error);
    EXPECT_EQ(SysvKey::explicit_key(7).value(), 7);
}

}  // namespace
}  // namespace ipckit
