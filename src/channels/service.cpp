// Server and Client: the front of ipckit/service.hpp, delegating to the backend the transport
// table names for the address (service_backend.hpp).
#include "ipckit/service.hpp"

#include <utility>

#include "ipckit/error.hpp"
#include "service_backend.hpp"
#include "transports.hpp"

namespace ipckit {
namespace detail {

namespace {
[[noreturn]] void no_zero_copy(const std::string& address) {
    throw_error(std::errc::operation_not_supported,
                "address \"" + address + "\": zero-copy calls need a shared-memory service (service:)");
}

const TransportEntry& service_entry(const Address& address) {
    const auto& entry = transport_entry(address.transport);
    if (entry.make_server == nullptr) {
        throw_error(std::errc::invalid_argument,
                    "address \"" + address.text +
                        "\" is a channel, not a service; services are service:/NAME, service:@NAME "
                        "and nats://HOST:PORT/SUBJECT");
    }
    return entry;
}

[[noreturn]] void no_poll_set(const std::string& address) {
    throw_error(std::errc::operation_not_supported,
                "address \"" + address + "\": this service cannot be waited on in a PollSet");
}
}  // namespace

bool ServerBackend::ready() {
    no_poll_set(address());
}
bool ClientBackend::ready() {
    no_poll_set(address());
}

Loan ServerBackend::loan_reply(const ReplyHandle&, std::size_t) {
    no_zero_copy(address());
}
void ServerBackend::commit_reply(const ReplyHandle&, std::size_t) {
    no_zero_copy(address());
}
Loan ClientBackend::loan(std::size_t, Deadline) {
    no_zero_copy(address());
}
Client::Started ClientBackend::commit_call(std::size_t) {
    no_zero_copy(address());
}
RecordView ClientBackend::read(CallId, Deadline) {
    no_zero_copy(address());
}
void ClientBackend::release() {
    no_zero_copy(address());
}

}  // namespace detail

Server Server::create(std::string_view text) {
    const Address address = parse_address(text);
    return Server(detail::service_entry(address).make_server(address));
}

Server::Server(std::unique_ptr<detail::ServerBackend> backend) : backend_(std::move(backend)) {}
Server::Server(Server&&) noexcept = default;
Server& Server::operator=(Server&&) noexcept = default;
Server::~Server() = default;

IoResult Server::recv(Request& request, Deadline deadline) {
    return backend_->recv(request, deadline);
}
IoResult Server::reply(const ReplyHandle& to, std::span<const std::byte> response) {
    return backend_->reply(to, response);
}
Loan Server::loan_reply(const ReplyHandle& to, std::size_t size) {
    return backend_->loan_reply(to, size);
}
void Server::commit_reply(const ReplyHandle& to, std::size_t size) {
    backend_->commit_reply(to, size);
}
std::size_t Server::max_message_size() const {
    return backend_->max_message_size();
}
const std::string& Server::address() const {
    return backend_->address();
}
ServerCounts Server::counts() const {
    return backend_->counts();
}
void Server::close() {
    backend_->close();
}

Client Client::open(std::string_view text) {
    const Address address = parse_address(text);
    return Client(detail::service_entry(address).make_client(address));
}

Client::Client(std::unique_ptr<detail::ClientBackend> backend) : backend_(std::move(backend)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

IoResult Client::call(std::span<const std::byte> request, std::vector<std::byte>& response,
                      Deadline deadline) {
    const auto started = backend_->start(request, deadline);
    if (!started.ok()) return {started.status, 0};
    return backend_->wait(started.call, response, deadline);
}
Client::Started Client::start(std::span<const std::byte> request, Deadline deadline) {
    return backend_->start(request, deadline);
}
IoResult Client::wait(CallId call, std::vector<std::byte>& response, Deadline deadline) {
    return backend_->wait(call, response, deadline);
}
Loan Client::loan(std::size_t size, Deadline deadline) {
    return backend_->loan(size, deadline);
}
Client::Started Client::commit_call(std::size_t size) {
    return backend_->commit_call(size);
}
RecordView Client::read(CallId call, Deadline deadline) {
    return backend_->read(call, deadline);
}
void Client::release() {
    backend_->release();
}
std::size_t Client::max_message_size() const {
    return backend_->max_message_size();
}
const std::string& Client::address() const {
    return backend_->address();
}

}  // namespace ipckit
