// Memfd: anonymous shared memory handed to another process (inherited, and over a Unix
// socket with SCM_RIGHTS), seals that let the receiver trust the size, and their refusals.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "ipckit/error.hpp"
#include "ipckit/memfd.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

void send_descriptor(int socket, int fd) {
    char byte = 'F';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(header), &fd, sizeof fd);
    if (::sendmsg(socket, &message, 0) != 1) throw_errno("sendmsg", "test socket");
}

Fd receive_descriptor(int socket) {
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    if (::recvmsg(socket, &message, MSG_CMSG_CLOEXEC) != 1) throw_errno("recvmsg", "test socket");
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    if (header == nullptr || header->cmsg_type != SCM_RIGHTS) throw_error(std::errc::protocol_error, "no fd");
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(header), sizeof fd);
    return Fd(fd);
}

TEST(MemfdTest, InheritedDescriptorSharesBytesWithAChild) {
    auto memfd = Memfd::create("inherited", 8192);
    EXPECT_EQ(memfd.size(), 8192U);
    EXPECT_EQ(memfd.name(), "memfd:inherited");
    auto mapping = memfd.map(Access::read_write);
    auto child = test::spawn([&] {
        auto own = memfd.map(Access::read_write);
        own.bytes()[8191] = std::byte{8};
        return 0;
    });
    ASSERT_EQ(child.wait(), 0);
    EXPECT_EQ(mapping.bytes()[8191], std::byte{8});
}

TEST(MemfdTest, ReceiverOverAUnixSocketTrustsTheSizeOnlyWhenSealed) {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    Fd parent_end(pair[0]), child_end(pair[1]);
    auto receiver = test::spawn([&] {
        parent_end.reset();
        // First an unsealed memfd: refused. Then a sealed one: accepted and read.
        try {
            (void)Memfd::adopt(receive_descriptor(child_end.get()), Memfd::fixed_size);
            return 1;
        } catch (const Error& e) {
            if (std::string(e.what()).find("missing seal|shrink|grow") == std::string::npos) {
                std::fprintf(stderr, "%s\n", e.what());
                return 2;
            }
        }
        auto frame = Memfd::adopt(receive_descriptor(child_end.get()), Memfd::fixed_size);
        if (frame.size() != 4096) return 3;
        auto view = frame.map(Access::read_only);
        return view.bytes()[0] == std::byte{'h'} ? 0 : 4;
    });
    child_end.reset();
    auto unsealed = Memfd::create("unsealed", 4096);
    send_descriptor(parent_end.get(), unsealed.fd().get());
    auto sealed = Memfd::create("frame", 4096);
    {
        auto writer = sealed.map(Access::read_write);
        writer.bytes()[0] = std::byte{'h'};
    }
    sealed.seal(Memfd::fixed_size);
    EXPECT_EQ(sealed.seals(), Memfd::fixed_size);
    send_descriptor(parent_end.get(), sealed.fd().get());
    EXPECT_EQ(receiver.wait(), 0);
}

TEST(MemfdTest, GrowingASealedMemfdIsRefusedInAnyProcess) {
    auto memfd = Memfd::create("fixed", 4096);
    memfd.seal(F_SEAL_GROW | F_SEAL_SHRINK);
    try {
        memfd.resize(8192);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::operation_not_permitted);
        const std::string what = e.what();
        EXPECT_EQ(what.rfind("ftruncate(memfd:fixed): sealed against resizing (F_SEAL_GROW", 0), 0U) << what;
        EXPECT_NE(what.find("size stays 4096 bytes"), std::string::npos) << what;
    }
    EXPECT_THROW(memfd.resize(100), Error);
    // Another process holding the descriptor cannot cheat with a raw ftruncate either.
    auto child = test::spawn([&] {
        if (::ftruncate(memfd.fd().get(), 1 << 20) == 0) return 1;
        return errno == EPERM ? 0 : 2;
    });
    EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(memfd.size(), 4096U);
}

TEST(MemfdTest, UnsealedMemfdCanBeResized) {
    auto memfd = Memfd::create("growable", 4096);
    memfd.resize(3 * 4096);
    EXPECT_EQ(memfd.size(), 3U * 4096);
    EXPECT_EQ(memfd.map(Access::read_only).size(), 3U * 4096);
}

TEST(MemfdTest, WriteSealNeedsWritableMappingsGoneThenForbidsWriting) {
    auto memfd = Memfd::create("immutable", 4096);
    {
        auto writer = memfd.map(Access::read_write);
        try {
            memfd.seal(F_SEAL_WRITE);
            FAIL() << "no throw";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::device_or_resource_busy);
            EXPECT_NE(std::string(e.what()).find("unmapped first"), std::string::npos) << e.what();
        }
    }
    memfd.seal(F_SEAL_WRITE);
    EXPECT_THROW((void)memfd.map(Access::read_write), Error);
    EXPECT_EQ(memfd.map(Access::read_only).size(), 4096U);
    EXPECT_EQ(::write(memfd.fd().get(), "x", 1), -1);
    EXPECT_EQ(errno, EPERM);
}

TEST(MemfdTest, MemfdCreatedWithoutSealingRefusesSeals) {
    auto memfd = Memfd::create("plain", 4096, false);
    EXPECT_EQ(memfd.seals() & F_SEAL_SEAL, F_SEAL_SEAL);
    try {
        memfd.seal(F_SEAL_GROW);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::operation_not_permitted);
        EXPECT_NE(std::string(e.what()).find("sealed against new seals"), std::string::npos) << e.what();
    }
}

TEST(MemfdTest, AdoptingSomethingThatIsNotAMemfdIsRefused) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    Fd keep_write_end(fds[1]);
    try {
        (void)Memfd::adopt(Fd(fds[0]), Memfd::fixed_size);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not a memfd"), std::string::npos) << e.what();
    }
}

TEST(MemfdTest, DescribeSealsNamesEachSeal) {
    EXPECT_EQ(Memfd::describe_seals(0), "none");
    EXPECT_EQ(Memfd::describe_seals(Memfd::fixed_size), "seal|shrink|grow");
    EXPECT_EQ(Memfd::describe_seals(F_SEAL_WRITE), "write");
}

}  // namespace
}  // namespace ipckit
