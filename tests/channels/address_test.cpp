// The address parser: every transport's form, the options, and malformed addresses, whose
// errors must quote the address and say what was expected.
#include <gtest/gtest.h>

#include <string>

#include "ipckit/address.hpp"
#include "ipckit/error.hpp"
#include "ipckit/posix_queue.hpp"
#include "ipckit/posix_shm.hpp"

namespace ipckit {
namespace {

std::string error_of(std::string_view text) {
    try {
        (void)parse_address(text);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument) << text;
        return e.what();
    }
    ADD_FAILURE() << "no error for " << text;
    return {};
}

TEST(AddressTest, ParsesEveryTransport) {
    EXPECT_EQ(parse_address("fd:3").stream.fd, 3);
    EXPECT_EQ(parse_address("fd:3").transport, Transport::fd);
    EXPECT_EQ(parse_address("fifo:/tmp/x").target, "/tmp/x");
    EXPECT_EQ(parse_address("sysvmq:0x1234").transport, Transport::sysvmq);
    EXPECT_EQ(parse_address("sysvmq:4660").target, "4660");
    EXPECT_EQ(parse_address("sysvmq:/etc/hosts#7").target, "/etc/hosts#7");
    EXPECT_EQ(parse_address("sysvmq:/etc/hosts#A").target, "/etc/hosts#A");
    EXPECT_EQ(parse_address("sysvmq:id=32769").sysv.id, 32769);
    EXPECT_EQ(parse_address("sysvshm:id=0").sysv.id, 0);
    EXPECT_EQ(parse_address("posixmq:/jobs").transport, Transport::posixmq);
    EXPECT_EQ(parse_address("shm:/telemetry").target, "/telemetry");
    EXPECT_EQ(parse_address("shm:@telemetry").target, "@telemetry");
    EXPECT_EQ(parse_address("shm:@telemetry?capacity=1MiB").capacity, std::size_t{1} << 20);
    // shm:@/PATH: the memfd served on a socket file.
    EXPECT_EQ(parse_address("shm:@/run/ipckit/ring.sock").target, "@/run/ipckit/ring.sock");
    EXPECT_EQ(parse_address("sysvshm:0xbeef").transport, Transport::sysvshm);
    EXPECT_EQ(parse_address("unix:@svc").target, "@svc");
    EXPECT_EQ(parse_address("unix:/run/app.sock").transport, Transport::unix_stream);
    EXPECT_EQ(parse_address("unix+seqpacket:@svc").transport, Transport::unix_seqpacket);
    EXPECT_EQ(parse_address("unix+dgram:/tmp/d").transport, Transport::unix_dgram);
    const Address tcp = parse_address("tcp://localhost:5555");
    EXPECT_EQ(tcp.transport, Transport::tcp);
    EXPECT_EQ(tcp.target, "localhost");
    EXPECT_EQ(tcp.stream.port, 5555);
    const Address v6 = parse_address("tcp://[::1]:80");
    EXPECT_EQ(v6.target, "::1");
    EXPECT_EQ(v6.stream.port, 80);
}

TEST(AddressTest, DefaultsAreSafe) {
    const Address a = parse_address("fifo:/tmp/x");
    EXPECT_EQ(a.mode, 0600u);
    EXPECT_EQ(a.stream.framing, Framing::length);
    EXPECT_EQ(a.region.wait, WaitMode::adaptive);
    EXPECT_EQ(a.sysv.type, 1);
    EXPECT_FALSE(a.keep);
    EXPECT_FALSE(a.capacity.has_value());
}

TEST(AddressTest, ParsesOptions) {
    const Address a = parse_address("shm:/v?capacity=8MiB&wait=spin&mode=0640&keep=1&max=64KiB");
    EXPECT_EQ(a.capacity, 8u << 20);
    EXPECT_EQ(a.max_message, 64u << 10);
    EXPECT_EQ(a.region.wait, WaitMode::spin);
    EXPECT_EQ(a.mode, 0640u);
    EXPECT_TRUE(a.keep);
    EXPECT_EQ(parse_address("sysvmq:7?type=3").sysv.type, 3);
    EXPECT_EQ(parse_address("fifo:/tmp/p?framing=line").stream.framing, Framing::line);
}

TEST(AddressTest, MalformedAddressesQuoteTheAddressAndSayWhatWasExpected) {
    EXPECT_EQ(error_of("nonsense"),
              "address \"nonsense\": expected SCHEME:TARGET, where SCHEME is one of fd, fifo, sysvmq, "
              "posixmq, shm, "
              "sysvshm, unix, unix+seqpacket, unix+dgram, tcp, nats, topic, file, service: Invalid argument");
    EXPECT_NE(error_of("pipe:/x").find("unknown scheme \"pipe\""), std::string::npos);
    EXPECT_NE(error_of("tcp://host").find("expected tcp://HOST:PORT"), std::string::npos);
    EXPECT_NE(error_of("tcp://host:0").find("port from 1 to 65535"), std::string::npos);
    EXPECT_NE(error_of("tcp://host:70000").find("port from 1 to 65535"), std::string::npos);
    EXPECT_NE(error_of("tcp://::1:80").find("brackets"), std::string::npos);
    EXPECT_NE(error_of("tcp://[::1]80").find("[IPV6]:PORT"), std::string::npos);
    EXPECT_NE(error_of("posixmq:jobs").find("leading '/'"), std::string::npos);
    EXPECT_NE(error_of("shm:/a/b").find("no other '/'"), std::string::npos);
    EXPECT_NE(error_of("shm:/").find("POSIX name"), std::string::npos);
    EXPECT_NE(error_of("shm:@").find("shm:@NAME with NAME 1-107 bytes"), std::string::npos);
    EXPECT_NE(error_of("shm:@" + std::string(108, 'x')).find("1-107 bytes"), std::string::npos);
    EXPECT_NE(
        error_of("shm:@/" + std::string(107, 'x')).find("shm:@/PATH with PATH an absolute socket file path"),
        std::string::npos);
    EXPECT_NE(error_of("sysvmq:zz").find("System V key"), std::string::npos);
    EXPECT_NE(error_of("sysvmq:/etc/hosts#0").find("PROJ 1-255"), std::string::npos);
    EXPECT_NE(error_of("sysvmq:/etc/hosts#300").find("PROJ 1-255"), std::string::npos);
    EXPECT_NE(error_of("sysvmq:id=x").find("id=N"), std::string::npos);
    EXPECT_NE(error_of("sysvshm:id=-4").find("id=N"), std::string::npos);
    EXPECT_NE(error_of("fd:-1").find("fd:N"), std::string::npos);
    EXPECT_NE(error_of("fd:x").find("fd:N"), std::string::npos);
    EXPECT_NE(error_of("fifo:").find("fifo:PATH"), std::string::npos);
    EXPECT_NE(error_of("unix:").find("socket path"), std::string::npos);
    EXPECT_NE(error_of("unix:/" + std::string(200, 'a')).find("the limit (sun_path) is 107"),
              std::string::npos);
}

// One rule for POSIX names: what PosixQueue and PosixShm take, the parser takes, and what they
// refuse, it refuses (each kind at its own length limit).
TEST(AddressTest, PosixNamesFollowTheMechanismsRule) {
    const std::string longest_queue = "/" + std::string(255, 'q');
    EXPECT_NO_THROW(PosixQueue::check_name(longest_queue));
    EXPECT_EQ(parse_address("posixmq:" + longest_queue).target, longest_queue);
    const std::string longest_shm = "/" + std::string(254, 's');
    EXPECT_NO_THROW(PosixShm::check_name(longest_shm));
    EXPECT_EQ(parse_address("shm:" + longest_shm).target, longest_shm);

    EXPECT_THROW(PosixQueue::check_name(longest_queue + "q"), Error);
    EXPECT_NE(error_of("posixmq:" + longest_queue + "q").find("longer than 255"), std::string::npos);
    EXPECT_THROW(PosixShm::check_name(longest_shm + "s"), Error);
    EXPECT_NE(error_of("shm:" + longest_shm + "s").find("longer than 254"), std::string::npos);
    for (const char* name : {"/.", "/..", "/"}) {
        EXPECT_THROW(PosixQueue::check_name(name), Error) << name;
        EXPECT_THROW(PosixShm::check_name(name), Error) << name;
        (void)error_of(std::string("posixmq:") + name);
        (void)error_of(std::string("shm:") + name);
    }
}

TEST(AddressTest, BadOptionsNameTheOptionAndTheExpectedValue) {
    EXPECT_NE(error_of("fifo:/x?mode=999").find("option mode=999: expected octal"), std::string::npos);
    EXPECT_NE(error_of("fifo:/x?mode=01777").find("option mode=01777"), std::string::npos);
    EXPECT_NE(error_of("shm:/x?capacity=lots").find("option capacity=lots: expected a size"),
              std::string::npos);
    EXPECT_NE(error_of("shm:/x?capacity=0").find("above zero"), std::string::npos);
    EXPECT_NE(error_of("shm:/x?wait=nap").find("spin, block or adaptive"), std::string::npos);
    EXPECT_NE(error_of("sysvmq:1?type=0").find("above zero"), std::string::npos);
    EXPECT_NE(error_of("fifo:/x?framing=xml").find("length or line"), std::string::npos);
    EXPECT_NE(error_of("sysvmq:1?framing=line").find("keeps message boundaries"), std::string::npos);
    EXPECT_NE(error_of("fifo:/x?colour=red").find("unknown option \"colour\""), std::string::npos);
    EXPECT_NE(error_of("fifo:/x?mode").find("NAME=VALUE"), std::string::npos);
    EXPECT_NE(error_of("fifo:/x?mode=0600&&keep=1").find("empty option"), std::string::npos);
}

TEST(AddressTest, ParsesSendersForRingsOnly) {
    EXPECT_EQ(parse_address("shm:/x").region.senders, 0u);
    EXPECT_EQ(parse_address("shm:/x?senders=4").region.senders, 4u);
    EXPECT_EQ(parse_address("shm:@x?senders=64").region.senders, 64u);
    EXPECT_EQ(parse_address("sysvshm:0x1234?senders=1").region.senders, 1u);
    EXPECT_NE(error_of("shm:/x?senders=0").find("from 1 to 64"), std::string::npos);
    EXPECT_NE(error_of("shm:/x?senders=65").find("from 1 to 64"), std::string::npos);
    EXPECT_NE(error_of("fifo:/tmp/x?senders=2").find("only shm: and sysvshm:"), std::string::npos);
    EXPECT_NE(error_of("topic:/x?senders=2").find("only shm: and sysvshm:"), std::string::npos);
}

TEST(AddressTest, ParsesTopicsAndTheirOptions) {
    const Address a = parse_address("topic:/ticks?subscribers=64&overflow=drop&history=8&wait=block");
    EXPECT_EQ(a.transport, Transport::topic);
    EXPECT_EQ(a.target, "/ticks");
    EXPECT_EQ(a.region.subscribers, 64u);
    EXPECT_TRUE(a.region.drop);
    EXPECT_EQ(a.region.history, 8u);
    const Address b = parse_address("topic:@ticks");
    EXPECT_EQ(b.target, "@ticks");
    EXPECT_EQ(b.region.subscribers, 16u);
    EXPECT_FALSE(b.region.drop);
    EXPECT_EQ(b.region.history, 0u);
    EXPECT_NE(error_of("topic:/x?subscribers=0").find("from 1 to 1024"), std::string::npos);
    EXPECT_NE(error_of("topic:/x?subscribers=2000").find("from 1 to 1024"), std::string::npos);
    EXPECT_NE(error_of("topic:/x?history=65").find("from 0 to 64"), std::string::npos);
    EXPECT_NE(error_of("topic:/x?overflow=spill").find("block or drop"), std::string::npos);
    EXPECT_NE(error_of("shm:/x?history=4").find("only topic: has it"), std::string::npos);
    EXPECT_NE(error_of("topic:ticks").find("expected topic:/NAME"), std::string::npos);
}

TEST(AddressTest, StatsLatencyIsARingAndTopicOption) {
    EXPECT_TRUE(parse_address("shm:/x?stats=latency").region.latency);
    EXPECT_TRUE(parse_address("shm:/x?senders=4&stats=latency").region.latency);
    EXPECT_TRUE(parse_address("sysvshm:0x1234?stats=latency").region.latency);
    EXPECT_TRUE(parse_address("topic:/x?stats=latency&overflow=drop").region.latency);
    EXPECT_FALSE(parse_address("shm:/x").region.latency);
    EXPECT_NE(error_of("shm:/x?stats=all").find("expected latency"), std::string::npos)
        << error_of("shm:/x?stats=all");
    EXPECT_NE(error_of("fifo:/tmp/x?stats=latency").find("only shm:, sysvshm: and topic:"),
              std::string::npos);
}

TEST(AddressTest, ParsesFileLogsAndTheirPace) {
    const Address a = parse_address("file:/tmp/cam.ipk?pace=recorded&max=1MiB");
    EXPECT_EQ(a.transport, Transport::file);
    EXPECT_EQ(a.target, "/tmp/cam.ipk");
    EXPECT_TRUE(a.file.pace_recorded);
    EXPECT_EQ(a.max_message, 1u << 20);
    EXPECT_FALSE(parse_address("file:relative.ipk?pace=fast").file.pace_recorded);
    EXPECT_NE(error_of("file:").find("expected file:PATH"), std::string::npos);
    EXPECT_NE(error_of("file:/x?pace=slow").find("recorded or fast"), std::string::npos);
    EXPECT_NE(error_of("topic:/x?pace=recorded").find("only file: has it"), std::string::npos);
}

TEST(SizeTest, ParsesAndFormatsUnits) {
    EXPECT_EQ(parse_size("8"), 8u);
    EXPECT_EQ(parse_size("8B"), 8u);
    EXPECT_EQ(parse_size("64KiB"), 65536u);
    EXPECT_EQ(parse_size("1MiB"), 1u << 20);
    EXPECT_EQ(parse_size("2G"), 2ull << 30);
    EXPECT_THROW((void)parse_size("KiB"), Error);
    EXPECT_THROW((void)parse_size("1.5MiB"), Error);
    EXPECT_THROW((void)parse_size("99999999999999999999GiB"), Error);
    EXPECT_EQ(format_size(65536), "64KiB");
    EXPECT_EQ(format_size(1u << 20), "1MiB");
    EXPECT_EQ(format_size(1000), "1000B");
}

}  // namespace
}  // namespace ipckit
