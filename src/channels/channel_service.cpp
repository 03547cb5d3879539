// The shared-memory service (service:/NAME, service:@NAME): the service region of layout kind 4
// (rings/service_region.hpp) in POSIX shared memory, or for service:@NAME in a sealed memfd
// served on an abstract socket (rings/region_memory.hpp, as shm:@NAME). docs/services.md.
//
// Only the server creates. A server creates the region, or opens the one a dead (or closed)
// server left and takes it over in place: service:/NAME the file (which a server that closes
// removes, unless keep=1, before it lets go of the server end, so that a successor never finds
// a name about to go); service:@NAME the memfd, which every holder serves on the abstract name
// once its server is gone (rings/shared_region.hpp), so clients keep it reachable.
//
// A client needs no server to open: each call attaches (to the region, then to a free slot)
// within its deadline. A client outlives its server: its calls in flight end closed, and the
// next call waits for the next server, woken by that server's attach to the region it maps.
// Only a region whose name was removed (its server closed) or made again, or a service:@NAME
// memfd whose name serves other memory now, is let go of: the next call maps what the name
// names then.
#include <algorithm>
#include <chrono>
#include <optional>

#include "channel_backend.hpp"
#include "core/backoff.hpp"
#include "ipckit/error.hpp"
#include "rings/region_memory.hpp"
#include "rings/service_region.hpp"
#include "transports.hpp"

namespace ipckit::detail {

namespace {

using Clock = Deadline::Clock;
using service::ServiceClient;
using service::ServiceServer;

// How often a client waiting for a server looks whether the region's name was removed (a server
// that closed) or made again; a server's attach to the region it maps wakes it at once.
constexpr auto kNameCheck = std::chrono::milliseconds(50);

[[noreturn]] void not_a_channel(const Address& address) {
    throw_error(std::errc::invalid_argument, "address \"" + address.text +
                                                 "\" is a service, not a channel: use ipckit::Server and "
                                                 "ipckit::Client (service.hpp)");
}

service::ServiceOptions options_of(const Address& address) {
    return {address.region.clients, address.region.inflight,
            address.max_message.value_or(service::kDefaultMaxMessage)};
}

// The error again, its message prefixed by the address (the region's messages name no address).
[[noreturn]] void rethrow_naming(const std::string& address, const Error& e) {
    std::string text = e.what();
    const std::string suffix = ": " + e.code().message();
    if (text.ends_with(suffix)) text.resize(text.size() - suffix.size());
    throw Error(e.code(), address + ": " + text);
}

bool absent(const Error& e) {
    return e.code() == std::errc::no_such_file_or_directory || e.code() == std::errc::connection_refused ||
           e.code() == std::errc::timed_out;
}

Deadline slice_of(Deadline deadline) {
    return Deadline::at(std::min(deadline.when(), Clock::now() + kNameCheck));
}

class ServiceServerBackend final : public ServerBackend {
public:
    explicit ServiceServerBackend(const Address& address)
        : ServerBackend(address), place_(region_place(address)), keep_(address.keep) {
        const service::ServiceOptions options = options_of(address);
        bool created = false;
        memory_.emplace(create_or_open(options, created));
        if (memory_->truncatable()) guard_ = BusGuard(memory_->bytes(), address.text);
        const auto bytes = memory_->bytes();
        const WaitMode wait = address.region.wait;
        try {
            server_ = created ? std::make_unique<ServiceServer>(bytes, wait)
                              : attach_while_formatting(
                                    Role::open, [&] { return std::make_unique<ServiceServer>(bytes, wait); });
        } catch (const Error& e) {
            if (created) memory_->unlink_name(place_);
            rethrow_naming(address.text, e);
        }
        record_created(address);
    }
    ~ServiceServerBackend() override { close(); }

    IoResult recv(Request& request, Deadline deadline) override {
        check_open();
        const IoResult r = server_->recv(request, deadline);
        guard_.check();
        return r;
    }
    IoResult reply(const ReplyHandle& to, std::span<const std::byte> response) override {
        check_open();
        return server_->reply(to, response);
    }
    Loan loan_reply(const ReplyHandle& to, std::size_t size) override {
        check_open();
        return server_->loan_reply(to, size);
    }
    void commit_reply(const ReplyHandle& to, std::size_t size) override {
        check_open();
        server_->commit_reply(to, size);
    }
    std::size_t max_message_size() const override { return server_ ? server_->max_message_size() : 0; }
    ServerCounts counts() const override { return server_ ? server_->counts() : ServerCounts{}; }
    void close() noexcept override {
        if (!server_) return;
        // The name first, then the server end: a successor never opens a name about to go.
        if (!keep_) memory_->unlink_name(place_);
        server_.reset();
        guard_ = BusGuard();
        memory_.reset();
    }

    bool ready() override { return server_ && server_->has_request(); }
    Arm arm(std::vector<int>& fds) override {
        check_open();
        return server_->arm(fds) ? Arm::armed : Arm::ready;
    }
    void disarm() noexcept override {
        if (server_) server_->disarm();
    }

private:
    void check_open() const {
        if (!server_) throw_error(std::errc::bad_file_descriptor, address() + ": the server is closed");
    }

    // A region that is there is a dead or closed server's (taken over), or a live one's (refused
    // when its end is claimed). service:/NAME: the file; service:@NAME: the memfd its holders
    // serve (any holder serves it once its server is gone: rings/shared_region.hpp). One that
    // goes between our look and our open is made again.
    RegionMemory create_or_open(const service::ServiceOptions& options, bool& created) const {
        const std::size_t size = service::region_size(options);
        const auto format = [&](std::span<std::byte> region) { service::format(region, options); };
        const auto grace = Deadline::after(kFormatGrace);
        for (auto backoff = Backoff::for_peer();;) {
            try {
                created = true;
                return RegionMemory::create(place_, size, format);
            } catch (const Error& e) {
                if (e.code() != std::errc::file_exists && e.code() != std::errc::address_in_use) throw;
            }
            try {
                created = false;
                return RegionMemory::open(place_, grace);
            } catch (const Error& e) {
                // Gone meanwhile, or a holder handing the name over (it hung up on us): again.
                if ((!absent(e) && e.code() != std::errc::permission_denied) || !backoff.pause(grace)) throw;
            }
        }
    }

    RegionPlace place_;
    bool keep_;
    std::optional<RegionMemory> memory_;
    BusGuard guard_;  // after the memory: unregistered before it is unmapped
    std::unique_ptr<ServiceServer> server_;
};

class ServiceClientBackend final : public ClientBackend {
public:
    explicit ServiceClientBackend(const Address& address)
        : ClientBackend(address), place_(region_place(address)), wait_(address.region.wait) {}

    Client::Started start(std::span<const std::byte> request, Deadline deadline) override {
        for (auto backoff = Backoff::for_message();;) {
            if (ensure_server(deadline) != Status::ok) return {Status::timed_out, {}};
            const auto started = session_->end->start(request, deadline);
            session_->guard.check();
            // closed: the server went between our look and the send; look again.
            if (started.status != Status::closed) return started;
            if (!backoff.pause(deadline)) return {Status::timed_out, {}};
        }
    }
    IoResult wait(CallId call, std::vector<std::byte>& response, Deadline deadline) override {
        if (orphaned(call)) return {Status::closed, 0};
        const IoResult r = session().wait(call, response, deadline);
        session_->guard.check();
        return r;
    }
    Loan loan(std::size_t size, Deadline deadline) override {
        for (auto backoff = Backoff::for_message();;) {
            if (ensure_server(deadline) != Status::ok) return {Status::timed_out, {}};
            const Loan loan = session_->end->loan(size, deadline);
            if (loan.status != Status::closed) return loan;
            if (!backoff.pause(deadline)) return {Status::timed_out, {}};
        }
    }
    Client::Started commit_call(std::size_t size) override { return session().commit_call(size); }
    RecordView read(CallId call, Deadline deadline) override {
        if (orphaned(call)) return {Status::closed, {}};
        const RecordView view = session().read(call, deadline);
        session_->guard.check();
        return view;
    }
    void release() override { session().release(); }
    std::size_t max_message_size() const override { return session_ ? session_->end->max_message_size() : 0; }

    bool ready() override { return !orphaned_.empty() || (session_ && session_->end->ready()); }
    // With no region yet (no call was made), nothing can come: armed with nothing to poll.
    Arm arm(std::vector<int>& fds) override {
        if (!orphaned_.empty()) return Arm::ready;
        if (!session_) return Arm::armed;
        return session_->end->arm(fds) ? Arm::armed : Arm::ready;
    }
    void disarm() noexcept override {
        if (session_) session_->end->disarm();
    }
    // A server in another PID namespace has no pidfd here: its death is looked for in slices.
    bool watches_peer_by_polling() const override { return session_ && !session_->end->server_pollable(); }

private:
    struct Session {
        RegionMemory memory;
        BusGuard guard;  // after the memory: unregistered before it is unmapped
        std::unique_ptr<ServiceClient> end;
    };

    ServiceClient& session() {
        if (!session_)
            throw_error(std::errc::invalid_argument, address() + ": no call in flight (no call was started)");
        return *session_->end;
    }

    bool orphaned(CallId call) {
        const auto it = std::find(orphaned_.begin(), orphaned_.end(), call.id);
        if (it == orphaned_.end()) return false;
        orphaned_.erase(it);
        return true;
    }

    // Maps the region and claims a slot if the region is there by `deadline`: false if not.
    bool attach(Deadline deadline) {
        std::optional<RegionMemory> memory;
        try {
            memory.emplace(RegionMemory::open(place_, deadline));
        } catch (const Error& e) {
            if (absent(e)) return false;
            throw;
        }
        auto session = std::make_unique<Session>(Session{std::move(*memory), BusGuard(), nullptr});
        if (session->memory.truncatable()) session->guard = BusGuard(session->memory.bytes(), address());
        const auto bytes = session->memory.bytes();
        try {
            session->end = attach_while_formatting(
                Role::open, [&] { return std::make_unique<ServiceClient>(bytes, wait_, sequence_); });
        } catch (const Error& e) {
            rethrow_naming(address(), e);
        }
        session_ = std::move(session);
        return true;
    }

    // The server we are attached to will not come back here: its calls in flight ended closed.
    void drop() {
        for (const std::uint64_t id : session_->end->calls())
            orphaned_.push_back(id);
        sequence_ = session_->end->next_sequence();
        session_.reset();
    }

    // service:/NAME: its name was removed (a server that closed) or made again. service:@NAME is
    // served by its holders, this client among them, so a new server takes it over in place;
    // unless it came while the name was free (its server killed, no holder bound yet) and made
    // new memory under it: ours is then superseded (rings/shared_region.hpp).
    [[nodiscard]] bool gone_for_good() const { return !session_->memory.still_named(place_); }

    // A live server attached to the region we hold, by `deadline`: ok or timed_out.
    Status ensure_server(Deadline deadline) {
        for (;;) {
            if (!session_) {
                if (!attach(slice_of(deadline))) {
                    if (Clock::now() >= deadline.when() || deadline.is_immediate()) return Status::timed_out;
                    continue;
                }
            }
            if (session_->end->server() == ServiceClient::Server::ready) return Status::ok;
            if (gone_for_good()) {
                drop();
                continue;
            }
            if (Clock::now() >= deadline.when() || deadline.is_immediate()) return Status::timed_out;
            (void)session_->end->wait_for_server(slice_of(deadline));
            session_->guard.check();
        }
    }

    RegionPlace place_;
    WaitMode wait_;
    std::unique_ptr<Session> session_;
    std::vector<std::uint64_t> orphaned_;  // calls of a region let go of: they ended closed
    std::uint64_t sequence_ = 1;
};

}  // namespace

std::unique_ptr<SenderBackend> make_service_sender(const Address& address, Role, Deadline) {
    not_a_channel(address);
}
std::unique_ptr<ReceiverBackend> make_service_receiver(const Address& address, Role, Deadline) {
    not_a_channel(address);
}
std::unique_ptr<ServerBackend> make_service_server(const Address& address) {
    return std::make_unique<ServiceServerBackend>(address);
}
std::unique_ptr<ClientBackend> make_service_client(const Address& address) {
    return std::make_unique<ServiceClientBackend>(address);
}

}  // namespace ipckit::detail
