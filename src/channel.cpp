#include "ipckit/channel.hpp"

#include "channel_backend.hpp"
#include "ipckit/error.hpp"

namespace ipckit {
namespace {

using detail::Role;

std::unique_ptr<detail::SenderBackend> make_sender(std::string_view text, Role role, Deadline deadline) {
    const Address address = parse_address(text);
    switch (address.transport) {
        case Transport::fd:
        case Transport::fifo:
        case Transport::unix_stream:
        case Transport::tcp:
            return detail::make_stream_sender(address, role, deadline);
        case Transport::unix_seqpacket:
        case Transport::unix_dgram:
            return detail::make_packet_sender(address, role, deadline);
        case Transport::sysvmq:
        case Transport::posixmq:
            return detail::make_queue_sender(address, role, deadline);
        case Transport::shm:
        case Transport::sysvshm:
            return detail::make_ring_sender(address, role, deadline);
    }
    throw_error(std::errc::invalid_argument, "address \"" + std::string(text) + "\": unsupported transport");
}

std::unique_ptr<detail::ReceiverBackend> make_receiver(std::string_view text, Role role, Deadline deadline) {
    const Address address = parse_address(text);
    switch (address.transport) {
        case Transport::fd:
        case Transport::fifo:
        case Transport::unix_stream:
        case Transport::tcp:
            return detail::make_stream_receiver(address, role, deadline);
        case Transport::unix_seqpacket:
        case Transport::unix_dgram:
            return detail::make_packet_receiver(address, role, deadline);
        case Transport::sysvmq:
        case Transport::posixmq:
            return detail::make_queue_receiver(address, role, deadline);
        case Transport::shm:
        case Transport::sysvshm:
            return detail::make_ring_receiver(address, role, deadline);
    }
    throw_error(std::errc::invalid_argument, "address \"" + std::string(text) + "\": unsupported transport");
}

}  // namespace

Sender Sender::create(std::string_view address) {
    return Sender(make_sender(address, Role::create, Deadline::never()));
}
Sender Sender::open(std::string_view address, Deadline deadline) {
    return Sender(make_sender(address, Role::open, deadline));
}
Sender::Sender(std::unique_ptr<detail::SenderBackend> backend) : backend_(std::move(backend)) {}
Sender::Sender(Sender&&) noexcept = default;
Sender& Sender::operator=(Sender&&) noexcept = default;
Sender::~Sender() = default;

IoResult Sender::send(std::span<const std::byte> message, Deadline deadline) {
    return backend_->send(message, deadline);
}
std::size_t Sender::max_message_size() const {
    return backend_->max_message_size();
}
const std::string& Sender::address() const {
    return backend_->address();
}

Receiver Receiver::create(std::string_view address) {
    return Receiver(make_receiver(address, Role::create, Deadline::never()));
}
Receiver Receiver::open(std::string_view address, Deadline deadline) {
    return Receiver(make_receiver(address, Role::open, deadline));
}
Receiver::Receiver(std::unique_ptr<detail::ReceiverBackend> backend) : backend_(std::move(backend)) {}
Receiver::Receiver(Receiver&&) noexcept = default;
Receiver& Receiver::operator=(Receiver&&) noexcept = default;
Receiver::~Receiver() = default;

IoResult Receiver::recv(std::span<std::byte> buffer, Deadline deadline) {
    return backend_->recv(buffer, deadline);
}
IoResult Receiver::recv(std::vector<std::byte>& message, Deadline deadline) {
    return backend_->recv(message, deadline);
}
std::size_t Receiver::max_message_size() const {
    return backend_->max_message_size();
}
const std::string& Receiver::address() const {
    return backend_->address();
}
int Receiver::native_handle() const {
    return backend_->native_handle();
}

}  // namespace ipckit
