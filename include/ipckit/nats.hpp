// ipckit/nats.hpp — what happened on a `nats://` channel: disconnections, and the messages they
// cost or repeated.
//
// A `nats://HOST:PORT/SUBJECT` channel (docs/nats.md) is an ordinary Sender or Receiver; this
// header adds only what the channel API has no words for. When the server goes away the channel
// reconnects by itself (bounded by `reconnect=N`, with back-off), and core NATS is at most once:
// messages in flight at that moment may be lost. ipckit counts them instead of keeping quiet:
// each sender numbers its messages (a NATS header, `Ipckit-Seq`, invisible in the payload), and
// a receiver counts the gaps in every sender's numbers, plus what the client library dropped
// because the receiver fell behind. With `?stream=NAME` (JetStream) nothing acknowledged is
// lost; `redelivered` counts what came again.
//
// Example:
//     auto rx = ipckit::Receiver::open("nats://localhost:4222/cam");
//     ...
//     const auto report = ipckit::nats_report(rx);
//     if (report.lost) std::cerr << report.lost << " messages lost: " << report.last_event << '\n';
//
// Errors: none; for a channel that is not `nats://` the report is empty (all zero).
// Thread-safety: safe to call from any thread while the channel is used by another.
#pragma once

#include <cstdint>
#include <string>

#include "ipckit/channel.hpp"

namespace ipckit {

struct NatsReport {
    bool is_nats = false;                 // false: the channel is not nats:// (the rest is zero)
    std::uint64_t disconnects = 0;        // the connection to the server was lost
    std::uint64_t reconnects = 0;         // ... and was made again
    bool gave_up = false;                 // the reconnection attempts ran out: the channel is closed
    std::uint64_t sent_disconnected = 0;  // sender: published while disconnected (held, sent on reconnect)
    std::uint64_t retried = 0;            // sender, JetStream: publications repeated until acknowledged
    std::uint64_t lost = 0;               // receiver: gaps in a sender's numbering + dropped by the client
    std::uint64_t redelivered = 0;        // receiver, JetStream: messages delivered more than once
    std::string last_event;               // e.g. "disconnected from 127.0.0.1:4222", "reconnected"
};

[[nodiscard]] NatsReport nats_report(const Sender& sender);
[[nodiscard]] NatsReport nats_report(const Receiver& receiver);

// Whether this build has the NATS transport (libnats-dev was found when it was configured).
[[nodiscard]] bool nats_available() noexcept;

// JetStream receivers acknowledge a message when the next one is asked for or the receiver is
// destroyed. A program that took a message but could not pass it on (a bridge whose
// destination is gone) hands it back instead, so that the server delivers it again. False when
// there was nothing to hand back (or the channel is not a JetStream one).
bool nats_hand_back_last(Receiver& receiver);

}  // namespace ipckit
