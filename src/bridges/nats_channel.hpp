// Internal: the nats:// transport's constructors, for the channel layer's transport table
// (src/channels/channel.cpp). Built from src/bridges/nats.cpp; without libnats they throw an
// Error saying the build has no NATS.
#pragma once

#include <memory>

#include "../channels/channel_backend.hpp"

namespace ipckit::detail {

std::unique_ptr<SenderBackend> make_nats_sender(const Address& address, Role role, Deadline deadline);
std::unique_ptr<ReceiverBackend> make_nats_receiver(const Address& address, Role role, Deadline deadline);

}  // namespace ipckit::detail
