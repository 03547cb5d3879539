// `ipckit serve` and `ipckit call` end to end: the built tool in separate processes, on a NATS
// subject (a real nats-server) and on a shared-memory service (service:/NAME). Each test runs
// on both; the shared-memory runs are skipped, saying so, while that backend is not built.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/nats.hpp"
#include "ipckit/service.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"
#include "support/text.hpp"

namespace ipckit {
namespace {

[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;
using test::run;

std::string tool() {
    return test::bin_path("ipckit");
}

using test::contains;

// `ipckit ARGS...` in a process group of its own (so a kill reaches the command it runs), its
// stderr into `err`.
test::Child start_tool(std::vector<std::string> args, const std::string& err) {
    args.insert(args.begin(), tool());
    return test::spawn([=] {
        ::setpgid(0, 0);
        const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (e < 0) return 122;
        ::dup2(e, 2);
        std::vector<char*> argv;
        for (const auto& arg : args)
            argv.push_back(const_cast<char*>(arg.c_str()));
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        return 127;
    });
}

class ToolServiceTest : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        if (GetParam() == "nats") {
            IPCKIT_REQUIRE_NATS();
            nats_ = std::make_unique<test::NatsServer>();
            return;
        }
        try {
            (void)Server::create(address());
        } catch (const Error& e) {
            if (e.code() == std::errc::function_not_supported) GTEST_SKIP() << e.what();
            throw;
        }
    }

    // A server killed leaves its region for the next to take over: removed here.
    void TearDown() override {
        if (nats_ == nullptr && !name_.empty() && std::filesystem::exists("/dev/shm/" + name_)) {
            const auto removed = run({tool(), "rm", address()});
            EXPECT_EQ(removed.exit_code, 0) << removed.err;
        }
    }

    // The same service for the whole test.
    std::string address() {
        if (name_.empty()) name_ = test::unique_name("ipckit-serve");
        return nats_ ? nats_->url(name_) : "service:/" + name_;
    }
    bool over_nats() const { return nats_ != nullptr; }

    test::TempDir dir_;

private:
    std::unique_ptr<test::NatsServer> nats_;
    std::string name_;
};

TEST_P(ToolServiceTest, ServeRunsTheCommandPerRequestAndCallPrintsTheReply) {
    auto server = start_tool({"serve", address(), "--", "tr", "a-z", "A-Z"}, dir_.file("serve.err"));
    // A call made before the server is up waits for it.
    const auto hello = run({tool(), "call", address(), "hello", "--timeout", "30"});
    EXPECT_EQ(hello.exit_code, 0) << hello.err;
    EXPECT_EQ(hello.out, "HELLO\n");
    // From stdin: the bytes as they are, no newline added.
    const auto piped = run({tool(), "call", address(), "-", "--timeout", "30"}, "two\nlines");
    EXPECT_EQ(piped.exit_code, 0) << piped.err;
    EXPECT_EQ(piped.out, "TWO\nLINES");
    server.kill(SIGTERM);
    EXPECT_EQ(server.wait(30s), 0);
}

TEST_P(ToolServiceTest, AFailingCommandIsAnErrorReplyWithItsStatusAndStderr) {
    auto server =
        start_tool({"serve", address(), "--", "sh", "-c", "cat >/dev/null; echo 'bad input' >&2; exit 3"},
                   dir_.file("serve.err"));
    const auto r = run({tool(), "call", address(), "anything", "--timeout", "30"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(contains(r.err, "error reply: sh exited with status 3")) << r.err;
    EXPECT_TRUE(contains(r.err, "bad input")) << r.err;
    // The server goes on serving after a failed command.
    const auto again = run({tool(), "call", address(), "more", "--timeout", "30"});
    EXPECT_TRUE(contains(again.err, "exited with status 3")) << again.err;
    server.kill(SIGTERM);
    EXPECT_EQ(server.wait(30s), 0);
}

TEST_P(ToolServiceTest, ACallWithNoServerSaysSoAtItsTimeout) {
    const auto r = run({tool(), "call", address(), "hello", "--timeout", "0.5"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(contains(r.err, "no server answered within 0.5 s")) << r.err;
}

TEST_P(ToolServiceTest, ServeTimeoutEndsAnIdleServer) {
    const auto r = run({tool(), "serve", address(), "--timeout", "0.5", "--", "cat"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(contains(r.err, "no request within 0.5 s")) << r.err;
}

// Twice on the same address: the second server takes over the name the first left behind.
TEST_P(ToolServiceTest, AServerKilledMidCallEndsTheCall) {
    for (int round = 0; round < 2; ++round) {
        const std::string mark = dir_.file("running-" + std::to_string(round));
        auto server = start_tool({"serve", address(), "--", "sh", "-c", "touch " + mark + "; sleep 60"},
                                 dir_.file("serve.err"));
        // NATS cannot tell a client its server died: the call ends at its deadline.
        const std::string timeout = over_nats() ? "3" : "60";
        auto caller = test::spawn([&] {
            const auto r = run({tool(), "call", address(), "x", "--timeout", timeout}, {}, 90s);
            std::fputs(r.err.c_str(), stderr);
            const bool said = over_nats() ? contains(r.err, "no server answered within 3 s")
                                          : contains(r.err, "the server closed during the call");
            return r.exit_code == 1 && said ? 0 : 1;
        });
        for (int i = 0; i < 3000 && !std::filesystem::exists(mark); ++i)
            std::this_thread::sleep_for(10ms);
        ASSERT_TRUE(std::filesystem::exists(mark)) << "the command never ran";
        ::kill(-server.pid(), SIGKILL);
        EXPECT_EQ(server.wait(30s), -SIGKILL);
        EXPECT_EQ(caller.wait(90s), 0);
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, ToolServiceTest, ::testing::Values("nats", "service"),
                         [](const auto& test_case) { return test_case.param; });

}  // namespace
}  // namespace ipckit
