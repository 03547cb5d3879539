// Other users stay out: a child that drops to `nobody` (uid 65534) tries to open every
// transport's objects that this test created, as sender and as receiver. Each attempt must be
// refused with an Error naming the object, and afterwards the objects carry messages between
// their rightful owners as before, with nothing injected or taken.
//
// Not covered, by design: tcp (a port has no owner; use a firewall or a Unix socket) and an
// abstract unix+dgram name (a datagram has no connection to check; use a path, whose 0600
// file mode keeps others out, as the unix_dgram case here does).
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "support/process.hpp"
#include "support/transports.hpp"

namespace ipckit {
namespace {

[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

class FaultsUsersTest : public ::testing::TestWithParam<test::TransportCase> {};

// The name an error must quote: the address's target (path, /NAME, @NAME or key).
std::string object_of(const std::string& address) {
    const auto colon = address.find(':');
    return address.substr(colon + 1, address.find('?') - colon - 1);  // options are not the object's name
}

TEST_P(FaultsUsersTest, AnotherUserIsRefusedWithAnErrorNamingTheObjectAndChangesNothing) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root, to setuid a child to nobody (uid 65534)";
    if (GetParam().name == "tcp") GTEST_SKIP() << "a TCP port has no owner to check (see the file's comment)";
    test::TempDir dir;
    // The directory itself lets others through, so what refuses them is the object's own mode.
    ::chmod(dir.path().c_str(), 0755);
    const std::string address = GetParam().address(dir);
    Receiver receiver = Receiver::create(address);

    auto intruder = test::spawn([&] {
        if (::setgroups(0, nullptr) != 0 || ::setgid(kNogroup) != 0 || ::setuid(kNobody) != 0) return 90;
        const std::string object = object_of(address);
        int refused = 0;
        for (int attempt = 0; attempt < 2; ++attempt) {
            try {
                if (attempt == 0) {
                    Sender sender = Sender::open(address, Deadline::after(300ms));
                    (void)sender.try_send(as_bytes("intruder"));
                } else {
                    Receiver other = Receiver::open(address, Deadline::after(300ms));
                    std::vector<std::byte> message;
                    (void)other.try_recv(message);
                }
                std::fprintf(stderr, "%s: uid %d was let in (%s)\n", address.c_str(), kNobody,
                             attempt == 0 ? "sender" : "receiver");
            } catch (const Error& e) {
                if (std::string(e.what()).find(object) == std::string::npos) {
                    std::fprintf(stderr, "%s: refused without naming it: %s\n", address.c_str(), e.what());
                } else {
                    ++refused;
                }
            }
        }
        return refused == 2 ? 0 : 1;
    });
    EXPECT_EQ(intruder.wait(30s), 0) << address;

    // Nothing was injected...
    std::vector<std::byte> message;
    if (!GetParam().connectionless) {
        EXPECT_EQ(receiver.recv(message, Deadline::after(100ms)).status, Status::timed_out) << address;
    }
    // ...and the rightful pair still talks.
    auto sender = test::spawn([&] {
        Sender tx = Sender::open(address, Deadline::after(10s));
        return tx.send(as_bytes("owner"), Deadline::after(10s)).ok() ? 0 : 1;
    });
    ASSERT_EQ(receiver.recv(message, Deadline::after(10s)).status, Status::ok) << address;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(message.data()), message.size()), "owner");
    EXPECT_EQ(sender.wait(30s), 0);
}

INSTANTIATE_TEST_SUITE_P(Transports, FaultsUsersTest, ::testing::ValuesIn(test::all_transports()),
                         [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace ipckit
