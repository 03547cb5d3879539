// `ipckit send` and `ipckit recv` end to end: the built tool, run as separate processes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/error.hpp"
#include "ipckit/mapping.hpp"
#include "ipckit/posix_shm.hpp"
#include "rings/topic_layout.hpp"
#include "support/process.hpp"

namespace ipckit {
namespace {

// Records of the channels these tests create (and of the creators they kill) stay out of the
// user's registry.
[[maybe_unused]] const auto* const registry_environment =
    ::testing::AddGlobalTestEnvironment(new test::PrivateRegistry);

using namespace std::chrono_literals;
using test::bin_path;
using test::run;

std::string tool() {
    return bin_path("ipckit");
}

TEST(ToolChannelTest, LectureFifoExampleWorksFromTheShell) {
    // The lecture's two terminals: `cat` on the FIFO in one, `echo Hello >` in the other;
    // here ipckit recv is the reader and the shell's own echo the writer, through line framing.
    test::TempDir dir;
    const std::string address = "fifo:" + dir.file("abc_pipe") + "?framing=line";
    auto receiver = test::spawn([&] {
        auto r = run({tool(), "recv", address, "--count", "2", "--timeout", "20"});
        std::fputs(r.out.c_str(), stdout);
        return r.out == "Hello\nWorld\n" && r.exit_code == 0 ? 0 : 1;
    });
    // Wait for the receiver to create the FIFO, then write to it as the shell would.
    const auto shell = run({"/bin/sh", "-c",
                            "for i in $(seq 200); do [ -p '" + dir.file("abc_pipe") +
                                "' ] && break; sleep 0.05; done; printf 'Hello\\nWorld\\n' > '" +
                                dir.file("abc_pipe") + "'"});
    EXPECT_EQ(shell.exit_code, 0) << shell.err;
    EXPECT_EQ(receiver.wait(30s), 0);
}

TEST(ToolChannelTest, SendsStdinLinesAndRecvPrintsThemUntilTheSenderCloses) {
    test::TempDir dir;
    const std::string address = "unix:" + dir.file("svc.sock");
    auto receiver = test::spawn([&] {
        auto r = run({tool(), "recv", address, "--timeout", "20"});
        return r.out == "one\ntwo\nthree\n" && r.exit_code == 0 ? 0 : 1;
    });
    const auto sender = run({tool(), "send", address, "--timeout", "20"}, "one\ntwo\nthree\n");
    EXPECT_EQ(sender.exit_code, 0) << sender.err;
    EXPECT_EQ(receiver.wait(30s), 0);
}

// The README's three-shell example: three `ipckit recv topic:/x`, then `seq … | ipckit send
// topic:/x`; each receiver prints every line, whole and in order.
TEST(ToolChannelTest, ThreeTopicReceiversEachGetEveryLine) {
    const std::string name = "/" + test::unique_name("ipckit-test");
    const std::string address = "topic:" + name;
    std::string lines;
    for (int i = 1; i <= 20000; ++i)
        lines += std::to_string(i) + "\n";
    std::vector<test::Child> receivers;
    for (int i = 0; i < 3; ++i) {
        receivers.push_back(test::spawn([&] {
            auto r = run({tool(), "recv", address, "--timeout", "30"});
            if (r.exit_code != 0) std::fprintf(stderr, "recv: %s\n", r.err.c_str());
            return r.out == lines && r.exit_code == 0 ? 0 : 1;
        }));
    }
    // A subscriber sees what follows its join: send once all three hold a slot.
    std::uint32_t attached = 0;
    for (int attempt = 0; attempt < 3000 && attached < 3; ++attempt) {
        std::this_thread::sleep_for(10ms);
        try {
            auto shm = PosixShm::open(name, Access::read_only);
            auto map = shm.map(Access::read_only);
            auto* header = reinterpret_cast<const detail::topic::TopicHeader*>(map.bytes().data());
            if (map.bytes().size() < detail::topic::header_size(16)) continue;
            const auto* slots = detail::topic::slots(const_cast<detail::topic::TopicHeader*>(header));
            attached = 0;
            for (int i = 0; i < 16; ++i) {
                const auto owner = detail::ring::OwnerWord::unpack(slots[i].end.owner.load());
                if (owner.state == detail::ring::EndpointState::attached) ++attached;
            }
        } catch (const Error&) {
            // not created yet
        }
    }
    ASSERT_EQ(attached, 3u);
    const auto sender = run({tool(), "send", address, "--timeout", "20"}, lines);
    EXPECT_EQ(sender.exit_code, 0) << sender.err;
    for (auto& r : receivers)
        EXPECT_EQ(r.wait(60s), 0);
}

TEST(ToolChannelTest, SendsArgumentsOverEveryKindOfQueue) {
    for (const std::string& address : {"posixmq:/" + test::unique_name("ipckit-test"),
                                       std::string("sysvmq:0x1d") + std::to_string(::getpid() % 100000)}) {
        auto receiver = test::spawn([&] {
            auto r = run({tool(), "recv", address, "--count", "2", "--timeout", "20"});
            if (r.exit_code != 0) std::fprintf(stderr, "%s", r.err.c_str());
            return r.out == "alpha\nbeta\n" && r.exit_code == 0 ? 0 : 1;
        });
        const auto sender = run({tool(), "send", address, "--timeout", "20", "alpha", "beta"});
        EXPECT_EQ(sender.exit_code, 0) << address << ": " << sender.err;
        EXPECT_EQ(receiver.wait(30s), 0) << address;
    }
}

TEST(ToolChannelTest, RecvTimesOutWithAOneLineReasonAndStatusOne) {
    test::TempDir dir;
    const auto r = run({tool(), "recv", "unix:" + dir.file("quiet.sock"), "--timeout", "0.2"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no message within 0.2 s"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(ToolChannelTest, MalformedAddressIsOneLineOnStderr) {
    const auto r = run({tool(), "send", "tcp://nowhere", "x"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(
        r.err,
        "ipckit: address \"tcp://nowhere\": expected tcp://HOST:PORT with a port from 1 to 65535: Invalid "
        "argument\n");
}

TEST(ToolChannelTest, SendToNobodyFailsClearly) {
    test::TempDir dir;
    const auto r = run({tool(), "send", "--open", "unix:" + dir.file("absent.sock"), "x"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("absent.sock"), std::string::npos) << r.err;
}

// ---- Delivery as docs/channels.md's table says -------------------------------------------

std::string sysv_key_text(int salt) {
    return "0x1e" + std::to_string((::getpid() * 7 + salt) % 100000);
}

TEST(ToolChannelTest, AQueueLeftHoldingMessagesStaysAndTheNextReceiverIsTold) {
    for (const std::string& address :
         {"posixmq:/" + test::unique_name("ipckit-left"), "sysvmq:" + sysv_key_text(1)}) {
        // Nobody receives: the sender creates the queue, stores both messages and exits 0,
        // saying where they are.
        const auto sender = run({tool(), "send", "--create", address, "alpha", "beta"});
        EXPECT_EQ(sender.exit_code, 0) << address << ": " << sender.err;
        EXPECT_NE(sender.err.find("2 message(s) stay in the queue"), std::string::npos) << sender.err;
        EXPECT_NE(sender.err.find("ipckit rm " + address), std::string::npos) << sender.err;
        EXPECT_EQ(std::count(sender.err.begin(), sender.err.end(), '\n'), 1) << sender.err;
        // A later receiver gets them, and a note that they were waiting.
        const auto receiver = run({tool(), "recv", "--open", address, "--count", "2", "--timeout", "10"});
        EXPECT_EQ(receiver.exit_code, 0) << address << ": " << receiver.err;
        EXPECT_EQ(receiver.out, "alpha\nbeta\n") << address;
        EXPECT_NE(receiver.err.find("2 message(s) were already waiting"), std::string::npos) << receiver.err;
        const auto removed = run({tool(), "rm", address});
        EXPECT_EQ(removed.exit_code, 0) << address << ": " << removed.err;
    }
}

TEST(ToolChannelTest, AnEmptyQueueGoesWithItsCreator) {
    const std::string address = "posixmq:/" + test::unique_name("ipckit-empty");
    auto receiver = test::spawn([&] {
        auto r = run({tool(), "recv", address, "--count", "1", "--timeout", "20"});
        return r.out == "one\n" && r.exit_code == 0 ? 0 : 1;
    });
    const auto sender = run({tool(), "send", address, "--timeout", "20", "one"});
    EXPECT_EQ(sender.exit_code, 0) << sender.err;
    EXPECT_EQ(sender.err.find("stay in the queue"), std::string::npos) << sender.err;
    EXPECT_EQ(receiver.wait(30s), 0);
    // The receiver created it and is gone; nothing is left to open.
    const auto again = run({tool(), "recv", "--open", address, "--timeout", "0.1"});
    EXPECT_NE(again.exit_code, 0);
}

TEST(ToolChannelTest, ASystemVReceiverWhoseQueueIsRemovedFailsWithAReason) {
    const std::string address = "sysvmq:" + sysv_key_text(2);
    auto receiver = test::spawn([&] {
        auto r = run({tool(), "recv", "--create", address, "--count", "1"});
        std::fputs(r.err.c_str(), stderr);
        const bool said =
            r.err.find("removed") != std::string::npos && std::count(r.err.begin(), r.err.end(), '\n') == 1;
        return r.exit_code != 0 && said ? 0 : 1;
    });
    // Waits until the receiver has created the queue, then removes it as ipcrm would.
    bool removed = false;
    for (int i = 0; i < 400 && !removed; ++i) {
        removed = run({tool(), "rm", address}).exit_code == 0;
        if (!removed) std::this_thread::sleep_for(25ms);
    }
    EXPECT_TRUE(removed);
    EXPECT_EQ(receiver.wait(30s), 0);
}

TEST(ToolChannelTest, AFifoThatEndsInsideAFrameHeaderIsAnError) {
    test::TempDir dir;
    const std::string path = dir.file("torn");
    auto receiver = test::spawn([&] {
        auto r = run({tool(), "recv", "fifo:" + path, "--timeout", "20"});
        std::fputs(r.err.c_str(), stderr);
        return r.exit_code != 0 && r.err.find("inside a frame header (4 of 8 bytes)") != std::string::npos
                   ? 0
                   : 1;
    });
    const auto shell = run({"/bin/sh", "-c",
                            "for i in $(seq 200); do [ -p '" + path + "' ] && break; sleep 0.05; done; " +
                                "printf 'abcd' > '" + path + "'"});
    EXPECT_EQ(shell.exit_code, 0) << shell.err;
    EXPECT_EQ(receiver.wait(30s), 0);
}

TEST(ToolChannelTest, ARingSenderWithNobodyToReceiveFailsSayingNothingWasDelivered) {
    for (const std::string& address :
         {"shm:/" + test::unique_name("ipckit-nobody"), "shm:@" + test::unique_name("ipckit-nobody")}) {
        const auto sender = run({tool(), "send", address, "--timeout", "0.3", "hello"});
        EXPECT_NE(sender.exit_code, 0) << address << ": " << sender.err;
        EXPECT_NE(sender.err.find("nothing was delivered"), std::string::npos)
            << address << ": " << sender.err;
    }
}

TEST(ToolChannelTest, ARingSenderWaitsForItsReceiverAndLingersUntilItHasTakenEverything) {
    for (const std::string& address :
         {"shm:/" + test::unique_name("ipckit-ring"), "shm:@" + test::unique_name("ipckit-ring")}) {
        // The sender comes first and creates the ring; the receiver comes later.
        auto sender = test::spawn([&] {
            auto r = run({tool(), "send", "--create", address, "one", "two", "three"});
            std::fputs(r.err.c_str(), stderr);
            return r.exit_code;
        });
        test::RunResult received;
        for (int i = 0; i < 400; ++i) {
            received = run({tool(), "recv", "--open", address, "--count", "3", "--timeout", "20"});
            if (received.exit_code == 0) break;
            std::this_thread::sleep_for(25ms);
        }
        EXPECT_EQ(received.out, "one\ntwo\nthree\n") << address << ": " << received.err;
        EXPECT_EQ(sender.wait(30s), 0) << address;
    }
}

TEST(ToolChannelTest, HelpAndVersion) {
    const auto help = run({tool(), "--help"});
    EXPECT_EQ(help.exit_code, 0);
    for (const char* command : {"send", "recv"})
        EXPECT_NE(help.out.find(command), std::string::npos) << command;
    const auto recv_help = run({tool(), "recv", "--help"});
    EXPECT_EQ(recv_help.exit_code, 0);
    EXPECT_NE(recv_help.out.find("--count"), std::string::npos);
    const auto version = run({tool(), "--version"});
    EXPECT_EQ(version.exit_code, 0);
    EXPECT_EQ(version.out.rfind("ipckit ", 0), 0u) << version.out;
    const auto none = run({tool()});
    EXPECT_EQ(none.exit_code, 2);
    EXPECT_NE(none.err.find("subcommand"), std::string::npos);
}

}  // namespace
}  // namespace ipckit
