// The file: transport (src/channels/channel_file.cpp): record in one process, replay in another;
// damaged logs give their error, saying where, after every record before the damage.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "channels/record_log.hpp"
#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/poll_set.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<std::byte>;

Bytes message_number(int i) {
    // Sizes from 0 up past a page, each byte telling its message and position apart.
    Bytes m(static_cast<std::size_t>((i * 977) % 5000));
    for (std::size_t k = 0; k < m.size(); ++k)
        m[k] = static_cast<std::byte>(i * 31 + static_cast<int>(k));
    return m;
}

std::vector<Bytes> replay(const std::string& address, Deadline deadline = Deadline::never()) {
    Receiver receiver = Receiver::open(address);
    std::vector<Bytes> got;
    Bytes m;
    for (;;) {
        const IoResult r = receiver.recv(m, deadline);
        if (r.status == Status::closed) return got;
        EXPECT_TRUE(r.ok());
        got.push_back(m);
    }
}

void write_file(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A log written by hand: the header, then records of the given texts at the given times.
Bytes hand_log(const std::vector<std::pair<std::string, std::uint64_t>>& records) {
    const auto header = detail::encode_log_header();
    Bytes log(header.begin(), header.end());
    for (const auto& [text, ns] : records) {
        const auto record = detail::encode_log_record_header(static_cast<std::uint32_t>(text.size()), ns);
        log.insert(log.end(), record.begin(), record.end());
        for (const char c : text)
            log.push_back(static_cast<std::byte>(c));
    }
    return log;
}

TEST(ChannelFileTest, ARecordingReplaysInAnotherProcessWithEveryByteInOrder) {
    test::TempDir dir;
    const std::string address = "file:" + dir.file("cam.ipk");
    constexpr int kCount = 300;
    auto recorder = test::spawn([&] {
        Sender sender = Sender::create(address);
        for (int i = 0; i < kCount; ++i) {
            if (!sender.send(message_number(i)).ok()) return 1;
        }
        return 0;
    });
    ASSERT_EQ(recorder.wait(), 0);

    std::vector<Bytes> got;
    auto player = test::spawn([&] { return replay(address).size() == kCount ? 0 : 1; });
    EXPECT_EQ(player.wait(), 0);
    got = replay(address);
    ASSERT_EQ(got.size(), static_cast<std::size_t>(kCount));
    for (int i = 0; i < kCount; ++i)
        EXPECT_EQ(got[static_cast<std::size_t>(i)], message_number(i)) << "message " << i;
}

TEST(ChannelFileTest, AnotherSenderAppendsToTheLogAndTheReplayHasBoth) {
    test::TempDir dir;
    const std::string address = "file:" + dir.file("log.ipk");
    for (int round = 0; round < 2; ++round) {
        auto recorder = test::spawn([&] {
            Sender sender = round == 0 ? Sender::create(address) : Sender::open(address);
            return sender.send(as_bytes("round " + std::to_string(round))).ok() ? 0 : 1;
        });
        ASSERT_EQ(recorder.wait(), 0);
    }
    const auto got = replay(address);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1], Bytes(as_bytes("round 1").begin(), as_bytes("round 1").end()));
    EXPECT_THROW((void)Sender::create(address), Error);  // create is exclusive
}

TEST(ChannelFileTest, PacedReplayDeliversNoRecordBeforeItsRecordedOffset) {
    // The recorder leaves gaps; the paced replay may be late (a loaded machine), never early:
    // a sleep never ends before its time, so this is a bound the pacing guarantees, not a speed.
    test::TempDir dir;
    const std::string path = dir.file("paced.ipk");
    auto recorder = test::spawn([&] {
        Sender sender = Sender::create("file:" + path);
        for (int i = 0; i < 5; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(15 * i));
            if (!sender.send(message_number(i)).ok()) return 1;
        }
        return 0;
    });
    ASSERT_EQ(recorder.wait(), 0);

    // The recorded timestamps, read straight from the file's record headers.
    std::vector<std::uint64_t> stamps;
    {
        detail::LogReader log(Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), 1 << 20, path);
        while (const auto* next = log.peek()) {
            stamps.push_back(next->timestamp_ns);
            log.skip();
        }
    }
    ASSERT_EQ(stamps.size(), 5u);
    Receiver receiver = Receiver::open("file:" + path + "?pace=recorded");
    Bytes m;
    const auto before_first = Deadline::Clock::now();
    for (std::size_t i = 0; i < stamps.size(); ++i) {
        ASSERT_TRUE(receiver.recv(m).ok());
        EXPECT_EQ(m, message_number(static_cast<int>(i)));
        EXPECT_GE(stamps[i], i == 0 ? stamps[0] : stamps[i - 1]) << "recorded out of order";
        const auto offset = Deadline::Clock::now() - before_first;
        EXPECT_GE(offset, std::chrono::nanoseconds(stamps[i] - stamps[0])) << "record " << i << " came early";
    }
    EXPECT_EQ(receiver.recv(m).status, Status::closed);
}

TEST(ChannelFileTest, PacedReplayWaitsOutTheRecordedGapAndFastReplayDoesNot) {
    test::TempDir dir;
    const std::string path = dir.file("gap.ipk");
    constexpr std::uint64_t kHour = 3600ull * 1'000'000'000ull;
    write_file(path, hand_log({{"first", 1'000}, {"an hour later", 1'000 + kHour}}));
    Receiver paced = Receiver::open("file:" + path + "?pace=recorded");
    Bytes m;
    ASSERT_TRUE(paced.recv(m).ok());
    EXPECT_EQ(paced.try_recv(m).status, Status::would_block);
    EXPECT_EQ(paced.recv(m, Deadline::after(5ms)).status, Status::timed_out);
    const auto fast = replay("file:" + path);
    ASSERT_EQ(fast.size(), 2u);

    // A wait set sees the paced record as not ready yet, and an unpaced one (or the end) as ready.
    Receiver unpaced = Receiver::open("file:" + path);
    PollSet set;
    set.add(paced);
    set.add(unpaced);
    EXPECT_EQ(set.wait(Deadline::after(20ms)), std::vector<std::size_t>{1});
}

struct Damage {
    const char* name;
    std::size_t records_before;  // delivered before the error
    std::errc code;
    const char* where;  // in the message
};

// Two good records, then the damage: each case cuts or alters the log's bytes.
Bytes damaged(const std::string& name) {
    Bytes log = hand_log({{"one", 1}, {"two", 2}});
    if (name == "truncated header") return Bytes(log.begin(), log.begin() + 10);
    if (name == "bad magic") {
        log[0] = std::byte{'X'};
        return log;
    }
    if (name == "bad version") {
        log[8] = std::byte{9};
        return log;
    }
    if (name == "truncated record header") {
        const auto more = detail::encode_log_record_header(3, 3);
        log.insert(log.end(), more.begin(), more.begin() + 7);
        return log;
    }
    if (name == "truncated record") {
        const auto more = detail::encode_log_record_header(100, 3);
        log.insert(log.end(), more.begin(), more.end());
        log.insert(log.end(), 40, std::byte{'x'});
        return log;
    }
    // "huge length"
    const auto more = detail::encode_log_record_header(0xffffffffu, 3);
    log.insert(log.end(), more.begin(), more.end());
    return log;
}

TEST(ChannelFileTest, EachDamagedLogGivesItsErrorAfterTheRecordsBeforeIt) {
    const std::array<Damage, 6> cases{{
        {"truncated header", 0, std::errc::bad_message, "at byte 0"},
        {"bad magic", 0, std::errc::protocol_error, "at byte 0"},
        {"bad version", 0, std::errc::protocol_error, "at byte 0"},
        {"truncated record header", 2, std::errc::bad_message, "record 3 at byte 46"},
        {"truncated record", 2, std::errc::bad_message, "record 3 at byte 46"},
        {"huge length", 2, std::errc::message_size, "record 3 at byte 46"},
    }};
    test::TempDir dir;
    for (const auto& damage : cases) {
        SCOPED_TRACE(damage.name);
        const std::string path = dir.file("damaged.ipk");
        write_file(path, damaged(damage.name));
        std::vector<std::string> got;
        try {
            Receiver receiver = Receiver::open("file:" + path);
            Bytes m;
            for (;;) {
                const IoResult r = receiver.recv(m);
                ASSERT_NE(r.status, Status::closed) << "a damaged log ended cleanly";
                got.emplace_back(reinterpret_cast<const char*>(m.data()), m.size());
            }
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::make_error_code(damage.code)) << e.what();
            EXPECT_NE(std::string(e.what()).find(damage.where), std::string::npos) << e.what();
        }
        ASSERT_EQ(got.size(), damage.records_before);
        if (got.size() == 2) {
            EXPECT_EQ(got[1], "two");
        }
        // A recorder does not append behind the damage either.
        if (damage.records_before == 2) {
            EXPECT_THROW((void)Sender::open("file:" + path), Error);
        }
    }
}

TEST(ChannelFileTest, ALogIsCreated0600AndNeverOpenedThroughASymlink) {
    test::TempDir dir;
    const std::string path = dir.file("made.ipk");
    const mode_t old_mask = ::umask(0);
    { Sender sender = Sender::create("file:" + path); }
    ::umask(old_mask);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    const std::string link = dir.file("link.ipk");
    ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
    for (const bool as_sender : {true, false}) {
        try {
            if (as_sender) {
                (void)Sender::open("file:" + link);
            } else {
                (void)Receiver::open("file:" + link);
            }
            ADD_FAILURE() << "opened a log through a symbolic link";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::too_many_symbolic_link_levels) << e.what();
        }
    }
    EXPECT_THROW((void)Receiver::open("file:" + dir.file("absent.ipk")), Error);
}

TEST(ChannelFileTest, AnotherUsersLogIsRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a log to another uid";
    test::TempDir dir;
    const std::string path = dir.file("theirs.ipk");
    write_file(path, hand_log({{"x", 1}}));
    ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
    auto child = test::spawn([&] {
        try {
            (void)Receiver::open("file:" + path);
        } catch (const Error& e) {
            return e.code() == std::errc::permission_denied ? 0 : 2;
        }
        return 1;
    });
    EXPECT_EQ(child.wait(), 0);
    EXPECT_THROW((void)Sender::open("file:" + path), Error);
}

}  // namespace
}  // namespace ipckit
