// ipckit/address.hpp — the one parser of channel addresses.
//
// An address names a transport and its object, with options after `?` separated by `&`:
//
//     fifo:/tmp/telemetry?mode=0640&framing=line
//     sysvmq:0x1234?type=2        sysvmq:/etc/hosts#7          sysvmq:id=32769
//     posixmq:/jobs               shm:/video?capacity=8MiB&wait=spin
//     topic:/ticks?subscribers=4&overflow=drop&history=8
//     unix:@svc   unix:/run/app.sock   unix+seqpacket:@svc   unix+dgram:/tmp/d.sock
//     tcp://localhost:5555        tcp://[::1]:5555            fd:3
//     nats://localhost:4222/cam.front?group=workers     nats://hub:4222/orders?stream=ORDERS
//     file:/tmp/cam.ipk?pace=recorded
//
// Options: mode=0600 (octal permissions for created objects; 0600 by default), capacity=SIZE
// (ring and queue capacity), max=SIZE (largest message), wait=spin|block|adaptive (rings),
// type=N (System V message type, > 0), framing=length|line (stream transports), keep=1 (the
// creator leaves the object behind when it goes away). SIZE is a number with an optional
// unit: B, KiB, MiB, GiB (or K, M, G, also binary).
// NATS only (docs/nats.md): group=NAME (a queue group: each message to one member),
// creds=FILE (a .creds file), token=SECRET (never shown: the address text keeps `token=***`),
// stream=NAME (JetStream: stored, acknowledged delivery), durable=NAME (the JetStream consumer;
// default "ipckit"), reconnect=N (attempts after the server goes away; default 60).
// Rings only: senders=N (1-64 lanes, one per sender). Topics only: subscribers=N (slots, 1-1024,
// 16 by default), overflow=block|drop, history=N (0-64 messages a late subscriber gets first);
// the creator's options decide, an opener takes what the region says. Rings and topics:
// stats=latency (the readers keep a histogram of commit-to-consume times, shown by `ipckit top`;
// records grow by 8 bytes), again the creator's choice.
//
// file: only: pace=recorded|fast (a receiver replays with the recorded gaps, or at once).
//
// Errors: a malformed address throws `ipckit::Error` (std::errc::invalid_argument) whose
// message quotes the address and says what was expected, e.g.
//     address "tcp://host": expected tcp://HOST:PORT with a port from 1 to 65535
// Thread-safety: parsing is a pure function.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ipckit/sysv_key.hpp"
#include "ipckit/wait_mode.hpp"

namespace ipckit {

enum class Transport {
    fd,              // fd:N — an inherited descriptor (a pipe end)
    fifo,            // fifo:PATH
    sysvmq,          // sysvmq:KEY | sysvmq:PATH#PROJ | sysvmq:id=N
    posixmq,         // posixmq:/NAME
    shm,             // shm:/NAME — the ring in POSIX shared memory; shm:@NAME — in a sealed memfd
    sysvshm,         // sysvshm:KEY | sysvshm:id=N — the ring in a System V segment
    unix_stream,     // unix:PATH | unix:@NAME
    unix_seqpacket,  // unix+seqpacket:…
    unix_dgram,      // unix+dgram:…
    tcp,             // tcp://HOST:PORT
    nats,            // nats://HOST:PORT/SUBJECT — a subject on a NATS server (docs/nats.md)
    topic,           // topic:/NAME | topic:@NAME — one publisher, many subscribers, in shared memory
    file,     // file:PATH — a recorded log: a sender appends, a receiver replays (docs/record-replay.md)
    service,  // service:/NAME | service:@NAME — request/response (docs/services.md, service.hpp)
};

enum class Framing { length, line };

[[nodiscard]] std::string_view to_string(Transport transport) noexcept;
// Whether the transport is a byte stream (and so carries ipckit's framing).
[[nodiscard]] bool is_stream(Transport transport) noexcept;

// A parsed address: what every transport has (the object and the options of any object it
// creates), then the options of one family of transports. Only the family of `transport` is
// filled; the others keep their defaults.
struct Address {
    std::string text;  // as given, for messages (a NATS token shows as ***)
    Transport transport = Transport::fifo;
    // The object: a path, a name (with its leading '/' or '@'), a System V key text, or HOST.
    std::string target;

    // Options of any transport that creates an object or has a limit.
    mode_t mode = 0600;
    std::optional<std::size_t> capacity;
    std::optional<std::size_t> max_message;
    bool keep = false;

    // fd:, fifo:, unix:, tcp:// — byte streams.
    struct Stream {
        int fd = -1;             // fd:N
        std::uint16_t port = 0;  // tcp
        Framing framing = Framing::length;
    } stream;

    // sysvmq:, sysvshm: — System V objects.
    struct Sysv {
        int id = -1;    // sysvmq:id=N, sysvshm:id=N (an existing object, opened by id)
        long type = 1;  // message type (sysvmq)
    } sysv;

    // shm:, sysvshm:, topic:, service: — shared-memory regions.
    struct Region {
        WaitMode wait = WaitMode::adaptive;
        std::uint32_t senders = 0;       // rings: 0 a 1:1 ring; N (1..64) lanes, one per sender
        std::uint32_t subscribers = 16;  // topics: subscriber slots
        bool drop = false;               // topics: overflow=drop (default block)
        std::uint32_t history = 0;       // topics: messages a late subscriber gets first
        std::uint32_t clients = 16;      // services: client slots (1..1023)
        std::uint32_t inflight = 4;      // services: calls in flight per client (1..64)
        bool latency = false;            // rings, topics: stats=latency
    } region;

    // nats:// — a subject on a NATS server.
    struct Nats {
        std::uint16_t port = 4222;
        std::string subject;  // e.g. "cam.front" (wildcards * and > to receive)
        std::string group;    // queue group
        std::string creds;    // credentials file
        std::string token;    // authentication token; `text` shows it as ***
        std::string stream;   // JetStream stream; empty: core NATS
        std::string durable;  // JetStream durable consumer name
        int reconnect = 60;   // reconnection attempts before the channel is closed
    } nats;

    // file: — a recorded log.
    struct File {
        bool pace_recorded = false;  // pace=recorded: replay with the recorded gaps (default: at once)
    } file;

    // The System V key `target` names ("1234", "0x1234", "PATH#PROJ"), parsed on first use and
    // kept: ftok needs PATH to exist, which it may not when the address is only checked. Throws
    // as SysvKey::parse. Not for an address opened by id (sysv.id >= 0).
    [[nodiscard]] const SysvKey& sysv_key() const;

private:
    mutable std::optional<SysvKey> sysv_key_;
};

[[nodiscard]] Address parse_address(std::string_view text);

// "64KiB" → 65536. Throws Error(invalid_argument) quoting `text` when it is not a size.
[[nodiscard]] std::size_t parse_size(std::string_view text);
// 65536 → "64KiB" (exact units only; otherwise bytes).
[[nodiscard]] std::string format_size(std::size_t bytes);

}  // namespace ipckit
