// The table of transports: one row per address scheme.
//
// How to add a transport (`file:PATH` was the last one added: channel_file.cpp):
//   1. Write src/channels/channel_NAME.cpp: a SenderBackend and a ReceiverBackend
//      (channel_backend.hpp), and `make_NAME_sender` / `make_NAME_receiver` that build them. Its
//      target is checked by one of address.cpp's forms (parse_path_target for a plain path,
//      parse_posix_name_target, ...) or by a `parse_NAME_target` of its own in that file.
//   2. Here: declare them on the lines below and add the transport's row to kTransports.
//   3. Name it in `Transport` (include/ipckit/address.hpp), the value users switch on.
// Nothing else switches on the transport: the parser, the channel, is_stream and to_string all
// read this table. (An option only the new transport takes is one case in address.cpp's
// parse_option; `ipckit ls` finds what a transport leaves behind by ObjectKind, in locator.cpp.)
#include "transports.hpp"

#include <array>

namespace ipckit::detail {

// The target forms (address.cpp) and the backends (one file per family of transports).
TargetParser parse_fd_target, parse_path_target, parse_sysv_target, parse_posix_name_target, parse_shm_target,
    parse_unix_target, parse_tcp_target, parse_nats_target, parse_topic_target;
SenderMaker make_stream_sender, make_packet_sender, make_queue_sender, make_ring_sender, make_nats_sender,
    make_topic_sender, make_file_sender;
ReceiverMaker make_stream_receiver, make_packet_receiver, make_queue_receiver, make_ring_receiver,
    make_nats_receiver, make_topic_receiver, make_file_receiver, make_service_receiver;
SenderMaker make_service_sender;
ServerMaker make_service_server, make_nats_server;
ClientMaker make_service_client, make_nats_client;

namespace {

// clang-format off
constexpr std::array<TransportEntry, 14> kTransports{{
    // scheme          transport                    stream target                    backend (channel_*.cpp)
    {"fd",             Transport::fd,               true,  parse_fd_target,          make_stream_sender, make_stream_receiver},
    {"fifo",           Transport::fifo,             true,  parse_path_target,        make_stream_sender, make_stream_receiver},
    {"sysvmq",         Transport::sysvmq,           false, parse_sysv_target,        make_queue_sender, make_queue_receiver},
    {"posixmq",        Transport::posixmq,          false, parse_posix_name_target,  make_queue_sender, make_queue_receiver},
    {"shm",            Transport::shm,              false, parse_shm_target,         make_ring_sender, make_ring_receiver},
    {"sysvshm",        Transport::sysvshm,          false, parse_sysv_target,        make_ring_sender, make_ring_receiver},
    {"unix",           Transport::unix_stream,      true,  parse_unix_target,        make_stream_sender, make_stream_receiver},
    {"unix+seqpacket", Transport::unix_seqpacket,   false, parse_unix_target,        make_packet_sender, make_packet_receiver},
    {"unix+dgram",     Transport::unix_dgram,       false, parse_unix_target,        make_packet_sender, make_packet_receiver},
    {"tcp",            Transport::tcp,              true,  parse_tcp_target,         make_stream_sender, make_stream_receiver},
    {"nats",           Transport::nats,             false, parse_nats_target,        make_nats_sender, make_nats_receiver,
                                                                                     make_nats_server, make_nats_client},
    {"topic",          Transport::topic,            false, parse_topic_target,       make_topic_sender, make_topic_receiver},
    {"file",           Transport::file,             false, parse_path_target,        make_file_sender, make_file_receiver},
    {"service",        Transport::service,          false, parse_topic_target,       make_service_sender, make_service_receiver,
                                                                                     make_service_server, make_service_client},
}};
// clang-format on

}  // namespace

std::span<const TransportEntry> transports() noexcept {
    return kTransports;
}

const TransportEntry& transport_entry(Transport transport) noexcept {
    for (const auto& entry : kTransports) {
        if (entry.transport == transport) return entry;
    }
    return kTransports.front();  // unreachable: every Transport has a row
}

}  // namespace ipckit::detail
