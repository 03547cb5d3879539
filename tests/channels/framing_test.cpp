// The framing routine: frames across real pipes and processes, hostile headers, text lines.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <random>

#include "channels/framing.hpp"
#include "ipckit/error.hpp"
#include "ipckit/fd.hpp"
#include "ipckit/io.hpp"
#include "support/process.hpp"

namespace ipckit::detail {
namespace {

using namespace std::chrono_literals;

struct RawPipe {
    Fd r, w;
    RawPipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2", "test");
        r.reset(fds[0]);
        w.reset(fds[1]);
    }
};

std::string text(const std::vector<std::byte>& bytes) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

TEST(FramingTest, HeaderRoundTrips) {
    const auto header = encode_frame_header(12345);
    EXPECT_EQ(decode_frame_header(header, 1 << 20, "t"), 12345u);
}

TEST(FramingTest, ManyFramesOfRandomSizesCrossAProcessBoundaryIntact) {
    RawPipe p;
    constexpr int kCount = 2000;
    constexpr std::size_t kLimit = 200'000;
    auto child = test::spawn([&] {
        p.r.reset();
        std::mt19937 rng(7);
        std::vector<std::byte> message;
        for (int i = 0; i < kCount; ++i) {
            message.resize(rng() % kLimit);
            for (std::size_t j = 0; j < message.size(); ++j)
                message[j] = static_cast<std::byte>(i + j);
            if (!write_frame(p.w.get(), Framing::length, message, Deadline::never(), kLimit, "pipe").ok())
                return 1;
        }
        return 0;
    });
    p.w.reset();
    FrameReader reader(Framing::length, kLimit, "pipe");
    std::mt19937 rng(7);
    std::vector<std::byte> got;
    for (int i = 0; i < kCount; ++i) {
        const auto r = reader.read(p.r.get(), got, Deadline::after(30s));
        ASSERT_EQ(r.status, Status::ok) << "message " << i;
        ASSERT_EQ(got.size(), rng() % kLimit) << "message " << i;
        for (std::size_t j = 0; j < got.size(); ++j) {
            ASSERT_EQ(got[j], static_cast<std::byte>(i + j)) << "message " << i << " byte " << j;
        }
    }
    EXPECT_EQ(reader.read(p.r.get(), got, Deadline::after(10s)).status, Status::closed);
    EXPECT_EQ(child.wait(), 0);
}

TEST(FramingTest, TextOnAFramedStreamSuggestsLineFraming) {
    RawPipe p;
    ASSERT_TRUE(write_all(p.w.get(), as_bytes("hello world\n"), Deadline::never(), "p").ok());
    FrameReader reader(Framing::length, 1024, "fifo:/tmp/x");
    std::vector<std::byte> got;
    try {
        (void)reader.read(p.r.get(), got, Deadline::after(5s));
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::protocol_error);
        EXPECT_NE(std::string(e.what()).find("68 65 6c 6c 6f 20 77 6f"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("framing=line"), std::string::npos) << e.what();
    }
}

TEST(FramingTest, HostileLengthIsAnErrorNotAnAllocation) {
    RawPipe p;
    const auto header = encode_frame_header(0xfffffff0u);
    ASSERT_TRUE(write_all(p.w.get(), header, Deadline::never(), "p").ok());
    FrameReader reader(Framing::length, 1 << 20, "unix:@x");
    std::vector<std::byte> got;
    try {
        (void)reader.read(p.r.get(), got, Deadline::after(5s));
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::message_size);
        EXPECT_NE(std::string(e.what()).find("4294967280 bytes exceeds the channel's limit of 1048576"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_LT(got.capacity(), 1u << 20);
}

TEST(FramingTest, SendingOverTheLimitSaysTheLimit) {
    RawPipe p;
    std::vector<std::byte> big(2000);
    try {
        (void)write_frame(p.w.get(), Framing::length, big, Deadline::never(), 1024, "fifo:/x");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::message_size);
        EXPECT_NE(std::string(e.what()).find("limit of 1024 bytes (max=1KiB)"), std::string::npos)
            << e.what();
    }
}

TEST(FramingTest, MessageLargerThanTheBufferStaysQueued) {
    RawPipe p;
    ASSERT_TRUE(
        write_frame(p.w.get(), Framing::length, as_bytes("0123456789"), Deadline::never(), 64, "p").ok());
    FrameReader reader(Framing::length, 64, "p");
    std::array<std::byte, 4> small{};
    try {
        (void)reader.read(p.r.get(), small, Deadline::after(5s));
        ADD_FAILURE() << "a 10-byte message fitted a 4-byte buffer";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::message_size) << e.what();
        EXPECT_NE(std::string(e.what()).find("the next message is 10 bytes and the buffer holds 4"),
                  std::string::npos)
            << e.what();
    }
    std::array<std::byte, 16> large{};
    const auto r = reader.read(p.r.get(), large, Deadline::after(5s));
    ASSERT_EQ(r.status, Status::ok);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(large.data()), r.bytes), "0123456789");
}

TEST(FramingTest, PeerDyingMidFrameDeliversNothingPartialAndSaysHowFarItGot) {
    RawPipe p;
    const auto header = encode_frame_header(100);
    ASSERT_TRUE(write_all(p.w.get(), header, Deadline::never(), "p").ok());
    ASSERT_TRUE(write_all(p.w.get(), as_bytes("only part"), Deadline::never(), "p").ok());
    p.w.reset();
    FrameReader reader(Framing::length, 1024, "p");
    std::vector<std::byte> got;
    try {
        (void)reader.read(p.r.get(), got, Deadline::after(5s));
        ADD_FAILURE() << "a stream that ended inside a body was taken as a clean end";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::bad_message);
        EXPECT_NE(std::string(e.what()).find("9 of 100 body bytes"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(got.empty() || got.size() == 100u);  // nothing partial passed off as a message
    EXPECT_EQ(reader.read(p.r.get(), got, Deadline::after(5s)).status, Status::closed);
}

TEST(FramingTest, StreamEndingInsideAHeaderIsAnErrorNotAnEnd) {
    RawPipe p;
    const auto header = encode_frame_header(100);
    ASSERT_TRUE(write_all(p.w.get(), std::span(header).first(4), Deadline::never(), "p").ok());
    p.w.reset();
    FrameReader reader(Framing::length, 1024, "p");
    std::vector<std::byte> got;
    try {
        (void)reader.read(p.r.get(), got, Deadline::after(5s));
        ADD_FAILURE() << "a torn header was taken as a clean end";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::bad_message);
        EXPECT_NE(std::string(e.what()).find("frame header (4 of 8 bytes)"), std::string::npos) << e.what();
    }
    EXPECT_EQ(reader.read(p.r.get(), got, Deadline::after(5s)).status, Status::closed);
}

TEST(FramingTest, LineFramingReadsWhatTheShellWrites) {
    RawPipe p;
    auto child = test::spawn([&] {
        p.r.reset();
        ::dup2(p.w.get(), 1);
        ::execl("/bin/sh", "sh", "-c", "echo Hello; printf 'two\\nlast-without-newline'", nullptr);
        return 127;
    });
    p.w.reset();
    FrameReader reader(Framing::line, 1024, "fifo:/x?framing=line");
    std::vector<std::byte> got;
    ASSERT_EQ(reader.read(p.r.get(), got, Deadline::after(10s)).status, Status::ok);
    EXPECT_EQ(text(got), "Hello");
    ASSERT_EQ(reader.read(p.r.get(), got, Deadline::after(10s)).status, Status::ok);
    EXPECT_EQ(text(got), "two");
    ASSERT_EQ(reader.read(p.r.get(), got, Deadline::after(10s)).status, Status::ok);
    EXPECT_EQ(text(got), "last-without-newline");
    EXPECT_EQ(reader.read(p.r.get(), got, Deadline::after(10s)).status, Status::closed);
    EXPECT_EQ(child.wait(), 0);
}

TEST(FramingTest, LineFramingRefusesANewlineInAMessage) {
    RawPipe p;
    EXPECT_THROW((void)write_frame(p.w.get(), Framing::line, as_bytes("a\nb"), Deadline::never(), 64, "p"),
                 Error);
}

TEST(FramingTest, TimeoutBeforeAFrameLeavesTheStreamIntact) {
    RawPipe p;
    FrameReader reader(Framing::length, 64, "p");
    std::vector<std::byte> got;
    EXPECT_EQ(reader.read(p.r.get(), got, Deadline::after(10ms)).status, Status::timed_out);
    ASSERT_TRUE(write_frame(p.w.get(), Framing::length, as_bytes("x"), Deadline::never(), 64, "p").ok());
    ASSERT_EQ(reader.read(p.r.get(), got, Deadline::after(5s)).status, Status::ok);
    EXPECT_EQ(text(got), "x");
}

}  // namespace
}  // namespace ipckit::detail
