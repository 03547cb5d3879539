// FIFOs: exclusive 0600 creation, refusal of what is not a FIFO (never following a link), the
// lecture's blocking and non-blocking opens between real processes, opens with a timeout,
// and the owner's unlink.
#include "ipckit/fifo.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

template <class Body>
Error error_from(Body&& body) {
    try {
        body();
    } catch (const Error& e) {
        return e;
    }
    ADD_FAILURE() << "no ipckit::Error was thrown";
    return Error(std::error_code(), "nothing thrown");
}

bool mentions(const Error& e, const std::string& text) {
    return std::string(e.what()).find(text) != std::string::npos;
}

std::string text_of(std::span<const std::byte> bytes) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::string read_file(const std::string& path) {
    std::ifstream file(path);
    return std::string(std::istreambuf_iterator<char>(file), {});
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
}

bool is_fifo(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

// Waits (bounded) until `pid` sleeps inside the system call `number` (SYS_openat: blocked
// in the open under test); /proc/PID/syscall shows the call a sleeping process is in.
bool sleeping_in(pid_t pid, long number) {
    const auto limit = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < limit) {
        std::ifstream file("/proc/" + std::to_string(pid) + "/syscall");
        long current = -1;
        if (file >> current && current == number) return true;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}

class FifoTest : public ::testing::Test {
protected:
    test::TempDir dir;
    std::string path = dir.file(test::unique_name("fifo"));
};

TEST_F(FifoTest, CreateMakesAFifoWithMode0600) {
    auto fifo = Fifo::create(path);
    struct stat st {};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(fifo.path(), path);
    EXPECT_TRUE(fifo.owns());
}

TEST_F(FifoTest, CreateSetsTheExactModeWhateverTheUmask) {
    const mode_t old_umask = ::umask(077);
    auto fifo = Fifo::create(path, 0640);
    ::umask(old_umask);
    struct stat st {};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST_F(FifoTest, CreateRefusesAModeBeyondThePermissionBits) {
    const Error e = error_from([&] { (void)Fifo::create(path, 04600); });
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
    EXPECT_TRUE(mentions(e, path)) << e.what();
    EXPECT_FALSE(fs::exists(fs::symlink_status(path)));
}

TEST_F(FifoTest, CreateFailsWhenTheFifoExistsAlready) {
    auto first = Fifo::create(path);
    const Error e = error_from([&] { (void)Fifo::create(path); });
    EXPECT_EQ(e.code(), std::errc::file_exists);
    EXPECT_STREQ(e.what(), ("mkfifo(" + path + "): File exists").c_str());
    EXPECT_TRUE(is_fifo(path)) << "the failed create must leave the first FIFO alone";
}

TEST_F(FifoTest, CreateRefusesASymlinkAtThePathAndLeavesItsTargetAlone) {
    const std::string target = dir.file("precious");
    write_file(target, "keep me");
    fs::create_symlink(target, path);
    const Error e = error_from([&] { (void)Fifo::create(path); });
    EXPECT_EQ(e.code(), std::errc::file_exists);
    EXPECT_TRUE(fs::is_symlink(path));
    EXPECT_EQ(read_file(target), "keep me");

    // A dangling link is not followed either: nothing appears at its target.
    const std::string nowhere = dir.file("nowhere");
    const std::string dangling = dir.file("dangling");
    fs::create_symlink(nowhere, dangling);
    EXPECT_EQ(error_from([&] { (void)Fifo::create(dangling); }).code(), std::errc::file_exists);
    EXPECT_FALSE(fs::exists(fs::symlink_status(nowhere)));
}

TEST_F(FifoTest, CreateRefusesARegularFileAtThePath) {
    write_file(path, "data");
    const Error e = error_from([&] { (void)Fifo::create(path); });
    EXPECT_EQ(e.code(), std::errc::file_exists);
    EXPECT_EQ(read_file(path), "data");
}

TEST_F(FifoTest, OpenRefusesASymlinkEvenToARealFifo) {
    auto fifo = Fifo::create(dir.file("real"));
    fs::create_symlink(fifo.path(), path);
    const auto check = [&](const Error& e) {
        EXPECT_EQ(e.code(), std::errc::too_many_symbolic_link_levels);
        EXPECT_TRUE(mentions(e, "open(" + path + "): a symbolic link")) << e.what();
    };
    check(error_from([&] { (void)Fifo::open_read(path, OpenMode::nonblocking); }));
    check(error_from([&] { (void)Fifo::open_write(path, OpenMode::nonblocking); }));
    check(error_from([&] { (void)Fifo::open_read(path, Deadline::after(10s)); }));
    check(error_from([&] { (void)Fifo::open_write(path, Deadline::after(10s)); }));
    EXPECT_TRUE(fs::is_symlink(path));
    EXPECT_TRUE(is_fifo(fifo.path()));
}

TEST_F(FifoTest, OpenRefusesARegularFileAndLeavesItAlone) {
    write_file(path, "data");
    const auto check = [&](const Error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
        EXPECT_TRUE(mentions(e, "open(" + path + "): a regular file, not a FIFO")) << e.what();
    };
    check(error_from([&] { (void)Fifo::open_read(path); }));
    check(error_from([&] { (void)Fifo::open_write(path); }));
    check(error_from([&] { (void)Fifo::open_write(path, OpenMode::nonblocking); }));
    check(error_from([&] { (void)Fifo::open_read(path, Deadline::after(10s)); }));
    check(error_from([&] { (void)Fifo::open_write(path, Deadline::after(10s)); }));
    EXPECT_EQ(read_file(path), "data");
}

TEST_F(FifoTest, OpenRefusesADirectory) {
    const Error e = error_from([&] { (void)Fifo::open_read(dir.path().string()); });
    EXPECT_TRUE(mentions(e, "a directory, not a FIFO")) << e.what();
}

TEST_F(FifoTest, OpenOfAMissingPathNamesIt) {
    const Error e = error_from([&] { (void)Fifo::open_read(path, OpenMode::nonblocking); });
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
    EXPECT_STREQ(e.what(), ("open(" + path + "): No such file or directory").c_str());
    // Waiting with a deadline lets the creator come late, but not past the deadline.
    const Error late = error_from([&] { (void)Fifo::open_write(path, Deadline::after(50ms)); });
    EXPECT_EQ(late.code(), std::errc::no_such_file_or_directory);
    EXPECT_EQ(error_from([&] { (void)Fifo::open_read(path, Deadline::immediate()); }).code(),
              std::errc::no_such_file_or_directory);
}

TEST_F(FifoTest, NonBlockingOpenForWriteWithoutReaderFailsWithENXIO) {
    auto fifo = Fifo::create(path);
    const Error e = error_from([&] { (void)Fifo::open_write(path, OpenMode::nonblocking); });
    EXPECT_EQ(e.code().value(), ENXIO);
    EXPECT_TRUE(mentions(e, "no process has the FIFO open for reading")) << e.what();
    EXPECT_TRUE(mentions(e, "No such device or address")) << e.what();
}

// The lecture: with O_NONBLOCK "read() call will now succeed and return immediately, even if
// the FIFO has not been opened for writing by any process".
TEST_F(FifoTest, NonBlockingOpenForReadSucceedsWithoutWriter) {
    auto fifo = Fifo::create(path);
    auto reader = Fifo::open_read(path, OpenMode::nonblocking);
    EXPECT_TRUE(reader.fd().nonblocking());
    EXPECT_EQ(reader.name(), "fifo " + path);
    std::array<std::byte, 16> buffer{};
    // No writer has come yet: nothing to wait for now...
    EXPECT_EQ(reader.read_some(buffer, Deadline::immediate()).status, Status::would_block);
    EXPECT_EQ(reader.read_some(buffer, Deadline::after(20ms)).status, Status::timed_out);
    // ...and a plain read(2) returns at once with 0, which is end of file: no writer.
    const IoResult plain = reader.read_some(buffer);
    EXPECT_EQ(plain.status, Status::closed);
    EXPECT_EQ(plain.bytes, 0u);

    // The reader stays usable: a writer that comes later is heard.
    auto writer = Fifo::open_write(path, OpenMode::nonblocking);
    ASSERT_TRUE(writer.write_all(as_bytes("late")).ok());
    const IoResult r = reader.read_some(buffer, Deadline::after(10s));
    ASSERT_EQ(r.status, Status::ok);
    EXPECT_EQ(text_of(std::span(buffer).first(r.bytes)), "late");
}

// The lecture: a blocking open for reading "will not return until a process opens the same
// FIFO for writing". The child reports through a pipe when its open has returned; the parent
// checks that it has not while the child sleeps in openat(2), then opens for writing.
TEST_F(FifoTest, BlockingOpenForReadWaitsForAWriterInAnotherProcess) {
    auto fifo = Fifo::create(path);
    auto opened = Pipe::create();
    auto child = test::spawn([&] {
        opened.reader.close();
        auto reader = Fifo::open_read(path, OpenMode::blocking);
        if (!opened.writer.write_all(as_bytes("o")).ok()) return 2;
        std::array<std::byte, 5> buffer{};
        if (!reader.read_exact(buffer, Deadline::after(30s)).ok()) return 3;
        return text_of(buffer) == "hello" ? 0 : 1;
    });
    opened.writer.close();
    ASSERT_TRUE(sleeping_in(child.pid(), SYS_openat));
    std::array<std::byte, 1> note{};
    EXPECT_EQ(opened.reader.read_some(note, Deadline::immediate()).status, Status::would_block)
        << "the open returned with no writer";

    auto writer = Fifo::open_write(path, OpenMode::blocking);  // a reader is waiting: no wait here
    EXPECT_EQ(opened.reader.read_some(note, Deadline::after(30s)).status, Status::ok);
    ASSERT_TRUE(writer.write_all(as_bytes("hello")).ok());
    EXPECT_EQ(child.wait(), 0);
}

TEST_F(FifoTest, BlockingOpenForWriteWaitsForAReaderInAnotherProcess) {
    auto fifo = Fifo::create(path);
    auto opened = Pipe::create();
    auto child = test::spawn([&] {
        opened.reader.close();
        auto writer = Fifo::open_write(path, OpenMode::blocking);
        if (!opened.writer.write_all(as_bytes("o")).ok()) return 2;
        return writer.write_all(as_bytes("hello")).ok() ? 0 : 1;
    });
    opened.writer.close();
    ASSERT_TRUE(sleeping_in(child.pid(), SYS_openat));
    std::array<std::byte, 1> note{};
    EXPECT_EQ(opened.reader.read_some(note, Deadline::immediate()).status, Status::would_block);

    auto reader = Fifo::open_read(path, OpenMode::blocking);
    std::array<std::byte, 5> buffer{};
    ASSERT_EQ(reader.read_exact(buffer, Deadline::after(30s)).status, Status::ok);
    EXPECT_EQ(text_of(buffer), "hello");
    EXPECT_EQ(child.wait(), 0);
}

TEST_F(FifoTest, OpenWithTimeoutTimesOutWithoutPeer) {
    auto fifo = Fifo::create(path);
    EXPECT_FALSE(Fifo::open_write(path, Deadline::after(50ms)).has_value());
    EXPECT_FALSE(Fifo::open_write(path, Deadline::immediate()).has_value());
    EXPECT_FALSE(Fifo::open_read(path, Deadline::after(50ms)).has_value());
    EXPECT_FALSE(Fifo::open_read(path, Deadline::immediate()).has_value());
}

TEST_F(FifoTest, OpenForWriteWithTimeoutSucceedsOnceAReaderOpens) {
    auto fifo = Fifo::create(path);
    auto child = test::spawn([&] {
        auto reader = Fifo::open_read(path, OpenMode::blocking);
        std::array<std::byte, 2> buffer{};
        if (!reader.read_exact(buffer, Deadline::after(30s)).ok()) return 2;
        return text_of(buffer) == "hi" ? 0 : 1;
    });
    auto writer = Fifo::open_write(path, Deadline::after(30s));
    ASSERT_TRUE(writer.has_value());
    EXPECT_FALSE(writer->fd().nonblocking()) << "an end opened with a deadline is blocking";
    ASSERT_TRUE(writer->write_all(as_bytes("hi")).ok());
    EXPECT_EQ(child.wait(), 0);
}

TEST_F(FifoTest, OpenForReadWithTimeoutReturnsOnceAWriterHasWritten) {
    auto fifo = Fifo::create(path);
    auto child = test::spawn([&] {
        auto writer = Fifo::open_write(path, Deadline::after(30s));
        if (!writer) return 2;
        return writer->write_all(as_bytes("hi")).ok() ? 0 : 1;
    });
    auto reader = Fifo::open_read(path, Deadline::after(30s));
    ASSERT_TRUE(reader.has_value());
    EXPECT_FALSE(reader->fd().nonblocking());
    std::array<std::byte, 2> buffer{};
    ASSERT_EQ(reader->read_exact(buffer, Deadline::after(30s)).status, Status::ok);
    EXPECT_EQ(text_of(buffer), "hi");
    EXPECT_EQ(child.wait(), 0);
}

// A producer may start before the consumer has created the FIFO: waiting with a deadline
// treats "no such FIFO yet" like "no reader yet".
TEST_F(FifoTest, OpenWithTimeoutWaitsForTheFifoToBeCreated) {
    auto child = test::spawn([&] {
        auto writer = Fifo::open_write(path, Deadline::after(30s));
        if (!writer) return 2;
        return writer->write_all(as_bytes("early")).ok() ? 0 : 1;
    });
    ASSERT_TRUE(sleeping_in(child.pid(), SYS_clock_nanosleep));  // it is waiting: no FIFO yet
    auto fifo = Fifo::create(path);
    auto reader = Fifo::open_read(path, OpenMode::blocking);
    std::array<std::byte, 5> buffer{};
    ASSERT_EQ(reader.read_exact(buffer, Deadline::after(30s)).status, Status::ok);
    EXPECT_EQ(text_of(buffer), "early");
    EXPECT_EQ(child.wait(), 0);
}

TEST_F(FifoTest, ReaderSeesEndOfFileWhenTheWriterProcessExits) {
    auto fifo = Fifo::create(path);
    auto child = test::spawn([&] {
        auto writer = Fifo::open_write(path, OpenMode::blocking);
        return writer.write_all(as_bytes("bye")).ok() ? 0 : 1;
    });
    auto reader = Fifo::open_read(path, OpenMode::blocking);
    std::array<std::byte, 8> buffer{};
    const IoResult r = reader.read_exact(buffer, Deadline::after(30s));
    EXPECT_EQ(r.status, Status::closed);
    EXPECT_EQ(r.bytes, 3u);
    EXPECT_EQ(text_of(std::span(buffer).first(3)), "bye");
    EXPECT_EQ(child.wait(), 0);
}

TEST_F(FifoTest, WriteAfterTheReaderLeftIsClosedWithoutSigpipe) {
    auto fifo = Fifo::create(path);
    auto child = test::spawn([&] {
        ::signal(SIGPIPE, SIG_DFL);
        auto writer = Fifo::open_write(path, OpenMode::blocking);
        // The reader reads one byte and leaves; then nobody reads: closed, not SIGPIPE.
        for (const auto limit = Deadline::after(30s); !limit.expired();) {
            const IoResult w = writer.write_all(as_bytes("x"), Deadline::after(30s));
            if (w.status == Status::closed) return 0;
            if (w.status != Status::ok) return 2;
            std::this_thread::sleep_for(1ms);
        }
        return 1;
    });
    {
        auto reader = Fifo::open_read(path, OpenMode::blocking);
        std::array<std::byte, 1> byte{};
        ASSERT_EQ(reader.read_exact(byte, Deadline::after(30s)).status, Status::ok);
    }
    EXPECT_EQ(child.wait(), 0) << "-13 would mean the writer died of SIGPIPE";
}

TEST_F(FifoTest, OwnerUnlinksTheFifoWhenItGoesAway) {
    {
        auto fifo = Fifo::create(path);
        EXPECT_TRUE(is_fifo(path));
        Fifo moved = std::move(fifo);
        EXPECT_FALSE(fifo.owns());
        EXPECT_TRUE(moved.owns());
    }
    EXPECT_FALSE(fs::exists(fs::symlink_status(path)));
}

TEST_F(FifoTest, KeptFifoStaysAfterItsOwner) {
    {
        auto fifo = Fifo::create(path);
        fifo.keep();
        EXPECT_FALSE(fifo.owns());
    }
    EXPECT_TRUE(is_fifo(path));
    ::unlink(path.c_str());
}

TEST_F(FifoTest, RemoveUnlinksAtOnce) {
    auto fifo = Fifo::create(path);
    fifo.remove();
    EXPECT_FALSE(fs::exists(fs::symlink_status(path)));
    EXPECT_FALSE(fifo.owns());
    EXPECT_EQ(error_from([&] { fifo.remove(); }).code(), std::errc::invalid_argument);
}

TEST_F(FifoTest, OwnerLeavesAReplacementAlone) {
    {
        auto fifo = Fifo::create(path);
        ASSERT_EQ(::unlink(path.c_str()), 0);
        write_file(path, "someone else's");
    }
    EXPECT_EQ(read_file(path), "someone else's");
}

}  // namespace
}  // namespace ipckit
