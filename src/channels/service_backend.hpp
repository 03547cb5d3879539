// Internal: what a transport implements to carry a service (ipckit/service.hpp). One pair of
// backends per family: the shared-memory service region (channel_service.cpp, service:/ and
// service:@) and NATS request/reply (channel_nats.cpp, nats://); the transport table
// (transports.cpp) says which one an address takes.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "channel_backend.hpp"
#include "ipckit/service.hpp"

namespace ipckit::detail {

// Both are Waitables (channel_backend.hpp), so a PollSet waits on them beside receivers: a
// server is ready when a request is there, a client when a response is (or a call in flight
// lost its server). A backend that cannot say so refuses (ready() throws).
class ServerBackend : public Waitable {
public:
    explicit ServerBackend(const Address& address) : address_(address.text) {}
    [[nodiscard]] bool ready() override;
    void record_created(const Address& address) { registration_ = Registration(address); }
    [[nodiscard]] virtual IoResult recv(Request& request, Deadline deadline) = 0;
    [[nodiscard]] virtual IoResult reply(const ReplyHandle& to, std::span<const std::byte> response) = 0;
    // Zero copy, for backends with response space in shared memory; others refuse.
    [[nodiscard]] virtual Loan loan_reply(const ReplyHandle& to, std::size_t size);
    virtual void commit_reply(const ReplyHandle& to, std::size_t size);
    [[nodiscard]] virtual std::size_t max_message_size() const = 0;
    [[nodiscard]] virtual ServerCounts counts() const = 0;
    virtual void close() noexcept = 0;
    [[nodiscard]] const std::string& address() const { return address_; }

private:
    std::string address_;
    Registration registration_;
};

class ClientBackend : public Waitable {
public:
    explicit ClientBackend(const Address& address) : address_(address.text) {}
    [[nodiscard]] bool ready() override;
    [[nodiscard]] virtual Client::Started start(std::span<const std::byte> request, Deadline deadline) = 0;
    [[nodiscard]] virtual IoResult wait(CallId call, std::vector<std::byte>& response, Deadline deadline) = 0;
    // Zero copy, for backends with request space in shared memory; others refuse.
    [[nodiscard]] virtual Loan loan(std::size_t size, Deadline deadline);
    [[nodiscard]] virtual Client::Started commit_call(std::size_t size);
    [[nodiscard]] virtual RecordView read(CallId call, Deadline deadline);
    virtual void release();
    [[nodiscard]] virtual std::size_t max_message_size() const = 0;
    [[nodiscard]] const std::string& address() const { return address_; }

private:
    std::string address_;
};

}  // namespace ipckit::detail
