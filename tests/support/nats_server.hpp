// Test support for the nats:// tests: a real nats-server (Debian's package) on a loopback port
// (or inside a network namespace), started and stopped by the test, never outliving it.
//
// The child sets PR_SET_PDEATHSIG before it executes the server, so a test program killed by
// anyone takes its servers with it; the destructor kills and reaps. Readiness is the server's
// own "Server is ready" line in its log, which also works inside a namespace the test cannot
// connect into. Between fork and exec the child only makes system calls: the test process may
// already run libnats's threads.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "support/transports.hpp"

namespace ipckit::test {

inline std::string nats_server_path() {
    for (const char* path : {"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"})
        if (::access(path, X_OK) == 0) return path;
    return {};
}

struct NatsServerOptions {
    bool jetstream = false;
    std::string host = "127.0.0.1";
    std::vector<std::string> extra;  // more arguments (--auth, -c FILE, --cluster ...)
    std::string netns;               // run inside /run/netns/NAME
};

inline NatsServerOptions jetstream_server() {
    NatsServerOptions options;
    options.jetstream = true;
    return options;
}
inline NatsServerOptions server_with(std::vector<std::string> extra) {
    NatsServerOptions options;
    options.extra = std::move(extra);
    return options;
}

class NatsServer {
public:
    explicit NatsServer(NatsServerOptions options = {}, std::uint16_t port = 0)
        : options_(std::move(options)), port_(port != 0 ? port : free_tcp_port()) {
        start();
    }
    NatsServer(const NatsServer&) = delete;
    NatsServer& operator=(const NatsServer&) = delete;
    ~NatsServer() { kill(SIGKILL); }

    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] std::string url(std::string_view subject, std::string_view options = {}) const {
        std::string url =
            "nats://" + options_.host + ":" + std::to_string(port_) + "/" + std::string(subject);
        if (!options.empty()) url += "?" + std::string(options);
        return url;
    }
    [[nodiscard]] const std::string& log() const { return log_text_; }

    // Starts the server (again, on the same port and store); waits until it says it is ready.
    void start() {
        ASSERT_LT(pid_, 0) << "already running";
        std::vector<std::string> args{nats_server_path(), "-a", options_.host, "-p", std::to_string(port_)};
        if (options_.jetstream) {
            args.insert(args.end(), {"-js", "-sd", store_.path().string()});
        }
        args.insert(args.end(), options_.extra.begin(), options_.extra.end());
        const std::string log_path = store_.file("server-" + std::to_string(++starts_) + ".log");
        const std::string netns = options_.netns.empty() ? "" : "/run/netns/" + options_.netns;
        std::vector<char*> argv;
        for (auto& arg : args)
            argv.push_back(arg.data());
        argv.push_back(nullptr);
        const pid_t parent = ::getpid();
        std::fflush(nullptr);
        pid_ = ::fork();
        ASSERT_GE(pid_, 0) << "fork";
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(120);  // the parent died before prctl
            if (!netns.empty()) {
                const int ns = ::open(netns.c_str(), O_RDONLY | O_CLOEXEC);
                if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) ::_exit(121);
            }
            const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (log < 0) ::_exit(122);
            ::dup2(log, 1);
            ::dup2(log, 2);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        const auto until = std::chrono::steady_clock::now() + 20s;
        for (;;) {
            std::ifstream in(log_path);
            std::stringstream text;
            text << in.rdbuf();
            log_text_ = text.str();
            if (log_text_.find("Server is ready") != std::string::npos) return;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                FAIL() << "nats-server exited at start: " << log_text_;
            }
            if (std::chrono::steady_clock::now() > until) {
                kill(SIGKILL);
                FAIL() << "nats-server not ready within 20 s: " << log_text_;
            }
            std::this_thread::sleep_for(10ms);
        }
    }

    // Stops it with `signal` and reaps it (SIGKILL after 10 s if it lingers).
    void kill(int signal) {
        if (pid_ < 0) return;
        ::kill(pid_, signal);
        const auto until = std::chrono::steady_clock::now() + 10s;
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) != pid_) {
            if (std::chrono::steady_clock::now() > until) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(5ms);
        }
        pid_ = -1;
    }

private:
    NatsServerOptions options_;
    std::uint16_t port_;
    TempDir store_;  // JetStream's files and the logs
    pid_t pid_ = -1;
    int starts_ = 0;
    std::string log_text_;
};

// Skips the calling test (with the reason) when NATS cannot be exercised here.
#define IPCKIT_REQUIRE_NATS()                                                                         \
    do {                                                                                              \
        if (!::ipckit::nats_available())                                                              \
            GTEST_SKIP() << "built without NATS (libnats-dev was absent when ipckit was configured)"; \
        if (::ipckit::test::nats_server_path().empty())                                               \
            GTEST_SKIP() << "nats-server is not installed (Debian package nats-server)";              \
    } while (0)

}  // namespace ipckit::test
