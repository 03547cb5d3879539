// The socket examples, run as the user would run them: unix_echo_server in the background,
// unix_echo_client feeding it lines, and fd_passing with a file and with a memfd.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

// Starts a program in the background with its stdout and stderr going to `output`.
test::Child start(const std::vector<std::string>& argv, const std::string& output) {
    return test::spawn([&] {
        const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) return 126;
        std::vector<char*> args;
        for (const auto& arg : argv)
            args.push_back(const_cast<char*>(arg.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        return 127;
    });
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

void expect_echo_session(const std::string& address) {
    SCOPED_TRACE(address);
    test::TempDir dir;
    const std::string log = dir.file("server.log");
    auto server = start({test::bin_path("unix_echo_server"), address, "--clients", "2"}, log);
    for (int client = 0; client < 2; ++client) {
        const auto r = test::run({test::bin_path("unix_echo_client"), address, "--wait", "30"},
                                 "first line\nsecond line\n");
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.out, "echo: first line\necho: second line\n");
    }
    EXPECT_EQ(server.wait(), 0);
    const std::string out = read_file(log);
    EXPECT_NE(out.find("listening on " + address), std::string::npos) << out;
    const std::string credentials =
        "uid=" + std::to_string(::getuid()) + " gid=" + std::to_string(::getgid());
    EXPECT_NE(out.find("client 1 connected: pid="), std::string::npos) << out;
    EXPECT_NE(out.find("client 2 connected: pid="), std::string::npos) << out;
    EXPECT_NE(out.find(credentials), std::string::npos) << out;
    EXPECT_NE(out.find("client 2 disconnected"), std::string::npos) << out;
}

TEST(ExamplesSocketTest, EchoServerAndClientAtAPath) {
    test::TempDir dir;
    const std::string path = dir.file("echo.sock");
    expect_echo_session(path);
    EXPECT_FALSE(exists(path)) << "the server left its socket file behind";
}

TEST(ExamplesSocketTest, EchoServerAndClientAtAnAbstractName) {
    expect_echo_session("@" + test::unique_name("ipckit-echo"));
}

TEST(ExamplesSocketTest, EchoServerStopsOnSigtermAndRemovesItsFile) {
    test::TempDir dir;
    const std::string path = dir.file("echo.sock");
    const std::string log = dir.file("server.log");
    auto server = start({test::bin_path("unix_echo_server"), path}, log);
    // The client's retry doubles as "wait until the server is up".
    const auto r = test::run({test::bin_path("unix_echo_client"), path, "--wait", "30"}, "up?\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    server.kill(SIGTERM);
    EXPECT_EQ(server.wait(), 0);
    EXPECT_FALSE(exists(path));
    EXPECT_NE(read_file(log).find("stopping on a signal"), std::string::npos);
}

TEST(ExamplesSocketTest, EchoServerRefusesToReplaceARegularFile) {
    test::TempDir dir;
    const std::string path = dir.file("not-a-socket");
    std::ofstream(path) << "keep me";
    const auto r = test::run({test::bin_path("unix_echo_server"), path, "--clients", "1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("a regular file is at this path, not a socket; it was left untouched"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(read_file(path), "keep me");
}

TEST(ExamplesSocketTest, EchoClientWithoutAServerSaysSo) {
    test::TempDir dir;
    const auto r = test::run({test::bin_path("unix_echo_client"), dir.file("nobody.sock")}, "hello\n");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.err;
    const std::string too_long(200, 'x');
    const auto bad = test::run({test::bin_path("unix_echo_client"), "/tmp/" + too_long});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("at most 107"), std::string::npos) << bad.err;
}

TEST(ExamplesSocketTest, FdPassingReadsAFileThroughTheReceivedDescriptor) {
    test::TempDir dir;
    const std::string path = dir.file("secret.txt");
    std::ofstream(path) << "only the parent opened this file\n";
    const auto r = test::run({test::bin_path("fd_passing"), path});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("received descriptor"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("only the parent opened this file\n"), std::string::npos) << r.out;
}

TEST(ExamplesSocketTest, FdPassingSharesAMemfd) {
    const auto r = test::run({test::bin_path("fd_passing")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("written into a memfd by pid"), std::string::npos) << r.out;
    const auto missing = test::run({test::bin_path("fd_passing"), "/nonexistent/file"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("open(/nonexistent/file): No such file or directory"), std::string::npos)
        << missing.err;
}

}  // namespace
}  // namespace ipckit
