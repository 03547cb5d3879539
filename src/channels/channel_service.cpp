// The shared-memory service (service:/NAME, service:@NAME): kind 4 of docs/region-layout-v3.md.
// SCAFFOLD: the backends are being written; until then creating either end says so.
#include "ipckit/error.hpp"
#include "transports.hpp"

namespace ipckit::detail {

namespace {
[[noreturn]] void not_a_channel(const Address& address) {
    throw_error(std::errc::invalid_argument, "address \"" + address.text +
                                                 "\" is a service, not a channel: use ipckit::Server and "
                                                 "ipckit::Client (service.hpp)");
}
}  // namespace

std::unique_ptr<SenderBackend> make_service_sender(const Address& address, Role, Deadline) {
    not_a_channel(address);
}
std::unique_ptr<ReceiverBackend> make_service_receiver(const Address& address, Role, Deadline) {
    not_a_channel(address);
}
std::unique_ptr<ServerBackend> make_service_server(const Address& address) {
    throw_error(std::errc::function_not_supported, address.text + ": the service backend is not built yet");
}
std::unique_ptr<ClientBackend> make_service_client(const Address& address) {
    throw_error(std::errc::function_not_supported, address.text + ": the service backend is not built yet");
}

}  // namespace ipckit::detail
