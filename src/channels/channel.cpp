#include "ipckit/channel.hpp"

#include <utility>

#include "channel_backend.hpp"
#include "ipckit/error.hpp"
#include "ipckit/registry.hpp"
#include "transports.hpp"

namespace ipckit {
namespace detail {

Registration::Registration(const Address& address) {
    auto entry = registry_record(address);
    if (!entry || address.keep) return;  // a kept object outlives this process: its record stays
    entry_ = decltype(entry_)(std::move(*entry), true);
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

std::unique_ptr<detail::SenderBackend> make_sender(std::string_view text, Role role, Deadline deadline) {
    const Address address = parse_address(text);
    auto backend = detail::transport_entry(address.transport).make_sender(address, role, deadline);
    if (role == Role::create) backend->record_created(address);
    return backend;
}

std::unique_ptr<detail::ReceiverBackend> make_receiver(std::string_view text, Role role, Deadline deadline) {
    const Address address = parse_address(text);
    auto backend = detail::transport_entry(address.transport).make_receiver(address, role, deadline);
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
