#include "support/host_pair.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "ipckit/fd.hpp"
#include "support/process.hpp"

namespace ipckit::test {
namespace {

std::string find_ip() {
    for (const char* path : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
        if (::access(path, X_OK) == 0) return path;
    return {};
}

}  // namespace

HostPair::HostPair(std::string_view label, std::string_view ipv4_prefix, bool ipv6) : ip_(find_ip()) {
    if (ip_.empty()) {
        error_ = "iproute2 (ip) is not installed";
        return;
    }
    remove_leftovers_of_dead_runs();
    const std::string tag = std::to_string(::getpid());
    a_ = "ipckit-" + tag + "-" + std::string(label) + "a";
    b_ = "ipckit-" + tag + "-" + std::string(label) + "b";
    const std::string veth_a = "ip" + std::string(label) + tag + "a";  // <= 15 bytes
    const std::string veth_b = "ip" + std::string(label) + tag + "b";
    const std::string prefix(ipv4_prefix);
    if (!ip({"netns", "add", a_})) return;
    created_a_ = true;
    if (!ip({"netns", "add", b_})) return;
    created_b_ = true;
    ok_ = ip({"link", "add", veth_a, "netns", a_, "type", "veth", "peer", "name", veth_b, "netns", b_}) &&
          ip({"-n", a_, "link", "set", "lo", "up"}) && ip({"-n", b_, "link", "set", "lo", "up"}) &&
          ip({"-n", a_, "addr", "add", prefix + ".1/30", "dev", veth_a}) &&
          ip({"-n", b_, "addr", "add", prefix + ".2/30", "dev", veth_b}) &&
          (!ipv6 || (ip({"-n", a_, "addr", "add", "fd00:1b5c::1/64", "dev", veth_a, "nodad"}) &&
                     ip({"-n", b_, "addr", "add", "fd00:1b5c::2/64", "dev", veth_b, "nodad"}))) &&
          ip({"-n", a_, "link", "set", veth_a, "up"}) && ip({"-n", b_, "link", "set", veth_b, "up"});
}

HostPair::~HostPair() {
    if (created_a_) (void)ip({"netns", "del", a_});
    if (created_b_) (void)ip({"netns", "del", b_});
}

void HostPair::remove_leftovers_of_dead_runs() {
    std::error_code ignored;
    for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ignored)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("ipckit-", 0) != 0) continue;
        const long pid = std::strtol(name.c_str() + 7, nullptr, 10);
        if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
            (void)ip({"netns", "del", name});
    }
}

bool HostPair::ip(std::vector<std::string> args) {
    args.insert(args.begin(), ip_);
    const auto r = run(args, {}, std::chrono::seconds(30));
    if (r.exit_code != 0 && error_.empty()) error_ = args[1] + " " + args[2] + ": " + r.err;
    return r.exit_code == 0;
}

bool enter_namespace(const std::string& name) {
    Fd ns(::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC));
    return ns && ::setns(ns.get(), CLONE_NEWNET) == 0;
}

}  // namespace ipckit::test
