// Test support: real child processes, unique kernel-object names, temporary directories.
//
// Tests in ipckit use real kernel objects in real processes. These helpers keep that
// honest and bounded: every wait for a child has a limit, after which the child is killed
// and the test fails instead of hanging CI.
#pragma once

#include <sys/types.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ipckit::test {

using namespace std::chrono_literals;

// A forked child. Destroying a Child that was not waited for kills and reaps it.
class Child {
public:
    Child() = default;
    explicit Child(pid_t pid) : pid_(pid) {}
    Child(Child&& other) noexcept;
    Child& operator=(Child&& other) noexcept;
    ~Child();

    [[nodiscard]] pid_t pid() const { return pid_; }
    // Exit status (0–255), or -N if killed by signal N. Kills the child and returns -SIGKILL
    // with a test failure if it has not ended within `limit`.
    int wait(std::chrono::milliseconds limit = 60s);
    void kill(int signal);
    // SIGSTOP, and true once the child is stopped (waitpid says so) within `limit`; SIGCONT
    // resumes it. A stopped holder of a region serves nothing and takes nothing over.
    [[nodiscard]] bool stop(std::chrono::milliseconds limit = 10s);

private:
    pid_t pid_ = -1;
};

// Forks; the child runs `body` and exits with its return value (an exception exits 99 after
// printing it to stderr). The child never returns into the test framework.
[[nodiscard]] Child spawn(const std::function<int()>& body);

// Runs `make` in a child, waits until it is done, and leaves the child alive (blocked) until the
// test kills it: the creator of what `make` made is a real process that can then die.
[[nodiscard]] Child spawn_holding(const std::function<void()>& make);
// Kills a child with SIGKILL and reaps it (a test failure if it ended some other way).
void kill_and_reap(Child& child);

struct RunResult {
    int exit_code = -1;  // as Child::wait
    std::string out;
    std::string err;
};

// Runs a program (argv[0] is a path) with `input` on its standard input and collects its
// output. Bounded by `limit`.
[[nodiscard]] RunResult run(const std::vector<std::string>& argv, std::string_view input = {},
                            std::chrono::milliseconds limit = 60s);

// Path of a program built into build/bin/.
[[nodiscard]] std::string bin_path(std::string_view program);

// A name no other test run on this machine uses: "<prefix>-<pid>-<counter>-<random>".
[[nodiscard]] std::string unique_name(std::string_view prefix);

// A private temporary directory, removed with everything in it.
class TempDir {
public:
    TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir();
    [[nodiscard]] const std::filesystem::path& path() const { return path_; }
    [[nodiscard]] std::string file(std::string_view name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

// Points ipckit's registry (see objects.hpp) at a private directory for the whole test program
// and its children, removed at the end, so records written by the tests — including those a
// killed creator never took back — never reach the user's registry. Register once per program:
//     const auto* const registry = ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);
class PrivateRegistry : public ::testing::Environment {
public:
    void SetUp() override;
    void TearDown() override;

private:
    std::string dir_;
};

}  // namespace ipckit::test
