// Unnamed pipes: typed ends, PIPE_BUF atomicity across writer processes, capacity, passing an
// end across fork and exec, end of file and a vanished reader as values.
#include "ipckit/pipe.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/io.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;

std::string text_of(std::span<const std::byte> bytes) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Runs `body` and returns the Error it throws; a test failure if it throws none.
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

// Reads until end of file, bounded so that a writer left open fails the test, not hangs it.
std::string read_to_end(PipeReader& reader) {
    std::string all;
    std::array<std::byte, 4096> buffer{};
    for (;;) {
        const IoResult r = reader.read_some(buffer, Deadline::after(30s));
        if (r.status == Status::closed) return all;
        if (r.status != Status::ok) {
            ADD_FAILURE() << "read ended with " << to_string(r.status);
            return all;
        }
        all += text_of(std::span(buffer).first(r.bytes));
    }
}

int pipe_max_size() {
    std::ifstream file("/proc/sys/fs/pipe-max-size");
    int value = 0;
    file >> value;
    return value;
}

TEST(PipeTest, WhatIsWrittenIsReadBackInOrder) {
    auto pipe = Pipe::create();
    ASSERT_TRUE(pipe.writer.write_all(as_bytes("123")).ok());
    ASSERT_TRUE(pipe.writer.write_all(as_bytes("456")).ok());
    std::array<std::byte, 6> buffer{};
    const IoResult r = pipe.reader.read_exact(buffer, Deadline::after(10s));
    EXPECT_EQ(r.status, Status::ok);
    EXPECT_EQ(text_of(buffer), "123456");
}

TEST(PipeTest, EndsAreCloseOnExecByDefaultAndNamedInErrors) {
    auto pipe = Pipe::create();
    EXPECT_FALSE(pipe.reader.fd().inheritable());
    EXPECT_FALSE(pipe.writer.fd().inheritable());
    EXPECT_EQ(pipe.reader.name(), "pipe fd " + std::to_string(pipe.reader.fd().get()));
}

TEST(PipeTest, WriteAllSendsSeveralPartsInOrder) {
    auto pipe = Pipe::create();
    const std::array<std::span<const std::byte>, 3> parts{as_bytes("he"), as_bytes("ll"), as_bytes("o")};
    const IoResult w = pipe.writer.write_all(parts);
    EXPECT_EQ(w.status, Status::ok);
    EXPECT_EQ(w.bytes, 5u);
    pipe.writer.close();
    EXPECT_EQ(read_to_end(pipe.reader), "hello");
}

// The lecture: "Linux guarantees that at least PIPE_BUF bytes can be written to a pipe
// atomically". Several processes write records of exactly PIPE_BUF bytes at once, each record
// filled with a pattern only its writer and sequence number produce; the reader reads
// PIPE_BUF bytes at a time, so any interleaving would show as a record whose bytes disagree.
TEST(PipeTest, RecordsOfPipeBufBytesFromSeveralWritersAreNeverInterleaved) {
    constexpr std::size_t record_size = PipeWriter::atomic_write_limit;
    static_assert(record_size == PIPE_BUF);
    constexpr std::uint32_t writers = 4;
    constexpr std::uint32_t records_per_writer = 500;
    const auto fill = [](std::uint32_t writer, std::uint32_t sequence, std::size_t i) {
        return static_cast<std::byte>((writer * 131 + sequence * 7 + i) & 0xff);
    };

    auto data = Pipe::create();
    // The smallest pipe (one page) keeps the writers waiting on a full pipe, which is where a
    // write that is not atomic gets split: records of 4 * PIPE_BUF are torn here by the
    // thousand, so this check can fail.
    (void)data.writer.set_capacity(1);
    auto start = Pipe::create();  // closing its writer releases every writer at once
    std::vector<test::Child> children;
    for (std::uint32_t w = 0; w < writers; ++w) {
        children.push_back(test::spawn([&, w] {
            data.reader.close();
            start.writer.close();
            std::array<std::byte, 1> go{};
            if (start.reader.read_some(go, Deadline::after(30s)).status != Status::closed) return 2;
            std::array<std::byte, record_size> record{};
            for (std::uint32_t seq = 0; seq < records_per_writer; ++seq) {
                std::memcpy(record.data(), &w, sizeof w);
                std::memcpy(record.data() + sizeof w, &seq, sizeof seq);
                for (std::size_t i = 2 * sizeof(std::uint32_t); i < record_size; ++i)
                    record[i] = fill(w, seq, i);
                if (!data.writer.write_all(record).ok()) return 1;
            }
            return 0;
        }));
    }
    data.writer.close();
    start.reader.close();
    start.writer.close();

    std::array<std::uint32_t, writers> next_sequence{};
    std::size_t records = 0;
    std::size_t torn = 0;
    std::array<std::byte, record_size> record{};
    for (;;) {
        const IoResult r = data.reader.read_exact(record, Deadline::after(60s));
        if (r.status == Status::closed && r.bytes == 0) break;
        ASSERT_EQ(r.status, Status::ok) << "after " << records << " records, " << r.bytes << " bytes";
        ++records;
        std::uint32_t w = 0, seq = 0;
        std::memcpy(&w, record.data(), sizeof w);
        std::memcpy(&seq, record.data() + sizeof w, sizeof seq);
        bool whole = w < writers && seq == next_sequence[w];
        for (std::size_t i = 2 * sizeof(std::uint32_t); whole && i < record_size; ++i)
            whole = record[i] == fill(w, seq, i);
        if (!whole) {
            ++torn;
            continue;
        }
        ++next_sequence[w];
    }
    for (auto& child : children)
        EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(records, std::size_t{writers} * records_per_writer);
    EXPECT_EQ(torn, 0u);
}

TEST(PipeTest, CapacityIsWhatTheKernelHolds) {
    auto pipe = Pipe::create();
    EXPECT_GE(pipe.writer.capacity(), PipeWriter::atomic_write_limit);
    const std::size_t chosen = pipe.writer.set_capacity(128 * 1024);
    EXPECT_EQ(chosen, 128u * 1024);
    EXPECT_EQ(pipe.reader.capacity(), chosen);  // one buffer, seen from either end

    // Fill it without blocking: exactly `chosen` bytes go in before the kernel says "full".
    pipe.writer.set_nonblocking(true);
    const std::vector<std::byte> page(PipeWriter::atomic_write_limit);
    std::size_t held = 0;
    for (;;) {
        const IoResult w = pipe.writer.write_all(page, Deadline::immediate());
        if (w.status == Status::would_block) break;
        ASSERT_EQ(w.status, Status::ok);
        held += w.bytes;
        ASSERT_LE(held, chosen);
    }
    EXPECT_EQ(held, chosen);
}

TEST(PipeTest, SetCapacityRoundsUpToAPowerOfTwoPages) {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    auto pipe = Pipe::create();
    EXPECT_EQ(pipe.writer.set_capacity(3 * page), 4 * page);
    EXPECT_EQ(pipe.writer.set_capacity(1), page);
}

TEST(PipeTest, SetCapacityBelowTheDataHeldIsRefused) {
    auto pipe = Pipe::create();
    const std::vector<std::byte> data(40 * 1024);
    ASSERT_TRUE(pipe.writer.write_all(data).ok());
    const Error e = error_from([&] { (void)pipe.writer.set_capacity(4096); });
    EXPECT_EQ(e.code(), std::errc::device_or_resource_busy);
    EXPECT_NE(std::string(e.what()).find("smaller than the data the pipe holds"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find(pipe.writer.name()), std::string::npos) << e.what();
}

TEST(PipeTest, SetCapacityTooLargeIsRefusedNamingPipeMaxSize) {
    auto pipe = Pipe::create();
    const std::size_t before = pipe.writer.capacity();
    const Error e = error_from([&] { (void)pipe.writer.set_capacity(std::size_t{1} << 40); });
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("/proc/sys/fs/pipe-max-size"), std::string::npos) << e.what();
    EXPECT_EQ(pipe.writer.capacity(), before) << "a refused size must leave the pipe as it was";
}

// Over /proc/sys/fs/pipe-max-size only a process with CAP_SYS_RESOURCE may go; the test runs
// the request in a child that is unprivileged (dropping to "nobody" when the tests run as root).
TEST(PipeTest, SetCapacityOverPipeMaxSizeIsRefusedForAnUnprivilegedProcess) {
    const int limit = pipe_max_size();
    ASSERT_GT(limit, 0);
    auto child = test::spawn([limit] {
        if (::geteuid() == 0) {
            if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
                ::setresuid(65534, 65534, 65534) != 0)
                return 10;
        }
        auto pipe = Pipe::create();
        try {
            (void)pipe.writer.set_capacity(static_cast<std::size_t>(limit) * 2);
        } catch (const Error& e) {
            std::fprintf(stderr, "%s\n", e.what());
            if (e.code() != std::errc::operation_not_permitted) return 2;
            if (std::string(e.what()).find("/proc/sys/fs/pipe-max-size") == std::string::npos) return 3;
            return 0;
        }
        return 1;
    });
    EXPECT_EQ(child.wait(), 0);
}

TEST(PipeTest, ReadEndPassedAcrossForkReceivesTheData) {
    auto pipe = Pipe::create();
    auto child = test::spawn([&] {
        pipe.writer.close();
        return read_to_end(pipe.reader) == "123" ? 0 : 1;
    });
    pipe.reader.close();
    ASSERT_TRUE(pipe.writer.write_all(as_bytes("123")).ok());
    pipe.writer.close();
    EXPECT_EQ(child.wait(), 0);
}

// The exec'd program is a real one (/bin/sh, whose `head` reads from the descriptor number it
// is given). Only the end made inheritable crosses exec: the write end, still open here, must
// not be open in the shell.
TEST(PipeTest, OnlyTheEndMadeInheritableCrossesExec) {
    auto pipe = Pipe::create();
    ASSERT_TRUE(pipe.writer.write_all(as_bytes("hello")).ok());
    const int read_number = pipe.reader.inherit_across_exec();
    EXPECT_TRUE(pipe.reader.fd().inheritable());
    EXPECT_FALSE(pipe.writer.fd().inheritable());
    const std::string write_number = std::to_string(pipe.writer.fd().get());
    const std::string script = "head -c 5 <&" + std::to_string(read_number) + "; if test -e /proc/self/fd/" +
                               write_number + "; then echo ' write end leaked'; fi";
    const auto result = test::run({"/bin/sh", "-c", script}, {}, 30s);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out, "hello");
}

TEST(PipeTest, EndOfFileComesOnlyWhenEveryWriterHasClosed) {
    auto pipe = Pipe::create();
    auto hold = Pipe::create();  // keeps the second writer alive until released
    auto first = test::spawn([&] {
        pipe.reader.close();
        return pipe.writer.write_all(as_bytes("a")).ok() ? 0 : 1;
    });
    auto second = test::spawn([&] {
        pipe.reader.close();
        hold.writer.close();
        std::array<std::byte, 1> go{};
        (void)hold.reader.read_some(go, Deadline::after(30s));
        return pipe.writer.write_all(as_bytes("b")).ok() ? 0 : 1;
    });
    pipe.writer.close();
    hold.reader.close();
    EXPECT_EQ(first.wait(), 0);

    // The first writer is gone, the second still holds its end: no end of file yet.
    std::array<std::byte, 1> byte{};
    ASSERT_EQ(pipe.reader.read_exact(byte, Deadline::after(30s)).status, Status::ok);
    EXPECT_EQ(text_of(byte), "a");
    EXPECT_EQ(pipe.reader.read_some(byte, Deadline::immediate()).status, Status::would_block);

    hold.writer.close();
    EXPECT_EQ(second.wait(), 0);
    EXPECT_EQ(read_to_end(pipe.reader), "b");
    const IoResult end = pipe.reader.read_some(byte, Deadline::immediate());
    EXPECT_EQ(end.status, Status::closed);
    EXPECT_EQ(end.bytes, 0u);
}

TEST(PipeTest, ReadExactReportsAWriterThatStoppedMidRecord) {
    auto pipe = Pipe::create();
    auto child = test::spawn([&] {
        pipe.reader.close();
        return pipe.writer.write_all(as_bytes("abc")).ok() ? 0 : 1;
    });
    pipe.writer.close();
    std::array<std::byte, 8> record{};
    const IoResult r = pipe.reader.read_exact(record, Deadline::after(30s));
    EXPECT_EQ(r.status, Status::closed);
    EXPECT_EQ(r.bytes, 3u);
    EXPECT_EQ(child.wait(), 0);
}

// SIGPIPE's default action kills; the child restores it (the test harness may ignore it) so a
// raised signal would show as death by SIGPIPE instead of exit code 0.
TEST(PipeTest, WriteWithNoReaderLeftIsClosedWithoutSigpipe) {
    auto child = test::spawn([] {
        ::signal(SIGPIPE, SIG_DFL);
        auto pipe = Pipe::create();
        auto reader_process = test::spawn([&] {
            pipe.writer.close();
            std::array<std::byte, 1> byte{};
            return pipe.reader.read_exact(byte, Deadline::after(30s)).ok() ? 0 : 1;
        });
        pipe.reader.close();
        if (!pipe.writer.write_all(as_bytes("x")).ok()) return 2;
        if (reader_process.wait() != 0) return 3;
        // The only reader has exited.
        const IoResult w = pipe.writer.write_all(as_bytes("more"));
        return w.status == Status::closed && w.bytes == 0 ? 0 : 4;
    });
    EXPECT_EQ(child.wait(), 0) << "-13 would mean the process died of SIGPIPE";
}

TEST(PipeTest, ReadWithNothingToReadWouldBlockOrTimesOut) {
    auto pipe = Pipe::create();
    std::array<std::byte, 4> buffer{};
    EXPECT_EQ(pipe.reader.read_some(buffer, Deadline::immediate()).status, Status::would_block);
    EXPECT_EQ(pipe.reader.read_some(buffer, Deadline::after(20ms)).status, Status::timed_out);
    pipe.reader.set_nonblocking(true);
    EXPECT_TRUE(pipe.reader.fd().nonblocking());
    EXPECT_EQ(pipe.reader.read_some(buffer, Deadline::immediate()).status, Status::would_block);
}

TEST(PipeTest, ReleaseHandsTheDescriptorOver) {
    auto pipe = Pipe::create();
    const int number = pipe.reader.fd().get();
    Fd fd = pipe.reader.release();
    EXPECT_EQ(fd.get(), number);
    EXPECT_FALSE(pipe.reader.valid());
}

TEST(PipeTest, AdoptTakesAnInheritedReadEndAndMakesItCloseOnExec) {
    auto pipe = Pipe::create();
    const int number = pipe.reader.inherit_across_exec();
    Fd raw = pipe.reader.release();
    auto adopted = PipeReader::adopt(raw.release());
    EXPECT_EQ(adopted.fd().get(), number);
    EXPECT_FALSE(adopted.fd().inheritable());
    EXPECT_EQ(adopted.name(), "pipe fd " + std::to_string(number));
    ASSERT_TRUE(pipe.writer.write_all(as_bytes("123")).ok());
    pipe.writer.close();
    EXPECT_EQ(read_to_end(adopted), "123");
}

TEST(PipeTest, AdoptRefusesARegularFileAndLeavesItOpen) {
    test::TempDir dir;
    Fd file(::open(dir.file("plain").c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    ASSERT_TRUE(file.valid());
    const Error e = error_from([&] { (void)PipeReader::adopt(file.get()); });
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("a regular file, not a pipe or FIFO"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("fd " + std::to_string(file.get())), std::string::npos) << e.what();
    EXPECT_NE(::fcntl(file.get(), F_GETFD), -1) << "a refused descriptor must stay open";
}

TEST(PipeTest, AdoptRefusesANumberThatIsNotOpen) {
    const Error e = error_from([] { (void)PipeReader::adopt(987654); });
    EXPECT_EQ(e.code(), std::errc::bad_file_descriptor);
    EXPECT_NE(std::string(e.what()).find("fd 987654"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not an open descriptor"), std::string::npos) << e.what();
    const Error negative = error_from([] { (void)PipeWriter::adopt(-1); });
    EXPECT_EQ(negative.code(), std::errc::bad_file_descriptor);
}

TEST(PipeTest, AdoptRefusesTheWrongEnd) {
    auto pipe = Pipe::create();
    const Error as_reader = error_from([&] { (void)PipeReader::adopt(pipe.writer.fd().get()); });
    EXPECT_NE(std::string(as_reader.what()).find("the write end of a pipe"), std::string::npos)
        << as_reader.what();
    const Error as_writer = error_from([&] { (void)PipeWriter::adopt(pipe.reader.fd().get()); });
    EXPECT_NE(std::string(as_writer.what()).find("the read end of a pipe"), std::string::npos)
        << as_writer.what();
    EXPECT_TRUE(pipe.writer.write_all(as_bytes("still open")).ok());
}

}  // namespace
}  // namespace ipckit
