// Core: the error type, the owning descriptor and the I/O helpers, on real pipes and sockets.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/io.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

struct RawPipe {
    Fd read_end, write_end;
    RawPipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2", "test pipe");
        read_end.reset(fds[0]);
        write_end.reset(fds[1]);
    }
};

TEST(ErrorTest, MessageNamesTheCallAndTheObject) {
    const Error e(std::make_error_code(std::errc::file_exists), "mkfifo", "/tmp/x");
    EXPECT_STREQ(e.what(), "mkfifo(/tmp/x): File exists");
    EXPECT_EQ(e.call(), "mkfifo");
    EXPECT_EQ(e.object(), "/tmp/x");
    EXPECT_EQ(e.code(), std::errc::file_exists);
}

TEST(ErrorTest, ThrowErrnoUsesTheGivenErrno) {
    try {
        throw_errno("msgget", "key 0x1234", EACCES);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "msgget(key 0x1234): Permission denied");
        EXPECT_EQ(e.code(), std::errc::permission_denied);
    }
}

TEST(FdTest, ClosesOnDestructionAndMoves) {
    int raw = -1;
    {
        RawPipe p;
        raw = p.read_end.get();
        Fd moved = std::move(p.read_end);
        EXPECT_FALSE(p.read_end.valid());
        EXPECT_EQ(moved.get(), raw);
        EXPECT_NE(::fcntl(raw, F_GETFD), -1);
    }
    EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
    EXPECT_EQ(errno, EBADF);
}

TEST(FdTest, FlagsCanBeSetAndRead) {
    RawPipe p;
    EXPECT_FALSE(p.read_end.inheritable());
    p.read_end.set_inheritable(true);
    EXPECT_TRUE(p.read_end.inheritable());
    EXPECT_FALSE(p.read_end.nonblocking());
    p.read_end.set_nonblocking(true);
    EXPECT_TRUE(p.read_end.nonblocking());
    Fd copy = p.read_end.duplicate();
    EXPECT_NE(copy.get(), p.read_end.get());
    EXPECT_FALSE(copy.inheritable());
}

TEST(FdTest, FcntlOnAClosedDescriptorNamesIt) {
    Fd bogus(987654);
    try {
        bogus.set_nonblocking(true);
        FAIL() << "no throw";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "fcntl(fd 987654): Bad file descriptor");
    }
    (void)bogus.release();
}

// SIGPIPE's default action kills; the child restores it (the test harness may ignore it) so a
// raised signal would show as death by SIGPIPE instead of exit code 0.
TEST(IoTest, WriteToAPipeWithNoReaderIsClosedNotSigpipe) {
    auto child = test::spawn([] {
        ::signal(SIGPIPE, SIG_DFL);
        RawPipe p;
        p.read_end.reset();
        const auto r = write_all(p.write_end.get(), as_bytes("hello"), Deadline::never(), "test pipe");
        if (r.status != Status::closed) return 1;
        // SIGPIPE was neither delivered (we are alive) nor left pending.
        sigset_t pending;
        sigpending(&pending);
        return sigismember(&pending, SIGPIPE) == 0 ? 0 : 2;
    });
    EXPECT_EQ(child.wait(), 0) << "-13 would mean the process died of SIGPIPE";
}

TEST(IoTest, WriteToAClosedSocketIsClosedNotSigpipe) {
    auto child = test::spawn([] {
        ::signal(SIGPIPE, SIG_DFL);
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 1;
        Fd a(sv[0]);
        Fd b(sv[1]);
        b.reset();
        const auto r = write_all(a.get(), as_bytes("hello"), Deadline::never(), "socketpair");
        return r.status == Status::closed ? 0 : 2;
    });
    EXPECT_EQ(child.wait(), 0) << "-13 would mean the process died of SIGPIPE";
}

TEST(IoTest, ReadExactReassemblesShortWritesFromAnotherProcess) {
    RawPipe p;
    auto child = test::spawn([&] {
        p.read_end.reset();
        for (char c : std::string("abcdefgh")) {
            if (!write_all(p.write_end.get(), as_bytes(std::string(1, c)), Deadline::never(), "pipe").ok())
                return 1;
            std::this_thread::sleep_for(1ms);
        }
        return 0;
    });
    p.write_end.reset();
    std::array<std::byte, 8> buf{};
    const auto r = read_exact(p.read_end.get(), buf, Deadline::after(10s), "pipe");
    EXPECT_EQ(r.status, Status::ok);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), buf.size()), "abcdefgh");
    EXPECT_EQ(child.wait(), 0);
    // The writer is gone: a clean end of stream is closed with zero bytes.
    const auto end = read_exact(p.read_end.get(), buf, Deadline::after(10s), "pipe");
    EXPECT_EQ(end.status, Status::closed);
    EXPECT_EQ(end.bytes, 0u);
}

TEST(IoTest, GatherWriteSendsEveryPartInOrderFewOrMany) {
    // Up to 8 parts go from the stack, more from the heap: both paths, empty parts skipped.
    for (const std::size_t count : {3u, 8u, 9u, 40u}) {
        RawPipe p;
        std::vector<std::string> texts;
        std::vector<std::span<const std::byte>> parts;
        std::string expected;
        for (std::size_t i = 0; i < count; ++i)
            texts.push_back(i % 4 == 3 ? std::string() : std::to_string(i) + ",");
        for (const auto& text : texts) {
            parts.push_back(as_bytes(text));
            expected += text;
        }
        const auto w = write_all(p.write_end.get(), parts, Deadline::after(10s), "test pipe");
        ASSERT_EQ(w.status, Status::ok) << count;
        ASSERT_EQ(w.bytes, expected.size()) << count;
        std::string got(expected.size(), '\0');
        ASSERT_TRUE(read_exact(p.read_end.get(), std::as_writable_bytes(std::span(got)), Deadline::after(10s),
                               "test pipe")
                        .ok());
        EXPECT_EQ(got, expected) << count;
    }
}

TEST(IoTest, EndOfFileMidRecordReportsTheBytesRead) {
    RawPipe p;
    ASSERT_TRUE(write_all(p.write_end.get(), as_bytes("abc"), Deadline::never(), "pipe").ok());
    p.write_end.reset();
    std::array<std::byte, 8> buf{};
    const auto r = read_exact(p.read_end.get(), buf, Deadline::never(), "pipe");
    EXPECT_EQ(r.status, Status::closed);
    EXPECT_EQ(r.bytes, 3u);
}

TEST(IoTest, TimedReadWithNoDataTimesOut) {
    RawPipe p;
    std::array<std::byte, 4> buf{};
    const auto r = read_some(p.read_end.get(), buf, Deadline::after(20ms), "pipe");
    EXPECT_EQ(r.status, Status::timed_out);
}

TEST(IoTest, ImmediateReadWithNoDataWouldBlock) {
    RawPipe p;
    std::array<std::byte, 4> buf{};
    EXPECT_EQ(read_some(p.read_end.get(), buf, Deadline::immediate(), "pipe").status, Status::would_block);
}

TEST(IoTest, ImmediateWriteToAFullPipeWouldBlock) {
    RawPipe p;
    p.write_end.set_nonblocking(true);
    std::vector<std::byte> chunk(4096);
    while (write_all(p.write_end.get(), chunk, Deadline::immediate(), "pipe").status == Status::ok) {
    }
    EXPECT_EQ(write_all(p.write_end.get(), chunk, Deadline::immediate(), "pipe").status, Status::would_block);
}

TEST(DeadlineTest, NeverAndImmediateAreDistinct) {
    EXPECT_TRUE(Deadline::never().is_never());
    EXPECT_FALSE(Deadline::never().expired());
    EXPECT_EQ(Deadline::never().poll_timeout_ms(), -1);
    EXPECT_TRUE(Deadline::immediate().expired());
    EXPECT_EQ(Deadline::immediate().poll_timeout_ms(), 0);
    EXPECT_FALSE(Deadline::after(1h).expired());
    EXPECT_GT(Deadline::after(1h).poll_timeout_ms(), 3'000'000);
}

}  // namespace
}  // namespace ipckit
