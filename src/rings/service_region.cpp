// The service region (layout kind 4): service_region.hpp, docs/ring-layout.md "Kind 4: service".
#include "service_region.hpp"

#include <sched.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <new>
#include <string>

#include "ipckit/error.hpp"
#include "region.hpp"
#include "sync/futex.hpp"
#include "wait.hpp"

namespace ipckit::detail::service {

using Clock = Deadline::Clock;
using region::Kind;
using region::str;
using ring::EndpointState;
using ring::OwnerWord;

namespace {

std::uint64_t load_id(const std::byte* bytes) noexcept {
    std::uint64_t id = 0;
    std::memcpy(&id, bytes, kIdSize);
    return id;
}
void store_id(std::byte* bytes, std::uint64_t id) noexcept {
    std::memcpy(bytes, &id, kIdSize);
}
std::uint32_t id_epoch(std::uint64_t id) noexcept {
    return static_cast<std::uint32_t>(id >> kSequenceBits) & 0xffffff;
}

// The server end as a client sees it: attached (after every slot was claimed) and alive.
bool server_ready(const EndpointLine& line, OwnerWord& owner) noexcept {
    owner = OwnerWord::unpack(line.owner.load(std::memory_order_acquire));
    return owner.state == EndpointState::attached &&
           ring::holder_alive(line.holder.load(std::memory_order_acquire));
}

// The client in a slot: the holder of its request ring's producer end.
const EndpointLine& client_line(std::span<std::byte> ring) noexcept {
    return std::launder(reinterpret_cast<ring::RingHeader*>(ring.data()))->producer_end;
}

void check_ring(std::uint32_t slot, const char* which, std::size_t capacity, std::uint64_t expected) {
    if (capacity != expected) {
        throw_error(std::errc::protocol_error, "service: slot " + str(slot) + "'s " + which + " ring holds " +
                                                   str(capacity) + " bytes, but the service header says " +
                                                   str(expected));
    }
}

}  // namespace

// ---- The region ----

std::size_t message_limit(std::uint64_t capacity, std::uint32_t inflight) noexcept {
    const std::uint64_t share = (capacity / (std::uint64_t{inflight} + 1)) & ~std::uint64_t{7};
    const std::uint64_t by_share = share > 2 * kIdSize ? share - 2 * kIdSize : 0;
    const std::uint64_t by_ring = Ring::max_message_size(capacity) - kIdSize;
    return static_cast<std::size_t>(std::min(by_share, by_ring));
}

std::uint64_t ring_capacity(std::uint32_t inflight, std::size_t max_message) {
    const std::uint64_t record = region::record_size(std::uint64_t{max_message} + kIdSize);
    // At least a line: the slot's second ring starts after the first's data area, on a line.
    const std::uint64_t need = std::max<std::uint64_t>((std::uint64_t{inflight} + 1) * record, kLineSize);
    if (max_message > (std::uint64_t{1} << 30) || need > region::kMaxCapacity) {
        throw_error(std::errc::invalid_argument, "service: " + str(inflight) + " calls in flight of " +
                                                     str(max_message) + " bytes need rings larger than " +
                                                     str(region::kMaxCapacity) + " bytes");
    }
    return std::bit_ceil(need);
}

std::size_t region_size(const ServiceOptions& options) {
    const std::uint64_t capacity = ring_capacity(options.inflight, options.max_message);
    return kServiceHeaderSize + std::size_t{options.clients} * 2 * (ring::kHeaderSize + capacity);
}

void format(std::span<std::byte> region, const ServiceOptions& options) {
    if (options.clients < 1 || options.clients > kMaxClients)
        throw_error(std::errc::invalid_argument,
                    "service: " + str(options.clients) + " client slots, expected 1 to 1023");
    if (options.inflight < 1 || options.inflight > kMaxInflight) {
        throw_error(std::errc::invalid_argument,
                    "service: " + str(options.inflight) + " calls in flight per client, expected 1 to 64");
    }
    const std::uint64_t capacity = ring_capacity(options.inflight, options.max_message);
    region::check_span(region, Kind::service, region_size(options));
    const std::uint64_t ring_bytes = ring::kHeaderSize + capacity;
    const std::uint64_t stride = 2 * ring_bytes;
    auto* header = ::new (region.data()) ServiceHeader{};
    for (std::uint32_t i = 0; i < options.clients; ++i) {
        const auto slot = region.subspan(kServiceHeaderSize + i * stride, stride);
        Ring::format(slot.first(ring_bytes), RingOptions{capacity});
        Ring::format(slot.subspan(ring_bytes), RingOptions{capacity});
    }
    // Stamped after every ring is formatted: an attacher that sees the magic sees them all.
    region::stamp(header->control, Kind::service, kServiceHeaderSize, capacity,
                  {options.clients, stride, options.inflight, capacity});
}

Geometry validate(std::span<std::byte> region) {
    region::check_span(region, Kind::service,
                       kServiceHeaderSize + 2 * (ring::kHeaderSize + region::kMinCapacity));
    const auto control = region::read_control(region, Kind::service, kServiceHeaderSize);
    const auto corrupt = [](const std::string& what) { region::corrupt_header(Kind::service, what); };
    const std::uint64_t clients = control.kind_words[0];
    const std::uint64_t stride = control.kind_words[1];
    const std::uint64_t inflight = control.kind_words[2];
    const std::uint64_t response_capacity = control.kind_words[3];
    if (clients < 1 || clients > kMaxClients)
        corrupt("client slot count " + str(clients) + " outside 1..1023");
    if (inflight < 1 || inflight > kMaxInflight)
        corrupt("calls in flight " + str(inflight) + " outside 1..64");
    if (!region::valid_capacity(response_capacity))
        corrupt("response ring capacity " + str(response_capacity) + " is not a valid ring capacity");
    const std::uint64_t expected = 2 * ring::kHeaderSize + control.capacity + response_capacity;
    if (stride != expected) corrupt("slot stride " + str(stride) + ", expected " + str(expected));
    if ((region.size() - kServiceHeaderSize) / stride < clients) {
        corrupt(str(clients) + " slots of " + str(stride) + " bytes need a region of " +
                str(kServiceHeaderSize + clients * stride) + " bytes, but it has " + str(region.size()));
    }
    Geometry g{};
    g.header = std::launder(reinterpret_cast<ServiceHeader*>(region.data()));
    g.clients = static_cast<std::uint32_t>(clients);
    g.inflight = static_cast<std::uint32_t>(inflight);
    g.stride = stride;
    g.request_capacity = control.capacity;
    g.response_capacity = response_capacity;
    g.max_message =
        std::min(message_limit(control.capacity, g.inflight), message_limit(response_capacity, g.inflight));
    return g;
}

std::span<std::byte> request_ring(std::span<std::byte> region, const Geometry& g, std::uint32_t slot) {
    return region.subspan(kServiceHeaderSize + slot * g.stride, ring::kHeaderSize + g.request_capacity);
}

std::span<std::byte> response_ring(std::span<std::byte> region, const Geometry& g, std::uint32_t slot) {
    return region.subspan(kServiceHeaderSize + slot * g.stride + ring::kHeaderSize + g.request_capacity,
                          ring::kHeaderSize + g.response_capacity);
}

Census census(std::span<std::byte> region) {
    const Geometry g = validate(region);
    Census c;
    c.clients = g.clients;
    OwnerWord owner;
    c.server_alive = server_ready(g.header->server_end, owner);
    c.server_pid = owner.pid;
    for (std::uint32_t i = 0; i < g.clients; ++i) {
        const ring::EndpointWatch client(&client_line(request_ring(region, g, i)));
        if (client.owner().state == EndpointState::attached && !client.gone()) ++c.attached;
    }
    const ServerLine& line = g.header->server;
    c.counts = {line.calls.load(std::memory_order_relaxed), line.replies.load(std::memory_order_relaxed),
                line.replies_dropped.load(std::memory_order_relaxed),
                line.takeovers.load(std::memory_order_relaxed)};
    return c;
}

// ---- ServiceServer ----

struct ServiceServer::Slot {
    Slot(RingConsumer&& requests_end, RingProducer&& responses_end, const EndpointLine& client_end)
        : requests(std::move(requests_end)), responses(std::move(responses_end)), client(&client_end) {}
    RingConsumer requests;
    RingProducer responses;
    const EndpointLine* client;
    std::mutex mutex;  // the in-flight ids and the response producer
    struct Asked {
        std::uint32_t epoch;
        std::uint64_t id;
    };
    std::vector<Asked> asked;  // received, not answered
    bool loaned = false;       // loan_reply holds `mutex` until commit_reply
};

ServiceServer::ServiceServer(std::span<std::byte> region, WaitMode mode) : mode_(mode), sleeper_(mode) {
    const Geometry g = validate(region);
    header_ = g.header;
    max_message_ = g.max_message;
    const ring::Claim claim = ring::begin_claim(header_->server_end, "service server");
    epoch_ = claim.epoch;
    open_ = true;
    took_over_ = claim.took_over;
    try {
        if (claim.took_over) {
            // A server that died asleep or armed left its count and its doorbell.
            header_->wait.server_sleepers.store(0, std::memory_order_relaxed);
            header_->doorbell.armed.store(0, std::memory_order_relaxed);
            header_->server.takeovers.fetch_add(1, std::memory_order_relaxed);
        }
        slots_.reserve(g.clients);
        for (std::uint32_t i = 0; i < g.clients; ++i) {
            const auto requests = request_ring(region, g, i);
            RingConsumer consumer = RingConsumer::attach(requests, mode);
            check_ring(i, "request", consumer.capacity(), g.request_capacity);
            // Requests sent to an earlier server: their callers were told closed. A bounded loop:
            // a client may keep sending while we empty.
            for (std::uint64_t n = 0; n <= g.request_capacity / region::kRecordAlignment; ++n) {
                if (!consumer.read(Deadline::immediate()).ok()) break;
                consumer.release();
            }
            RingProducer producer = RingProducer::attach(response_ring(region, g, i), mode);
            check_ring(i, "response", producer.capacity(), g.response_capacity);
            slots_.push_back(
                std::make_unique<Slot>(std::move(consumer), std::move(producer), client_line(requests)));
        }
    } catch (...) {
        close();
        throw;
    }
    ring::finish_claim(header_->server_end, claim);
    region::wake_all(header_->wait.server_event);  // clients waiting for a server
}

ServiceServer::~ServiceServer() {
    close();
}

void ServiceServer::close() noexcept {
    if (!open_) return;
    disarm();
    slots_.clear();  // every ring end closes (a client asleep on its response ring is woken)
    ring::release_endpoint(header_->server_end, epoch_);
    region::wake_all(header_->wait.server_event);
    open_ = false;
}

ServerCounts ServiceServer::counts() const noexcept {
    const ServerLine& line = header_->server;
    return {line.calls.load(std::memory_order_relaxed), line.replies.load(std::memory_order_relaxed),
            line.replies_dropped.load(std::memory_order_relaxed),
            line.takeovers.load(std::memory_order_relaxed)};
}

bool ServiceServer::has_request() const noexcept {
    for (const auto& slot : slots_)
        if (slot->requests.has_data()) return true;
    return false;
}

bool ServiceServer::take(Request& request) {
    const std::size_t n = slots_.size();
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = (next_ + k) % n;
        Slot& slot = *slots_[i];
        // A bounded number of records per slot per turn: stale ones are skipped, not served.
        for (int tries = 0; tries < 64 && slot.requests.has_data(); ++tries) {
            const RecordView record = slot.requests.read(Deadline::immediate());
            if (!record.ok()) break;
            const OwnerWord client = OwnerWord::unpack(slot.client->owner.load(std::memory_order_acquire));
            const bool alive = client.state == EndpointState::attached &&
                               ring::holder_alive(slot.client->holder.load(std::memory_order_acquire));
            // A record shorter than an id, or from a client that left (or died and was replaced):
            // nobody will read its reply.
            if (record.message.size() < kIdSize || !alive ||
                id_epoch(load_id(record.message.data())) != (client.epoch & 0xffffff)) {
                slot.requests.release();
                continue;
            }
            const std::uint64_t id = load_id(record.message.data());
            request.message.assign(record.message.begin() + kIdSize, record.message.end());
            slot.requests.release();
            {
                const std::lock_guard lock(slot.mutex);
                slot.asked.push_back({client.epoch, id});
            }
            request.handle = {static_cast<std::uint32_t>(i), client.epoch, id};
            header_->server.calls.fetch_add(1, std::memory_order_relaxed);
            next_ = (i + 1) % n;
            return true;
        }
    }
    return false;
}

IoResult ServiceServer::recv(Request& request, Deadline deadline) {
    if (!open_) throw_error(std::errc::bad_file_descriptor, "service server is closed");
    for (;;) {
        if (take(request)) return {Status::ok, request.message.size()};
        if (deadline.is_immediate()) return {Status::would_block, 0};
        if (Clock::now() >= deadline.when()) return {Status::timed_out, 0};
        const Status s = detail::wait_until(
            mode_, deadline, sleeper_, header_->wait.server_sleepers, header_->wait.request_event,
            [](Clock::time_point) { return false; },
            [](HolderWords*, std::size_t) -> std::size_t { return 0; }, [this] { return has_request(); },
            [] {});
        if (s == Status::timed_out) return {Status::timed_out, 0};
    }
}

ServiceServer::Slot& ServiceServer::slot_of(const ReplyHandle& to, const char* call) {
    if (!open_) throw_error(std::errc::bad_file_descriptor, "service server is closed");
    if (to.slot >= slots_.size()) {
        throw_error(std::errc::invalid_argument, std::string("service server ") + call + ": slot " +
                                                     str(to.slot) + " of " + str(slots_.size()) +
                                                     ": stale or unknown request id");
    }
    return *slots_[to.slot];
}

void ServiceServer::check_size(std::size_t size, const char* what) const {
    if (size > max_message_) {
        throw_error(std::errc::message_size, std::string("service ") + what + " of " + str(size) +
                                                 " bytes exceeds the service's limit of " +
                                                 str(max_message_) + " bytes (max=)");
    }
}

bool ServiceServer::settle(Slot& slot, const ReplyHandle& to) {
    const auto it = std::find_if(slot.asked.begin(), slot.asked.end(),
                                 [&](const Slot::Asked& a) { return a.id == to.id && a.epoch == to.epoch; });
    if (it == slot.asked.end()) {
        throw_error(std::errc::invalid_argument, "service server reply to slot " + str(to.slot) + ", id " +
                                                     str(to.id) + ": stale or unknown request id");
    }
    slot.asked.erase(it);
    const OwnerWord client = OwnerWord::unpack(slot.client->owner.load(std::memory_order_acquire));
    const bool same = client.state == EndpointState::attached && client.epoch == to.epoch &&
                      ring::holder_alive(slot.client->holder.load(std::memory_order_acquire));
    if (!same) header_->server.replies_dropped.fetch_add(1, std::memory_order_relaxed);
    return same;
}

IoResult ServiceServer::reply(const ReplyHandle& to, std::span<const std::byte> response) {
    Slot& slot = slot_of(to, "reply");
    check_size(response.size(), "response");
    const std::lock_guard lock(slot.mutex);
    if (slot.loaned)
        throw_error(std::errc::invalid_argument,
                    "service server reply: a loan_reply to this client awaits commit_reply");
    if (!settle(slot, to)) return {Status::closed, 0};
    const Loan loan = slot.responses.loan(kIdSize + response.size(), Deadline::immediate());
    if (!loan.ok()) {
        // The client's ring is full (it gave up on calls whose replies still came) or it closed.
        header_->server.replies_dropped.fetch_add(1, std::memory_order_relaxed);
        return {Status::closed, 0};
    }
    store_id(loan.buffer.data(), to.id);
    if (!response.empty()) std::memcpy(loan.buffer.data() + kIdSize, response.data(), response.size());
    // Counted before the commit: a client holding its reply (or a lister it told) sees it counted.
    header_->server.replies.fetch_add(1, std::memory_order_relaxed);
    slot.responses.commit(loan.buffer.size());
    return {Status::ok, response.size()};
}

Loan ServiceServer::loan_reply(const ReplyHandle& to, std::size_t size) {
    Slot& slot = slot_of(to, "loan_reply");
    check_size(size, "response");
    std::unique_lock lock(slot.mutex);
    if (slot.loaned)
        throw_error(std::errc::invalid_argument,
                    "service server loan_reply: a loan to this client awaits commit_reply");
    const auto it = std::find_if(slot.asked.begin(), slot.asked.end(),
                                 [&](const Slot::Asked& a) { return a.id == to.id && a.epoch == to.epoch; });
    if (it == slot.asked.end()) {
        throw_error(std::errc::invalid_argument, "service server loan_reply to slot " + str(to.slot) +
                                                     ", id " + str(to.id) + ": stale or unknown request id");
    }
    const OwnerWord client = OwnerWord::unpack(slot.client->owner.load(std::memory_order_acquire));
    Loan loan{Status::closed, {}};
    if (client.state == EndpointState::attached && client.epoch == to.epoch &&
        ring::holder_alive(slot.client->holder.load(std::memory_order_acquire)))
        loan = slot.responses.loan(kIdSize + size, Deadline::immediate());
    if (!loan.ok()) {
        (void)settle(slot, to);
        if (client.epoch == to.epoch && client.state == EndpointState::attached)
            header_->server.replies_dropped.fetch_add(1, std::memory_order_relaxed);
        return {Status::closed, {}};
    }
    store_id(loan.buffer.data(), to.id);
    slot.loaned = true;
    lock.release();  // held until commit_reply
    return {Status::ok, loan.buffer.subspan(kIdSize)};
}

void ServiceServer::commit_reply(const ReplyHandle& to, std::size_t size) {
    Slot& slot = slot_of(to, "commit_reply");
    if (!slot.loaned)
        throw_error(std::errc::invalid_argument, "service server commit_reply without a loan_reply");
    const std::unique_lock lock(slot.mutex, std::adopt_lock);
    slot.loaned = false;
    const auto it = std::find_if(slot.asked.begin(), slot.asked.end(),
                                 [&](const Slot::Asked& a) { return a.id == to.id && a.epoch == to.epoch; });
    if (it == slot.asked.end()) {
        throw_error(std::errc::invalid_argument, "service server commit_reply to slot " + str(to.slot) +
                                                     ", id " + str(to.id) +
                                                     ": not the request loan_reply was for");
    }
    slot.asked.erase(it);
    header_->server.replies.fetch_add(1, std::memory_order_relaxed);  // before the commit, as reply's
    slot.responses.commit(kIdSize + size);
}

bool ServiceServer::arm(std::vector<int>& fds) {
    if (!open_) throw_error(std::errc::bad_file_descriptor, "service server is closed");
    if (!doorbell_) {
        std::string name;
        doorbell_ = region::bind_doorbell("service-", name);
        std::memcpy(header_->doorbell.name, name.data(), name.size());
        header_->doorbell.name_length = static_cast<std::uint32_t>(name.size());
    }
    if (!armed_) {
        // release: the name is written before a client sees `armed`.
        header_->doorbell.armed.store(1, std::memory_order_release);
        header_->wait.server_sleepers.fetch_add(1, std::memory_order_relaxed);
        armed_ = true;
    }
    fds.push_back(doorbell_.get());
    sleeper_.pass();  // our announcement, then the re-check (the clients' send, then their load)
    return !has_request();
}

void ServiceServer::disarm() noexcept {
    if (!armed_) return;
    header_->doorbell.armed.store(0, std::memory_order_relaxed);
    header_->wait.server_sleepers.fetch_sub(1, std::memory_order_relaxed);
    armed_ = false;
    region::drain_doorbell(doorbell_);
}

// ---- ServiceClient ----

ServiceClient::ServiceClient(std::span<std::byte> region, WaitMode mode, std::uint64_t first_sequence)
    : sequence_(first_sequence), mode_(mode), sleeper_(mode) {
    const Geometry g = validate(region);
    header_ = g.header;
    inflight_ = g.inflight;
    max_message_ = g.max_message;
    server_watch_ = ring::EndpointWatch(&header_->server_end);
    for (std::uint32_t i = 0; i < g.clients; ++i) {
        try {
            RingProducer producer = RingProducer::attach(request_ring(region, g, i), mode);
            check_ring(i, "request", producer.capacity(), g.request_capacity);
            RingConsumer consumer = RingConsumer::attach(response_ring(region, g, i), mode);
            check_ring(i, "response", consumer.capacity(), g.response_capacity);
            // Replies meant for an earlier client of this slot.
            for (std::uint64_t n = 0; n <= g.response_capacity / region::kRecordAlignment; ++n) {
                if (!consumer.read(Deadline::immediate()).ok()) break;
                consumer.release();
            }
            epoch_ = OwnerWord::unpack(
                         client_line(request_ring(region, g, i)).owner.load(std::memory_order_acquire))
                         .epoch &
                     0xffffff;
            requests_.emplace(std::move(producer));
            responses_.emplace(std::move(consumer));
            responses_header_ =
                std::launder(reinterpret_cast<ring::RingHeader*>(response_ring(region, g, i).data()));
            slot_ = i;
            return;
        } catch (const Error& e) {
            if (e.code() != std::errc::device_or_resource_busy) throw;
        }
    }
    throw_error(std::errc::device_or_resource_busy,
                "service client: all " + str(g.clients) +
                    " client slots are held by live clients (clients=" + str(g.clients) + ")");
}

ServiceClient::~ServiceClient() = default;

ServiceClient::Server ServiceClient::server() const noexcept {
    OwnerWord owner;
    if (server_ready(header_->server_end, owner)) return Server::ready;
    switch (owner.state) {
        case EndpointState::vacant:
            return Server::absent;
        case EndpointState::closed:
            return Server::closed;
        default:
            // claiming or attached: a live holder is still attaching; a dead one died.
            return ring::holder_alive(header_->server_end.holder.load(std::memory_order_acquire))
                       ? Server::absent
                       : Server::dead;
    }
}

Status ServiceClient::wait_for_server(Deadline deadline) {
    std::atomic<std::uint32_t>* holder = &header_->server_end.holder;
    for (;;) {
        // The key before the look: a server that attaches after it bumps the word.
        const std::uint32_t key = header_->wait.server_event.load(std::memory_order_acquire);
        const std::uint32_t holder_key = holder->load(std::memory_order_acquire);
        if (server() == Server::ready) return Status::ok;
        if (deadline.is_immediate() || Clock::now() >= deadline.when()) return Status::timed_out;
        // A claim or a death changes the holder word; a finished attach bumps server_event.
        detail::sleep_on(header_->wait.server_event, key, &holder, &holder_key, 1, deadline);
    }
}

bool ServiceClient::server_left(std::uint32_t epoch) const noexcept {
    OwnerWord owner;
    return !server_ready(header_->server_end, owner) || owner.epoch != epoch;
}

CallStarted ServiceClient::prepare(std::size_t size) {
    if (size > max_message_) {
        throw_error(std::errc::message_size, "service request of " + str(size) +
                                                 " bytes exceeds the service's limit of " +
                                                 str(max_message_) + " bytes (max=)");
    }
    if (loaned_) throw_error(std::errc::invalid_argument, "service client: a loan awaits commit_call");
    if (held_ != Held::none)
        throw_error(std::errc::invalid_argument, "service client: a read() awaits release()");
    if (calls_.size() >= inflight_) {
        throw_error(std::errc::resource_unavailable_try_again,
                    "service client: " + str(inflight_) +
                        " calls in flight already (inflight=" + str(inflight_) + "): wait for one first");
    }
    // Replies that came meanwhile (some to calls given up on) leave the ring room for more.
    while (pull(0, nullptr)) {
    }
    if (server() != Server::ready) return {Status::closed, {}};
    return {Status::ok, {}};
}

CallStarted ServiceClient::sent(std::uint64_t id) {
    OwnerWord owner;
    (void)server_ready(header_->server_end, owner);
    calls_.push_back({id, owner.epoch, false, {}});
    // The ring's commit passed the store-buffer barrier before this load (see wait.hpp): a
    // server that counted itself a sleeper either sees the request or is woken here.
    if (header_->wait.server_sleepers.load(std::memory_order_seq_cst) != 0) [[unlikely]] {
        header_->wait.request_event.fetch_add(1, std::memory_order_release);
        (void)futex_wake(header_->wait.request_event, INT_MAX);
        if (header_->doorbell.armed.load(std::memory_order_acquire) != 0) {
            Fd sender;
            region::ring_doorbell(header_->doorbell.name, header_->doorbell.name_length,
                                  sizeof header_->doorbell.name, sender);
        }
    }
    return {Status::ok, CallId{id}};
}

CallStarted ServiceClient::start(std::span<const std::byte> request, Deadline deadline) {
    const CallStarted ready = prepare(request.size());
    if (!ready.ok()) return ready;
    const Loan loan = requests_->loan(kIdSize + request.size(), deadline);
    if (!loan.ok()) return {loan.status, {}};
    const std::uint64_t id = next_id();
    store_id(loan.buffer.data(), id);
    if (!request.empty()) std::memcpy(loan.buffer.data() + kIdSize, request.data(), request.size());
    requests_->commit(loan.buffer.size());
    return sent(id);
}

Loan ServiceClient::loan(std::size_t size, Deadline deadline) {
    const CallStarted ready = prepare(size);
    if (!ready.ok()) return {ready.status, {}};
    const Loan loan = requests_->loan(kIdSize + size, deadline);
    if (!loan.ok()) return loan;
    loaned_ = true;
    loan_start_ = loan.buffer.data();
    loan_size_ = size;
    return {Status::ok, loan.buffer.subspan(kIdSize)};
}

CallStarted ServiceClient::commit_call(std::size_t size) {
    if (!loaned_) throw_error(std::errc::invalid_argument, "service client: commit_call without a loan");
    if (size > loan_size_) {
        throw_error(std::errc::invalid_argument, "service client: commit_call of " + str(size) +
                                                     " bytes exceeds the loan of " + str(loan_size_) +
                                                     " bytes");
    }
    loaned_ = false;
    const std::uint64_t id = next_id();
    store_id(loan_start_, id);
    requests_->commit(kIdSize + size);
    return sent(id);
}

std::uint64_t ServiceClient::next_id() noexcept {
    return (std::uint64_t{epoch_} << kSequenceBits) |
           (sequence_++ & ((std::uint64_t{1} << kSequenceBits) - 1));
}

bool ServiceClient::in_flight(CallId call) const noexcept {
    return std::any_of(calls_.begin(), calls_.end(), [&](const Call& c) { return c.id == call.id; });
}

std::vector<std::uint64_t> ServiceClient::calls() const {
    std::vector<std::uint64_t> ids;
    for (const Call& c : calls_)
        ids.push_back(c.id);
    return ids;
}

std::vector<ServiceClient::Call>::iterator ServiceClient::find(CallId call, const char* what) {
    const auto it =
        std::find_if(calls_.begin(), calls_.end(), [&](const Call& c) { return c.id == call.id; });
    if (it == calls_.end()) {
        throw_error(std::errc::invalid_argument,
                    std::string("service client ") + what + ": call " + str(call.id) +
                        " is not in flight (never started, or already waited for)");
    }
    return it;
}

bool ServiceClient::pull(std::uint64_t want, RecordView* view) {
    if (!responses_->has_data()) return false;
    const RecordView record = responses_->read(Deadline::immediate());
    if (!record.ok()) return false;
    if (record.message.size() < kIdSize) {
        responses_->release();
        throw_error(std::errc::bad_message,
                    "service response of " + str(record.message.size()) +
                        " bytes is shorter than a request id (a corrupt service region)");
    }
    const std::uint64_t id = load_id(record.message.data());
    if (view != nullptr && id == want) {
        *view = {Status::ok, record.message.subspan(kIdSize)};
        return true;  // left in place: release() consumes it
    }
    const auto it = std::find_if(calls_.begin(), calls_.end(), [&](const Call& c) { return c.id == id; });
    if (it != calls_.end() && !it->answered) {
        it->response.assign(record.message.begin() + kIdSize, record.message.end());
        it->answered = true;
    }
    // Otherwise a reply to a call given up on, or meant for an earlier client of the slot.
    responses_->release();
    return true;
}

Status ServiceClient::await(std::vector<Call>::iterator& it, Deadline deadline, RecordView* view) {
    const std::uint64_t id = it->id;
    const std::uint32_t epoch = it->server_epoch;
    auto arrived = [&] {
        for (;;) {
            if (it->answered) return true;
            RecordView found{Status::closed, {}};
            if (!pull(id, view != nullptr ? &found : nullptr)) return false;
            if (found.ok()) {
                *view = found;
                return true;
            }
        }
    };
    for (;;) {
        if (arrived()) return Status::ok;
        // What the server wrote before it died is taken first, above.
        if (server_left(epoch)) {
            wake_other_clients();
            return Status::closed;
        }
        if (deadline.is_immediate() || Clock::now() >= deadline.when()) return Status::timed_out;
        sleep(epoch, deadline);
    }
}

void ServiceClient::wake_other_clients() noexcept {
    // The kernel wakes one sleeper on a dead holder's word: the one woken wakes the others.
    std::atomic<std::uint32_t>& holder = header_->server_end.holder;
    std::uint32_t value = holder.load(std::memory_order_acquire);
    if ((value & ring::kHolderOwnerDied) != 0 && (value & ring::kHolderWaiters) != 0 &&
        holder.compare_exchange_strong(value, value & ~ring::kHolderWaiters, std::memory_order_relaxed)) {
        try {
            (void)futex_wake(holder, INT_MAX);
        } catch (...) {
            // They look again at the end of their slice or deadline.
        }
    }
}

// Spins (adaptive: a few microseconds; spin: until something happens), then sleeps on the
// response ring's data_event and the server's holder word at once (futex_waitv). The holder word
// is announced on (FUTEX_WAITERS) and checked alive in one compare-and-swap, and that value is
// the one futex_waitv expects: a death after it changes the word (the kernel marks it), so the
// sleep ends at once or is woken; a death before it is seen here, and there is no sleep. (The
// rings' sleep_on skips a holder found dead, for waits whose dead peers are expected; a call's
// server dying between our look and the sleep would then be slept through.)
void ServiceClient::sleep(std::uint32_t epoch, Deadline deadline) {
    auto& wait = responses_header_->wait;
    if (spin_until(
            mode_, deadline, [&](Clock::time_point) { return server_left(epoch); },
            [this] { return responses_->has_data(); }))
        return;  // something happened (or the deadline): the caller looks
    // The key before the announcement: a commit after it changes the word (the ring's handshake).
    const std::uint32_t key = wait.data_event.load(std::memory_order_acquire);
#ifdef IPCKIT_RING_FENCELESS
    wait.consumer_sleepers.fetch_add(1, std::memory_order_seq_cst);
#else
    wait.consumer_sleepers.fetch_add(1, std::memory_order_relaxed);
#endif
    struct Uncount {
        std::atomic<std::uint32_t>& sleepers;
        ~Uncount() { sleepers.fetch_sub(1, std::memory_order_relaxed); }
    } uncount{wait.consumer_sleepers};
    sleeper_.pass();
    if (responses_->has_data() || server_left(epoch)) return;
    std::atomic<std::uint32_t>& holder = header_->server_end.holder;
    std::uint32_t value = holder.load(std::memory_order_acquire);
    if (!ring::holder_alive(value)) return;
    if ((value & ring::kHolderWaiters) == 0 &&
        !holder.compare_exchange_strong(value, value | ring::kHolderWaiters, std::memory_order_acq_rel))
        return;  // it changed under us: look again
    const Deadline until =
        sleeper_.sliced() ? Deadline::at(std::min(deadline.when(), Clock::now() + kSleepSlice)) : deadline;
    std::atomic<std::uint32_t>* words[2] = {&wait.data_event, &holder};
    const std::uint32_t expected[2] = {key, value | ring::kHolderWaiters};
    if (futex_wait_any(words, expected, 2, until) == WaitAny::not_supported) {
        // Before Linux 5.16: the data word alone, in slices, looking at the server between them.
        (void)futex_wait(wait.data_event, key,
                         Deadline::at(std::min(until.when(), Clock::now() + kSleepSlice)));
    }
}

IoResult ServiceClient::wait(CallId call, std::vector<std::byte>& response, Deadline deadline) {
    if (held_ != Held::none)
        throw_error(std::errc::invalid_argument, "service client: a read() awaits release()");
    auto it = find(call, "wait");
    // The caller's vector takes the response when it comes: its capacity is reused (a large
    // response then costs no allocation and no page faults), and it is given back otherwise.
    const bool lent = !it->answered;
    if (lent) it->response.swap(response);
    const Status s = await(it, deadline, nullptr);
    if (s == Status::ok || lent) response.swap(it->response);
    if (s == Status::ok) {
        const std::size_t size = response.size();
        calls_.erase(it);
        return {Status::ok, size};
    }
    // Asked without waiting (a wait set's caller): still in flight.
    if (s == Status::timed_out && deadline.is_immediate()) return {Status::would_block, 0};
    // Closed, or given up on: a late answer is dropped when it comes.
    calls_.erase(it);
    return {s, 0};
}

RecordView ServiceClient::read(CallId call, Deadline deadline) {
    if (held_ != Held::none)
        throw_error(std::errc::invalid_argument, "service client: a read() awaits release()");
    auto it = find(call, "read");
    RecordView view{Status::closed, {}};
    const Status s = await(it, deadline, &view);
    if (s != Status::ok) {
        if (s == Status::timed_out && deadline.is_immediate()) return {Status::would_block, {}};
        calls_.erase(it);
        return {s, {}};
    }
    held_id_ = call.id;
    if (it->answered) {
        held_ = Held::copied;
        return {Status::ok, it->response};
    }
    held_ = Held::in_ring;
    return view;
}

void ServiceClient::release() {
    if (held_ == Held::none)
        throw_error(std::errc::invalid_argument, "service client: release without a read");
    if (held_ == Held::in_ring) responses_->release();
    const auto it =
        std::find_if(calls_.begin(), calls_.end(), [&](const Call& c) { return c.id == held_id_; });
    if (it != calls_.end()) calls_.erase(it);
    held_ = Held::none;
}

bool ServiceClient::ready() noexcept {
    if (responses_->has_data()) return true;
    return std::any_of(calls_.begin(), calls_.end(),
                       [&](const Call& c) { return c.answered || server_left(c.server_epoch); });
}

bool ServiceClient::arm(std::vector<int>& fds) {
    // The ring's own verdict counts only for data: a server gone with no call in flight of
    // ours is nothing to wake for.
    (void)responses_->arm();
    fds.push_back(responses_->doorbell_fd());
    if (const int pidfd = server_watch_.fd(); pidfd >= 0) fds.push_back(pidfd);  // the server's death
    return !ready();
}

bool ServiceClient::server_pollable() const noexcept {
    return ring::same_pid_namespace(header_->server_end);
}

void ServiceClient::disarm() noexcept {
    responses_->disarm();
}

}  // namespace ipckit::detail::service
