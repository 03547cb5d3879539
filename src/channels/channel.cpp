#include "ipckit/channel.hpp"

#include <utility>

#include "../bridges/nats_channel.hpp"
#include "channel_backend.hpp"
#include "ipckit/error.hpp"
#include "ipckit/objects.hpp"

namespace ipckit {
namespace detail {

Registration::Registration(const Address& address) {
    auto entry = registry_record(address);
    if (address.keep) return;  // a kept object outlives this process: its record stays
    entry_ = std::move(entry);
}

Registration::Registration(Registration&& other) noexcept : entry_(std::exchange(other.entry_, {})) {}

Registration& Registration::operator=(Registration&& other) noexcept {
    if (this != &other) {
        if (entry_) registry_forget(*entry_);
        entry_ = std::exchange(other.entry_, {});
    }
    return *this;
}

Registration::~Registration() {
    if (entry_) registry_forget(*entry_);
}

// Zero copy needs record space in memory both sides map; only the rings have it.
[[noreturn]] void no_zero_copy(const std::string& address, std::string_view what) {
    throw_error(std::errc::operation_not_supported, "address \"" + address + "\": zero-copy " +
                                                        std::string(what) +
                                                        " need a ring transport (shm:, sysvshm:)");
}
Loan SenderBackend::loan(std::size_t, Deadline) {
    no_zero_copy(address(), "loans");
}
void SenderBackend::commit(std::size_t) {
    no_zero_copy(address(), "loans");
}
RecordView ReceiverBackend::read(Deadline) {
    no_zero_copy(address(), "reads");
}
void ReceiverBackend::release() {
    no_zero_copy(address(), "reads");
}

}  // namespace detail

namespace {

using detail::Role;

// Each transport family has one backend file; this table says which family a transport is.
enum class Family { stream, packet, queue, ring, nats, topic, file };

Family family_of(Transport transport) {
    switch (transport) {
        case Transport::fd:
        case Transport::fifo:
        case Transport::unix_stream:
        case Transport::tcp:
            return Family::stream;
        case Transport::unix_seqpacket:
        case Transport::unix_dgram:
            return Family::packet;
        case Transport::sysvmq:
        case Transport::posixmq:
            return Family::queue;
        case Transport::shm:
        case Transport::sysvshm:
            return Family::ring;
        case Transport::nats:
            return Family::nats;
        case Transport::topic:
            return Family::topic;
        case Transport::file:
            return Family::file;
    }
    return Family::stream;  // unreachable: parse_address knows only the transports above
}

std::unique_ptr<detail::SenderBackend> make_sender_backend(const Address& address, Role role,
                                                           Deadline deadline) {
    switch (family_of(address.transport)) {
        case Family::stream:
            return detail::make_stream_sender(address, role, deadline);
        case Family::packet:
            return detail::make_packet_sender(address, role, deadline);
        case Family::queue:
            return detail::make_queue_sender(address, role, deadline);
        case Family::ring:
            return detail::make_ring_sender(address, role, deadline);
        case Family::nats:
            return detail::make_nats_sender(address, role, deadline);
        case Family::topic:
            return detail::make_topic_sender(address, role, deadline);
        case Family::file:
            return detail::make_file_sender(address, role, deadline);
    }
    return nullptr;
}

std::unique_ptr<detail::ReceiverBackend> make_receiver_backend(const Address& address, Role role,
                                                               Deadline deadline) {
    switch (family_of(address.transport)) {
        case Family::stream:
            return detail::make_stream_receiver(address, role, deadline);
        case Family::packet:
            return detail::make_packet_receiver(address, role, deadline);
        case Family::queue:
            return detail::make_queue_receiver(address, role, deadline);
        case Family::ring:
            return detail::make_ring_receiver(address, role, deadline);
        case Family::nats:
            return detail::make_nats_receiver(address, role, deadline);
        case Family::topic:
            return detail::make_topic_receiver(address, role, deadline);
        case Family::file:
            return detail::make_file_receiver(address, role, deadline);
    }
    return nullptr;
}

std::unique_ptr<detail::SenderBackend> make_sender(std::string_view text, Role role, Deadline deadline) {
    const Address address = parse_address(text);
    auto backend = make_sender_backend(address, role, deadline);
    if (role == Role::create) backend->record_created(address);
    return backend;
}

std::unique_ptr<detail::ReceiverBackend> make_receiver(std::string_view text, Role role, Deadline deadline) {
    const Address address = parse_address(text);
    auto backend = make_receiver_backend(address, role, deadline);
    if (role == Role::create) backend->record_created(address);
    return backend;
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
Loan Sender::loan(std::size_t size, Deadline deadline) {
    return backend_->loan(size, deadline);
}
void Sender::commit(std::size_t size) {
    backend_->commit(size);
}
std::size_t Sender::max_message_size() const {
    return backend_->max_message_size();
}
const std::string& Sender::address() const {
    return backend_->address();
}
SenderClose Sender::close() {
    if (!backend_) return {};
    const SenderClose report = backend_->finish();
    backend_.reset();
    return report;
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
RecordView Receiver::read(Deadline deadline) {
    return backend_->read(deadline);
}
void Receiver::release() {
    backend_->release();
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
std::size_t Receiver::waiting_at_open() const {
    return backend_->waiting_at_open();
}

std::uint64_t Receiver::missed() const {
    return backend_->missed();
}

}  // namespace ipckit
