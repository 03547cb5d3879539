// `ipckit top` end to end: the built tool reading live regions of other processes, read-only.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "ipckit/channel.hpp"
#include "rings/record.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;
using test::run;

std::string tool() {
    return test::bin_path("ipckit");
}

// The JSON line of one channel in `top --once --json` (one object per line), or empty.
std::string json_line(const std::string& output, const std::string& address) {
    std::istringstream in(output);
    for (std::string line; std::getline(in, line);)
        if (line.find("\"address\": \"" + address + "\"") != std::string::npos) return line;
    return {};
}

// A number field of that line; -1 when absent or null.
long long field(const std::string& line, const std::string& name) {
    const auto at = line.find("\"" + name + "\": ");
    if (at == std::string::npos) return -1;
    const auto value = line.substr(at + name.size() + 4);
    if (value.starts_with("null")) return -1;
    return std::stoll(value);
}

std::string top_json(const std::string& address) {
    const auto r = run({tool(), "top", "--once", "--json", "--interval", "0.05", "--match", address});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json_line(r.out, address);
}

// A topic whose publisher is this process, and one subscriber in a child that joins, says so
// through a pipe, and stops itself: its cursor stays where it joined.
struct StoppedSubscriber {
    std::string address = "topic:/" + test::unique_name("ipckit-test-top");
    Sender publisher = Sender::create(address + "?capacity=1MiB");
    test::Child child;

    StoppedSubscriber() {
        int ready[2];
        EXPECT_EQ(::pipe(ready), 0);
        child = test::spawn([&] {
            Receiver subscriber = Receiver::open(address, Deadline::after(10s));
            const char byte = 1;
            if (::write(ready[1], &byte, 1) != 1) return 2;
            ::raise(SIGSTOP);
            return 0;
        });
        char byte = 0;
        EXPECT_EQ(::read(ready[0], &byte, 1), 1);
        ::close(ready[0]);
        ::close(ready[1]);
        int status = 0;  // stopped, so nothing it holds moves from here on
        EXPECT_EQ(::waitpid(child.pid(), &status, WUNTRACED), child.pid());
        EXPECT_TRUE(WIFSTOPPED(status));
    }
    ~StoppedSubscriber() { child.kill(SIGKILL); }
    void publish(int count) {
        const std::string message(100, 'm');
        for (int i = 0; i < count; ++i)
            EXPECT_TRUE(publisher.send(as_bytes(message)).ok());
    }
};

TEST(ToolTopTest, OnceJsonSeesAStoppedSubscribersLagGrow) {
    StoppedSubscriber topic;
    topic.publish(10);
    const std::string first = top_json(topic.address);
    ASSERT_FALSE(first.empty()) << "top does not list " << topic.address;
    EXPECT_EQ(field(first, "slowest_lag_messages"), 10) << first;
    EXPECT_EQ(field(first, "subscribers"), 1) << first;
    EXPECT_NE(
        first.find("\"role\": \"publisher\", \"pid\": " + std::to_string(::getpid()) + ", \"alive\": true"),
        std::string::npos)
        << first;
    topic.publish(25);
    const std::string second = top_json(topic.address);
    EXPECT_EQ(field(second, "slowest_lag_messages"), 35) << second;
    EXPECT_GT(field(second, "slowest_lag_bytes"), field(first, "slowest_lag_bytes")) << second;
    EXPECT_EQ(field(second, "messages"), 35) << second;
}

TEST(ToolTopTest, OnceJsonCarriesTheCountersOfALiveChannel) {
    StoppedSubscriber topic;
    topic.publish(10);
    const std::string line = top_json(topic.address);
    ASSERT_FALSE(line.empty()) << "top does not list " << topic.address;
    EXPECT_EQ(field(line, "messages_sent"), 10) << line;
    EXPECT_EQ(field(line, "bytes_sent"), 1000) << line;
    EXPECT_EQ(field(line, "messages_received"), 0) << line;  // the subscriber is stopped
    EXPECT_EQ(field(line, "full_waits"), 0) << line;
    EXPECT_EQ(field(line, "takeovers"), 0) << line;
    // Nothing was sent between top's two snapshots: a rate of zero, not an unknown one.
    EXPECT_NE(line.find("\"messages_per_s\": 0.0"), std::string::npos) << line;
    EXPECT_NE(line.find("\"role\": \"publisher\", \"pid\": " + std::to_string(::getpid()) +
                        ", \"alive\": true, \"messages\": 10, \"bytes\": 1000"),
              std::string::npos)
        << line;
    const auto table = run({tool(), "top", "--once", "--interval", "0.05", "--match", topic.address});
    EXPECT_NE(table.out.find("TAKEN"), std::string::npos) << table.out;
}

TEST(ToolTopTest, ACorruptRegionIsALineSayingSoAndIsLeftAsItWas) {
    StoppedSubscriber topic;
    const std::string path = "/dev/shm" + topic.address.substr(6);
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    constexpr off_t kKindOffset = offsetof(detail::region::ControlLine, kind);
    std::uint32_t kind = 0;
    ASSERT_EQ(::pread(fd, &kind, sizeof kind, kKindOffset), 4);
    const std::uint32_t bad = 77;
    ASSERT_EQ(::pwrite(fd, &bad, sizeof bad, kKindOffset), 4);
    // An unknown kind: the region is shown by its file, shm:/NAME.
    const std::string shown = "shm:" + topic.address.substr(6);
    const std::string line = top_json(shown);
    EXPECT_NE(line.find("\"problem\": \"corrupt: region kind 77"), std::string::npos) << line;
    const auto table = run({tool(), "top", "--once", "--interval", "0.05", "--match", shown});
    EXPECT_NE(table.out.find("corrupt: region kind 77"), std::string::npos) << table.out;
    std::uint32_t after = 0;  // top only read it
    ASSERT_EQ(::pread(fd, &after, sizeof after, kKindOffset), 4);
    EXPECT_EQ(after, bad);
    ASSERT_EQ(::pwrite(fd, &kind, sizeof kind, kKindOffset), 4);
    ::close(fd);
}

// The text exposition format's rules, checked line by line: HELP and TYPE once per family and
// before its samples, families not interleaved, names and labels well formed, label values
// escaped, counters named _total, values numbers.
void check_exposition(const std::string& text) {
    const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+)");
    const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge))");
    const std::regex sample(
        R"(([a-zA-Z_:][a-zA-Z0-9_:]*)\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\} -?[0-9]+(\.[0-9]+)?)");
    std::set<std::string> typed;
    std::string current;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_match(line, m, help)) {
            EXPECT_FALSE(typed.contains(m[1])) << "HELP after the family's TYPE: " << line;
        } else if (std::regex_match(line, m, type)) {
            EXPECT_TRUE(typed.insert(m[1]).second) << "a second TYPE: " << line;
            current = m[1];
            if (m[2] == "counter") {
                EXPECT_TRUE(current.ends_with("_total")) << line;
            }
        } else if (std::regex_match(line, m, sample)) {
            EXPECT_EQ(m[1], current) << "a sample outside its family: " << line;
        } else {
            ADD_FAILURE() << "not the exposition format: \"" << line << "\"";
        }
    }
    EXPECT_TRUE(text.ends_with("\n"));
}

TEST(ToolTopTest, PrometheusOutputFollowsTheExpositionFormat) {
    StoppedSubscriber topic;
    topic.publish(3);
    const auto r = run({tool(), "top", "--prometheus", "--match", topic.address});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    check_exposition(r.out);
    const std::string labels = "{address=\"" + topic.address + "\",kind=\"topic\"}";
    EXPECT_NE(r.out.find("ipckit_topic_messages_total" + labels + " 3\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ipckit_topic_slowest_lag_messages" + labels + " 3\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ipckit_channel_messages_sent_total" + labels + " 3\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ipckit_channel_sent_bytes_total" + labels + " 300\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ipckit_channel_takeovers_total" + labels + " 0\n"), std::string::npos) << r.out;
    // And the whole machine's, whatever else runs on it now.
    const auto all = run({tool(), "top", "--prometheus"});
    check_exposition(all.out);
    // The checker itself must fail on what breaks a rule.
    EXPECT_NONFATAL_FAILURE(check_exposition("# TYPE x_total counter\nx_total{a=\"b\"} 1\ny{a=\"b\"} 2\n"),
                            "outside its family");
    EXPECT_NONFATAL_FAILURE(check_exposition("# TYPE x_total counter\nx_total{a=\"b\"c\"} 1\n"), "not the");
}

TEST(ToolTopTest, InteractiveTopQuitsOnQAndRestoresTheTerminal) {
    StoppedSubscriber topic;
    // script(1) gives top a terminal; `q` arrives once top has drawn (an earlier one would do
    // too: raw mode hands over what was typed), and `stty -a` afterwards shows the modes top
    // left behind.
    const std::string command =
        "'" + tool() + "' top --interval 0.1 --match '" + topic.address + "'; stty -a";
    const auto r =
        run({"/bin/sh", "-c", "(sleep 1; printf q) | script -qfec \"" + command + "\" /dev/null"}, {}, 60s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("ADDRESS"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(topic.address), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" icanon"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" echo"), std::string::npos) << r.out;
}

TEST(ToolTopTest, SigtermEndsInteractiveTopWithTheTerminalRestored) {
    // top runs on the terminal while the shell looks at its modes (raw: -icanon), then stops it.
    test::TempDir dir;
    const std::string shell = dir.file("term.sh");
    {
        std::ofstream out(shell);
        out << "'" << tool() << "' top --interval 0.1 --match nothing </dev/tty >/dev/null & p=$!\n"
            << "sleep 1; stty -a | grep -o ' -*icanon'; kill -TERM $p; wait $p; echo \"rc=$?\"\n"
            << "stty -a | grep -o ' -*icanon'\n";
    }
    const auto r = run({"/usr/bin/script", "-qfec", "sh " + shell, "/dev/null"}, {}, 60s);
    const auto raw = r.out.find(" -icanon");
    const auto exited = r.out.find("rc=0");
    const auto restored = r.out.find(" icanon", exited == std::string::npos ? 0 : exited);
    EXPECT_NE(raw, std::string::npos) << "top did not put the terminal in raw mode: " << r.out;
    EXPECT_NE(exited, std::string::npos) << r.out;
    EXPECT_NE(restored, std::string::npos) << "the terminal stayed raw after SIGTERM: " << r.out;
}

}  // namespace
}  // namespace ipckit
