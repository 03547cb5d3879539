// Internal: the one table of transports (transports.cpp). Everything that depends on which
// transport an address names looks it up here: the address parser (its scheme and the form of
// its target), the channel (which backend to build), is_stream and to_string(Transport).
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "channel_backend.hpp"
#include "ipckit/address.hpp"
#include "service_backend.hpp"

namespace ipckit::detail {

// Checks the text between "SCHEME:" and '?' and fills what the transport reads from it
// (address.target already holds it); throws Error(invalid_argument) quoting the address.
using TargetParser = void(Address& address, std::string_view target);
using SenderMaker = std::unique_ptr<SenderBackend>(const Address& address, Role role, Deadline deadline);
using ReceiverMaker = std::unique_ptr<ReceiverBackend>(const Address& address, Role role, Deadline deadline);
using ServerMaker = std::unique_ptr<ServerBackend>(const Address& address);
using ClientMaker = std::unique_ptr<ClientBackend>(const Address& address);

struct TransportEntry {
    std::string_view scheme;  // before the ':' of an address
    Transport transport;
    bool stream;  // a byte stream, so it carries ipckit's framing
    TargetParser* parse_target;
    SenderMaker* make_sender;
    ReceiverMaker* make_receiver;
    // Request/response (service.hpp), for transports that carry it; nullptr for the others.
    ServerMaker* make_server = nullptr;
    ClientMaker* make_client = nullptr;
};

// Every transport, in the order the address parser's messages list them.
[[nodiscard]] std::span<const TransportEntry> transports() noexcept;
// The row of `transport` (every value of Transport has one).
[[nodiscard]] const TransportEntry& transport_entry(Transport transport) noexcept;

}  // namespace ipckit::detail
