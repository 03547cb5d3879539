// Zero copy through the channel API: Sender::loan/commit and Receiver::read/release over the
// ring transports, between real processes, and the one-line refusal everywhere else.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/ring.hpp"
#include "support/process.hpp"
#include "support/transports.hpp"

namespace ipckit {
namespace {

[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;

bool is_ring(const test::TransportCase& t) {
    return t.name == "shm" || t.name == "shm_memfd" || t.name == "shm_lanes" || t.name == "sysvshm";
}

std::vector<test::TransportCase> ring_transports() {
    std::vector<test::TransportCase> rings;
    for (auto& t : test::all_transports())
        if (is_ring(t)) rings.push_back(t);
    return rings;
}

std::vector<test::TransportCase> other_transports() {
    std::vector<test::TransportCase> others;
    for (auto& t : test::all_transports())
        if (!is_ring(t)) others.push_back(t);
    return others;
}

std::string text(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

class ChannelLoanTest : public ::testing::TestWithParam<test::TransportCase> {
protected:
    test::TempDir dir_;
    std::string address_ = GetParam().address(dir_);
};

TEST_P(ChannelLoanTest, ACommittedLoanArrivesAndAReadShowsItInPlaceUntilReleased) {
    Receiver rx = Receiver::create(address_);
    auto child = test::spawn([&] {
        Sender tx = Sender::open(address_, Deadline::after(10s));
        for (int i = 0; i < 100; ++i) {
            const std::string message = "message " + std::to_string(i);
            // Loan more than needed and commit only what was written.
            Loan loan = tx.loan(message.size() + 32, Deadline::after(10s));
            if (!loan.ok()) return 2;
            std::memcpy(loan.buffer.data(), message.data(), message.size());
            tx.commit(message.size());
        }
        return 0;
    });
    for (int i = 0; i < 100; ++i) {
        const RecordView first = rx.read(Deadline::after(10s));
        ASSERT_TRUE(first.ok()) << to_string(first.status);
        EXPECT_EQ(text(first.message), "message " + std::to_string(i));
        // Not consumed until released: a second read shows the same record.
        const RecordView again = rx.read(Deadline::immediate());
        ASSERT_TRUE(again.ok());
        EXPECT_EQ(again.message.data(), first.message.data());
        rx.release();
    }
    EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(rx.read(Deadline::after(10s)).status, Status::closed);
}

TEST_P(ChannelLoanTest, ALoanThatIsNotCommittedIsNeverDelivered) {
    Receiver rx = Receiver::create(address_);
    Sender tx = Sender::open(address_, Deadline::after(10s));
    ASSERT_TRUE(tx.loan(16).ok());  // abandoned: the send below replaces it
    ASSERT_TRUE(tx.send(as_bytes("sent")).ok());
    std::vector<std::byte> message;
    ASSERT_TRUE(rx.recv(message, Deadline::after(10s)).ok());
    EXPECT_EQ(text(message), "sent");
    EXPECT_EQ(rx.read(Deadline::immediate()).status, Status::would_block);
}

TEST_P(ChannelLoanTest, MisuseIsAnErrorThatNamesTheLimit) {
    Receiver rx = Receiver::create(address_);
    Sender tx = Sender::open(address_, Deadline::after(10s));
    EXPECT_THROW((void)tx.loan(tx.max_message_size() + 1), Error);
    EXPECT_THROW(tx.commit(1), Error);  // no loan
    ASSERT_TRUE(tx.loan(4).ok());
    EXPECT_THROW(tx.commit(5), Error);  // more than was loaned
    EXPECT_THROW(rx.release(), Error);  // no read
}

// Found by the Python tests (a Python sender opening what `ipckit recv` was creating): an
// opener that arrives between the creator's shm_open and its ftruncate must wait, not fail.
TEST(ChannelRingOpenTest, AnOpenerThatArrivesBeforeTheRingIsSizedWaitsForIt) {
    const std::string name = "/" + test::unique_name("ipckit-test");
    const int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    std::optional<Sender> opened;
    std::string failure;
    std::thread opener([&] {
        try {
            opened.emplace(Sender::open("shm:" + name, Deadline::after(10s)));
        } catch (const Error& e) {
            failure = e.what();
        }
    });
    // The opener has the object open (a second descriptor of it in this process) while it is
    // still empty: it found it unsized, and must wait.
    const auto opener_has_it = [&] {
        int open = 0;
        for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
            std::error_code error;
            if (std::filesystem::read_symlink(entry.path(), error) == "/dev/shm" + name) ++open;
        }
        return open >= 2;
    };
    bool found_empty = opener_has_it();
    for (int slice = 0; slice < 10'000 && !found_empty; ++slice) {
        std::this_thread::sleep_for(1ms);
        found_empty = opener_has_it();
    }
    const std::size_t size = Ring::region_size(4096);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    void* region = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_NE(region, MAP_FAILED);
    Ring::format(std::span(static_cast<std::byte*>(region), size), RingOptions{4096});
    opener.join();
    EXPECT_TRUE(found_empty) << "the opener never had " << name << " open before it was sized";
    EXPECT_EQ(failure, "");
    EXPECT_TRUE(opened.has_value());
    opened.reset();
    ::munmap(region, size);
    ::close(fd);
    ::shm_unlink(name.c_str());
}

INSTANTIATE_TEST_SUITE_P(Rings, ChannelLoanTest, ::testing::ValuesIn(ring_transports()),
                         [](const auto& test_info) { return test_info.param.name; });

class ChannelNoLoanTest : public ::testing::TestWithParam<test::TransportCase> {
protected:
    test::TempDir dir_;
    std::string address_ = GetParam().address(dir_);
};

TEST_P(ChannelNoLoanTest, OtherTransportsRefuseWithOneLineNamingTheAddress) {
    Receiver rx = Receiver::create(address_);
    Sender tx = Sender::open(address_, Deadline::after(10s));
    try {
        (void)tx.loan(8);
        FAIL() << "loan on " << address_ << " did not throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::operation_not_supported);
        EXPECT_EQ(std::string(e.what()),
                  "address \"" + address_ +
                      "\": zero-copy loans need a ring transport (shm:, sysvshm:): Operation not supported");
    }
    try {
        (void)rx.read(Deadline::immediate());
        FAIL() << "read on " << address_ << " did not throw";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "address \"" + address_ +
                      "\": zero-copy reads need a ring transport (shm:, sysvshm:): Operation not supported");
    }
    // The refusal loses nothing: the channel still carries messages.
    ASSERT_TRUE(tx.send(as_bytes("still works"), Deadline::after(10s)).ok());
    std::vector<std::byte> message;
    ASSERT_TRUE(rx.recv(message, Deadline::after(10s)).ok());
    EXPECT_EQ(text(message), "still works");
}

INSTANTIATE_TEST_SUITE_P(Others, ChannelNoLoanTest, ::testing::ValuesIn(other_transports()),
                         [](const auto& test_info) { return test_info.param.name; });

}  // namespace
}  // namespace ipckit
