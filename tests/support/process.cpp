#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <thread>

#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/io.hpp"

namespace ipckit::test {

Child::Child(Child&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}

Child& Child::operator=(Child&& other) noexcept {
    if (this != &other) {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        pid_ = std::exchange(other.pid_, -1);
    }
    return *this;
}

Child::~Child() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
}

void Child::kill(int signal) {
    if (pid_ > 0) ::kill(pid_, signal);
}

bool Child::stop(std::chrono::milliseconds limit) {
    if (pid_ <= 0 || ::kill(pid_, SIGSTOP) != 0) return false;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        const pid_t r = ::waitpid(pid_, &status, WUNTRACED | WNOHANG);
        if (r == pid_) return WIFSTOPPED(status);
        if (r < 0) return false;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}

int Child::wait(std::chrono::milliseconds limit) {
    if (pid_ <= 0) return -1;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    for (auto pause = 100us;; pause = std::min<std::chrono::microseconds>(pause * 2, 20ms)) {
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) break;
        if (r < 0 && errno != EINTR) {
            ADD_FAILURE() << "waitpid(" << pid_ << ") failed";
            pid_ = -1;
            return -1;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ADD_FAILURE() << "child " << pid_ << " did not end within " << limit.count() << " ms; killed";
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            pid_ = -1;
            return -SIGKILL;
        }
        std::this_thread::sleep_for(pause);
    }
    pid_ = -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return -1;
}

Child spawn(const std::function<int()>& body) {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        ADD_FAILURE() << "fork failed";
        return Child();
    }
    if (pid > 0) return Child(pid);
    int code = 99;
    try {
        code = body();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", ::getpid(), e.what());
    } catch (...) {
        std::fprintf(stderr, "child %d: unknown exception\n", ::getpid());
    }
    std::fflush(nullptr);
    ::_exit(code);
}

Child spawn_holding(const std::function<void()>& make) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2", "ready pipe");
    Fd read_end(fds[0]), write_end(fds[1]);
    auto child = spawn([&] {
        read_end.reset();
        make();
        if (!write_all(write_end.get(), as_bytes("r"), Deadline::never(), "ready pipe").ok()) return 1;
        for (;;)
            ::pause();
    });
    write_end.reset();
    std::array<std::byte, 1> ready{};
    EXPECT_EQ(read_exact(read_end.get(), ready, Deadline::after(30s), "ready pipe").status, Status::ok)
        << "the child failed before it was ready";
    return child;
}

void kill_and_reap(Child& child) {
    child.kill(SIGKILL);
    EXPECT_EQ(child.wait(), -SIGKILL);
}

RunResult run(const std::vector<std::string>& argv, std::string_view input, std::chrono::milliseconds limit) {
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "pipe2 failed";
        return {};
    }
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        std::fprintf(stderr, "exec %s failed\n", args[0]);
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    Child child(pid);
    // Feed the input and drain both outputs together, so no pipe fills up and stalls the child.
    RunResult result;
    std::size_t fed = 0;
    if (input.empty()) {
        ::close(in[1]);
        in[1] = -1;
    } else {
        ::fcntl(in[1], F_SETFL, O_NONBLOCK);
    }
    const auto deadline = std::chrono::steady_clock::now() + limit;
    bool out_open = true, err_open = true;
    ::signal(SIGPIPE, SIG_IGN);  // the child may exit without reading all its input
    while (out_open || err_open) {
        pollfd fds[3] = {
            {out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}, {in[1], POLLOUT, 0}};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ADD_FAILURE() << argv[0] << " did not finish within " << limit.count() << " ms";
            break;
        }
        if (::poll(fds, 3, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
        char buf[4096];
        for (int i = 0; i < 2; ++i) {
            if (fds[i].revents == 0) continue;
            const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                (i == 0 ? out_open : err_open) = false;
            } else {
                (i == 0 ? result.out : result.err).append(buf, static_cast<std::size_t>(n));
            }
        }
        if (in[1] >= 0 && fds[2].revents != 0) {
            const ssize_t n = ::write(in[1], input.data() + fed, input.size() - fed);
            if (n > 0) fed += static_cast<std::size_t>(n);
            if (n < 0 || fed == input.size()) {
                ::close(in[1]);
                in[1] = -1;
            }
        }
    }
    if (in[1] >= 0) ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    result.exit_code = child.wait(std::max(left, std::chrono::milliseconds(1)));
    return result;
}

std::string bin_path(std::string_view program) {
    return std::string(IPCKIT_BIN_DIR) + "/" + std::string(program);
}

std::string unique_name(std::string_view prefix) {
    static std::atomic<unsigned> counter{0};
    static const unsigned salt = std::random_device{}();
    return std::string(prefix) + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
           std::to_string(salt % 100000);
}

TempDir::TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ipckit-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

void PrivateRegistry::SetUp() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ipckit-registry-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    ::setenv("IPCKIT_REGISTRY_DIR", dir_.c_str(), 1);
}

void PrivateRegistry::TearDown() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

}  // namespace ipckit::test
