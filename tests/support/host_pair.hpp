// Test support: two "hosts" — network namespaces joined by a veth pair, on link-local addresses —
// for tests that cross machines without a second machine (TCP across hosts, a NATS cluster
// bridged host to host). Needs root and iproute2; when either is missing, ok() is false and
// error() says why, for the test to skip with.
//
// The destructor deletes both namespaces, which deletes the link. A run killed by SIGKILL cannot
// run it: the next run removes what it left (namespaces named after a pid that is gone).
//
// Example:
//     test::HostPair hosts("t", "169.254.77", /*ipv6=*/true);   // A = .1 (fd00:1b5c::1), B = .2
//     if (!hosts.ok()) GTEST_SKIP() << hosts.error();
//     ... in a child: test::enter_namespace(hosts.a()) ...
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ipckit::test {

class HostPair {
public:
    // `label` (one letter) keeps the names of two tests' pairs apart; `ipv4_prefix` is the first
    // three octets of a /30 (A gets .1, B .2); `ipv6` adds fd00:1b5c::1 and ::2 on a /64.
    HostPair(std::string_view label, std::string_view ipv4_prefix, bool ipv6 = false);
    HostPair(const HostPair&) = delete;
    HostPair& operator=(const HostPair&) = delete;
    ~HostPair();

    [[nodiscard]] bool ok() const { return ok_; }
    [[nodiscard]] const std::string& error() const { return error_; }
    [[nodiscard]] const std::string& a() const { return a_; }  // namespace names, for ip -n / setns
    [[nodiscard]] const std::string& b() const { return b_; }

private:
    void remove_leftovers_of_dead_runs();
    bool ip(std::vector<std::string> args);

    std::string ip_, a_, b_, error_;
    bool ok_ = false, created_a_ = false, created_b_ = false;
};

// Moves the calling thread (a forked child) into namespace `name`; false when it cannot.
[[nodiscard]] bool enter_namespace(const std::string& name);

}  // namespace ipckit::test
