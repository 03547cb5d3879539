// The C API (include/ipckit/ipckit.h) over the channel layer. Every entry point is noexcept
// and runs its body through `guarded`, which turns any C++ exception into IPCKIT_ERROR and a
// thread-local text naming the call and the object: nothing thrown reaches a C caller.
#include "ipckit/ipckit.h"

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "ipckit/channel.hpp"
#include "ipckit/error.hpp"
#include "ipckit/objects.hpp"
#include "ipckit/poll_set.hpp"
#include "ipckit/service.hpp"

struct ipckit_sender {
    ipckit::Sender channel;
};
struct ipckit_receiver {
    ipckit::Receiver channel;
};
struct ipckit_poll_set {
    ipckit::PollSet set;
};
struct ipckit_server {
    explicit ipckit_server(ipckit::Server server) : channel(std::move(server)) {}
    ipckit::Server channel;
    ipckit::Request request;  // the last one received, shown in place
};
struct ipckit_client {
    explicit ipckit_client(ipckit::Client client) : channel(std::move(client)) {}
    ipckit::Client channel;
    std::vector<std::byte> response;  // the last one received, shown in place
};
struct ipckit_object_list {
    std::vector<ipckit::IpcObject> found;  // owns the strings the C view points into
    std::vector<ipckit_object> view;
};

namespace {

using ipckit::Deadline;
using ipckit::Status;

thread_local std::string last_error_text;
thread_local int last_error_code = 0;

void set_error(std::string_view call, std::string_view object, int code, std::string_view what) noexcept {
    try {
        last_error_text.assign(call);
        if (!object.empty()) {
            last_error_text.append("(").append(object).append(")");
        }
        last_error_text.append(": ").append(what);
    } catch (...) {
        // Out of memory while describing a failure: keep what fits, the code still says it.
    }
    last_error_code = code;
}

ipckit_status invalid(std::string_view call, std::string_view what) noexcept {
    set_error(call, {}, EINVAL, what);
    return IPCKIT_ERROR;
}

// Runs `body` (which returns an ipckit_status) and maps whatever it throws.
template <class Body>
ipckit_status guarded(std::string_view call, std::string_view object, Body&& body) noexcept {
    try {
        return std::forward<Body>(body)();
    } catch (const std::system_error& e) {
        set_error(call, object, e.code().value(), e.what());
    } catch (const std::bad_alloc&) {
        set_error(call, object, ENOMEM, "out of memory");
    } catch (const std::exception& e) {
        set_error(call, object, EPROTO, e.what());
    } catch (...) {
        set_error(call, object, EPROTO, "an unknown C++ exception");
    }
    return IPCKIT_ERROR;
}

ipckit_status to_c(Status status) noexcept {
    switch (status) {
        case Status::ok:
            return IPCKIT_OK;
        case Status::would_block:
            return IPCKIT_WOULD_BLOCK;
        case Status::timed_out:
            return IPCKIT_TIMED_OUT;
        case Status::closed:
            return IPCKIT_CLOSED;
    }
    return IPCKIT_ERROR;
}

// IPCKIT_FOREVER (any negative value) never expires, 0 is immediate.
Deadline deadline_for(int64_t timeout_ns) noexcept {
    if (timeout_ns < 0) return Deadline::never();
    if (timeout_ns == 0) return Deadline::immediate();
    return Deadline::after(std::chrono::nanoseconds(timeout_ns));
}

constexpr std::string_view null_text(const ipckit_sender*) noexcept {
    return "sender is NULL";
}
constexpr std::string_view null_text(const ipckit_receiver*) noexcept {
    return "receiver is NULL";
}
constexpr std::string_view null_text(const ipckit_server*) noexcept {
    return "server is NULL";
}
constexpr std::string_view null_text(const ipckit_client*) noexcept {
    return "client is NULL";
}

// A call on a channel: the handle is checked, then `body` runs guarded, named by its address.
template <class Handle, class Body>
ipckit_status on_channel(std::string_view call, Handle* handle, Body&& body) noexcept {
    if (handle == nullptr) return invalid(call, null_text(handle));
    return guarded(call, handle->channel.address(), [&] { return body(handle->channel); });
}

// A getter: the handle and the out-pointer are checked, then *out is what `get` returns.
template <class Handle, class Out, class Get>
ipckit_status query(std::string_view call, const Handle* handle, Out* out, Get&& get) noexcept {
    if (handle != nullptr && out == nullptr) return invalid(call, "the out-pointer is NULL");
    return on_channel(call, handle, [&](const auto& channel) {
        *out = get(channel);
        return IPCKIT_OK;
    });
}

// The handle's address, owned by it; NULL (and a last error) for a NULL handle.
template <class Handle>
const char* address_of(std::string_view call, const Handle* handle) noexcept {
    if (handle == nullptr) {
        invalid(call, null_text(handle));
        return nullptr;
    }
    return handle->channel.address().c_str();
}

template <class Handle, class Channel, class Make>
ipckit_status make_channel(std::string_view call, const char* address, Handle** out, Make&& make) noexcept {
    if (out == nullptr) return invalid(call, "the out-pointer is NULL");
    *out = nullptr;
    if (address == nullptr) return invalid(call, "address is NULL");
    return guarded(call, address, [&] {
        *out = new Handle{make(std::string_view(address))};
        return IPCKIT_OK;
    });
}

}  // namespace

extern "C" {

const char* ipckit_last_error(void) noexcept {
    return last_error_text.c_str();
}

int ipckit_last_error_code(void) noexcept {
    return last_error_code;
}

const char* ipckit_status_name(ipckit_status status) noexcept {
    switch (status) {
        case IPCKIT_OK:
            return "ok";
        case IPCKIT_WOULD_BLOCK:
            return "would_block";
        case IPCKIT_TIMED_OUT:
            return "timed_out";
        case IPCKIT_CLOSED:
            return "closed";
        case IPCKIT_ERROR:
            return "error";
    }
    return "unknown";
}

const char* ipckit_version(void) noexcept {
    return IPCKIT_LIBRARY_VERSION;
}

// ---- senders ----

ipckit_status ipckit_sender_create(const char* address, ipckit_sender** sender) noexcept {
    return make_channel<ipckit_sender, ipckit::Sender>(
        "ipckit_sender_create", address, sender,
        [](std::string_view a) { return ipckit::Sender::create(a); });
}

ipckit_status ipckit_sender_open(const char* address, int64_t timeout_ns, ipckit_sender** sender) noexcept {
    return make_channel<ipckit_sender, ipckit::Sender>(
        "ipckit_sender_open", address, sender,
        [timeout_ns](std::string_view a) { return ipckit::Sender::open(a, deadline_for(timeout_ns)); });
}

ipckit_status ipckit_sender_send(ipckit_sender* sender, const void* data, size_t size,
                                 int64_t timeout_ns) noexcept {
    if (sender != nullptr && data == nullptr && size > 0)
        return invalid("ipckit_sender_send", "data is NULL");
    return on_channel("ipckit_sender_send", sender, [&](ipckit::Sender& channel) {
        const std::span message(static_cast<const std::byte*>(data), size);
        return to_c(channel.send(message, deadline_for(timeout_ns)).status);
    });
}

ipckit_status ipckit_sender_loan(ipckit_sender* sender, size_t size, int64_t timeout_ns,
                                 void** buffer) noexcept {
    if (sender != nullptr && buffer == nullptr)
        return invalid("ipckit_sender_loan", "the out-pointer is NULL");
    return on_channel("ipckit_sender_loan", sender, [&](ipckit::Sender& channel) {
        *buffer = nullptr;
        const ipckit::Loan loan = channel.loan(size, deadline_for(timeout_ns));
        if (loan.ok()) *buffer = loan.buffer.data();
        return to_c(loan.status);
    });
}

ipckit_status ipckit_sender_commit(ipckit_sender* sender, size_t size) noexcept {
    return on_channel("ipckit_sender_commit", sender, [&](ipckit::Sender& channel) {
        channel.commit(size);
        return IPCKIT_OK;
    });
}

ipckit_status ipckit_sender_max_message_size(const ipckit_sender* sender, size_t* size) noexcept {
    return query("ipckit_sender_max_message_size", sender, size,
                 [](const ipckit::Sender& channel) { return channel.max_message_size(); });
}

const char* ipckit_sender_address(const ipckit_sender* sender) noexcept {
    return address_of("ipckit_sender_address", sender);
}

ipckit_status ipckit_sender_close(ipckit_sender* sender, ipckit_sender_close_info* info) noexcept {
    if (info != nullptr) *info = ipckit_sender_close_info{0, 0};
    if (sender == nullptr) return IPCKIT_OK;
    // The address outlives close(): the error text may need it after the channel is gone.
    std::string address;
    const ipckit_status status = guarded("ipckit_sender_close", {}, [&] {
        address = sender->channel.address();
        const ipckit::SenderClose closed = sender->channel.close();
        if (info != nullptr) *info = ipckit_sender_close_info{closed.stored, closed.undelivered ? 1 : 0};
        return IPCKIT_OK;
    });
    delete sender;
    return status;
}

// ---- receivers ----

ipckit_status ipckit_receiver_create(const char* address, ipckit_receiver** receiver) noexcept {
    return make_channel<ipckit_receiver, ipckit::Receiver>(
        "ipckit_receiver_create", address, receiver,
        [](std::string_view a) { return ipckit::Receiver::create(a); });
}

ipckit_status ipckit_receiver_open(const char* address, int64_t timeout_ns,
                                   ipckit_receiver** receiver) noexcept {
    return make_channel<ipckit_receiver, ipckit::Receiver>(
        "ipckit_receiver_open", address, receiver,
        [timeout_ns](std::string_view a) { return ipckit::Receiver::open(a, deadline_for(timeout_ns)); });
}

ipckit_status ipckit_receiver_recv(ipckit_receiver* receiver, void* buffer, size_t capacity, size_t* size,
                                   int64_t timeout_ns) noexcept {
    constexpr std::string_view call = "ipckit_receiver_recv";
    if (receiver != nullptr && size == nullptr) return invalid(call, "the out-pointer is NULL");
    if (receiver != nullptr && buffer == nullptr && capacity > 0) return invalid(call, "buffer is NULL");
    return on_channel(call, receiver, [&](ipckit::Receiver& channel) {
        *size = 0;
        const std::span into(static_cast<std::byte*>(buffer), capacity);
        const ipckit::IoResult result = channel.recv(into, deadline_for(timeout_ns));
        if (result.ok()) *size = result.bytes;
        return to_c(result.status);
    });
}

ipckit_status ipckit_receiver_read(ipckit_receiver* receiver, const void** data, size_t* size,
                                   int64_t timeout_ns) noexcept {
    constexpr std::string_view call = "ipckit_receiver_read";
    if (receiver != nullptr && (data == nullptr || size == nullptr))
        return invalid(call, "an out-pointer is NULL");
    return on_channel(call, receiver, [&](ipckit::Receiver& channel) {
        *data = nullptr;
        *size = 0;
        const ipckit::RecordView view = channel.read(deadline_for(timeout_ns));
        if (view.ok()) {
            *data = view.message.data();
            *size = view.message.size();
        }
        return to_c(view.status);
    });
}

ipckit_status ipckit_receiver_release(ipckit_receiver* receiver) noexcept {
    return on_channel("ipckit_receiver_release", receiver, [](ipckit::Receiver& channel) {
        channel.release();
        return IPCKIT_OK;
    });
}

ipckit_status ipckit_receiver_max_message_size(const ipckit_receiver* receiver, size_t* size) noexcept {
    return query("ipckit_receiver_max_message_size", receiver, size,
                 [](const ipckit::Receiver& channel) { return channel.max_message_size(); });
}

const char* ipckit_receiver_address(const ipckit_receiver* receiver) noexcept {
    return address_of("ipckit_receiver_address", receiver);
}

ipckit_status ipckit_receiver_native_handle(const ipckit_receiver* receiver, int* fd) noexcept {
    return query("ipckit_receiver_native_handle", receiver, fd,
                 [](const ipckit::Receiver& channel) { return channel.native_handle(); });
}

ipckit_status ipckit_receiver_missed(const ipckit_receiver* receiver, uint64_t* missed) noexcept {
    return query("ipckit_receiver_missed", receiver, missed,
                 [](const ipckit::Receiver& channel) { return channel.missed(); });
}

ipckit_status ipckit_receiver_waiting_at_open(const ipckit_receiver* receiver, size_t* waiting) noexcept {
    return query("ipckit_receiver_waiting_at_open", receiver, waiting,
                 [](const ipckit::Receiver& channel) { return channel.waiting_at_open(); });
}

void ipckit_receiver_close(ipckit_receiver* receiver) noexcept {
    delete receiver;  // ~Receiver is noexcept, as every destructor
}

// ---- poll sets ----

ipckit_status ipckit_poll_set_new(ipckit_poll_set** set) noexcept {
    constexpr std::string_view call = "ipckit_poll_set_new";
    if (set == nullptr) return invalid(call, "the out-pointer is NULL");
    *set = nullptr;
    return guarded(call, {}, [&] {
        *set = new ipckit_poll_set{};
        return IPCKIT_OK;
    });
}

ipckit_status ipckit_poll_set_add(ipckit_poll_set* set, ipckit_receiver* receiver, size_t* index) noexcept {
    constexpr std::string_view call = "ipckit_poll_set_add";
    if (set == nullptr) return invalid(call, "poll set is NULL");
    if (receiver == nullptr) return invalid(call, "receiver is NULL");
    return guarded(call, receiver->channel.address(), [&] {
        const std::size_t added = set->set.add(receiver->channel);
        if (index != nullptr) *index = added;
        return IPCKIT_OK;
    });
}

ipckit_status ipckit_poll_set_wait(ipckit_poll_set* set, int64_t timeout_ns, size_t* ready, size_t capacity,
                                   size_t* count) noexcept {
    constexpr std::string_view call = "ipckit_poll_set_wait";
    if (set == nullptr) return invalid(call, "poll set is NULL");
    if (count == nullptr) return invalid(call, "count out-pointer is NULL");
    *count = 0;
    if (ready == nullptr && capacity > 0) return invalid(call, "ready is NULL");
    return guarded(call, {}, [&] {
        const std::vector<std::size_t> found = set->set.wait(deadline_for(timeout_ns));
        for (const std::size_t index : found) {
            if (*count == capacity) break;
            ready[(*count)++] = index;
        }
        if (!found.empty()) return IPCKIT_OK;
        return timeout_ns == 0 ? IPCKIT_WOULD_BLOCK : IPCKIT_TIMED_OUT;
    });
}

void ipckit_poll_set_free(ipckit_poll_set* set) noexcept {
    delete set;
}

// ---- services ----

ipckit_status ipckit_server_create(const char* address, ipckit_server** server) noexcept {
    return make_channel<ipckit_server, ipckit::Server>(
        "ipckit_server_create", address, server,
        [](std::string_view a) { return ipckit::Server::create(a); });
}

ipckit_status ipckit_server_recv(ipckit_server* server, const void** request, size_t* size,
                                 ipckit_reply_handle* handle, int64_t timeout_ns) noexcept {
    constexpr std::string_view call = "ipckit_server_recv";
    if (server != nullptr && (request == nullptr || size == nullptr || handle == nullptr))
        return invalid(call, "an out-pointer is NULL");
    return on_channel(call, server, [&](ipckit::Server& channel) {
        *request = nullptr;
        *size = 0;
        const ipckit::IoResult result = channel.recv(server->request, deadline_for(timeout_ns));
        if (result.ok()) {
            *request = server->request.message.data();
            *size = server->request.message.size();
            const ipckit::ReplyHandle& to = server->request.handle;
            *handle = ipckit_reply_handle{to.slot, to.epoch, to.id};
        }
        return to_c(result.status);
    });
}

ipckit_status ipckit_server_reply(ipckit_server* server, const ipckit_reply_handle* to, const void* data,
                                  size_t size) noexcept {
    constexpr std::string_view call = "ipckit_server_reply";
    if (server != nullptr && to == nullptr) return invalid(call, "handle is NULL");
    if (server != nullptr && data == nullptr && size > 0) return invalid(call, "data is NULL");
    return on_channel(call, server, [&](ipckit::Server& channel) {
        const ipckit::ReplyHandle handle{to->slot, to->epoch, to->id};
        return to_c(channel.reply(handle, std::span(static_cast<const std::byte*>(data), size)).status);
    });
}

ipckit_status ipckit_server_max_message_size(const ipckit_server* server, size_t* size) noexcept {
    return query("ipckit_server_max_message_size", server, size,
                 [](const ipckit::Server& channel) { return channel.max_message_size(); });
}

ipckit_status ipckit_server_counts_get(const ipckit_server* server, ipckit_server_counts* counts) noexcept {
    return query("ipckit_server_counts_get", server, counts, [](const ipckit::Server& channel) {
        const ipckit::ServerCounts c = channel.counts();
        return ipckit_server_counts{c.calls, c.replies, c.replies_dropped, c.takeovers};
    });
}

const char* ipckit_server_address(const ipckit_server* server) noexcept {
    return address_of("ipckit_server_address", server);
}

void ipckit_server_close(ipckit_server* server) noexcept {
    delete server;  // ~Server closes the service
}

ipckit_status ipckit_client_open(const char* address, ipckit_client** client) noexcept {
    return make_channel<ipckit_client, ipckit::Client>(
        "ipckit_client_open", address, client, [](std::string_view a) { return ipckit::Client::open(a); });
}

namespace {
// Shows the client's last response through the out-pointers (when the call ended ok).
ipckit_status shown(ipckit_client* client, ipckit::IoResult result, const void** response, size_t* size) {
    *response = result.ok() ? client->response.data() : nullptr;
    *size = result.ok() ? client->response.size() : 0;
    return to_c(result.status);
}
}  // namespace

ipckit_status ipckit_client_call(ipckit_client* client, const void* request, size_t size,
                                 const void** response, size_t* response_size, int64_t timeout_ns) noexcept {
    constexpr std::string_view call = "ipckit_client_call";
    if (client != nullptr && (response == nullptr || response_size == nullptr))
        return invalid(call, "an out-pointer is NULL");
    if (client != nullptr && request == nullptr && size > 0) return invalid(call, "request is NULL");
    return on_channel(call, client, [&](ipckit::Client& channel) {
        const std::span bytes(static_cast<const std::byte*>(request), size);
        return shown(client, channel.call(bytes, client->response, deadline_for(timeout_ns)), response,
                     response_size);
    });
}

ipckit_status ipckit_client_start(ipckit_client* client, const void* request, size_t size, int64_t timeout_ns,
                                  uint64_t* call_id) noexcept {
    constexpr std::string_view call = "ipckit_client_start";
    if (client != nullptr && call_id == nullptr) return invalid(call, "the out-pointer is NULL");
    if (client != nullptr && request == nullptr && size > 0) return invalid(call, "request is NULL");
    return on_channel(call, client, [&](ipckit::Client& channel) {
        const std::span bytes(static_cast<const std::byte*>(request), size);
        const ipckit::Client::Started started = channel.start(bytes, deadline_for(timeout_ns));
        *call_id = started.ok() ? started.call.id : 0;
        return to_c(started.status);
    });
}

ipckit_status ipckit_client_wait(ipckit_client* client, uint64_t call_id, const void** response,
                                 size_t* response_size, int64_t timeout_ns) noexcept {
    constexpr std::string_view call = "ipckit_client_wait";
    if (client != nullptr && (response == nullptr || response_size == nullptr))
        return invalid(call, "an out-pointer is NULL");
    return on_channel(call, client, [&](ipckit::Client& channel) {
        return shown(client,
                     channel.wait(ipckit::CallId{call_id}, client->response, deadline_for(timeout_ns)),
                     response, response_size);
    });
}

ipckit_status ipckit_client_max_message_size(const ipckit_client* client, size_t* size) noexcept {
    return query("ipckit_client_max_message_size", client, size,
                 [](const ipckit::Client& channel) { return channel.max_message_size(); });
}

const char* ipckit_client_address(const ipckit_client* client) noexcept {
    return address_of("ipckit_client_address", client);
}

void ipckit_client_close(ipckit_client* client) noexcept {
    delete client;
}

// ---- objects ----

ipckit_status ipckit_objects(ipckit_object_list** list) noexcept {
    constexpr std::string_view call = "ipckit_objects";
    if (list == nullptr) return invalid(call, "the out-pointer is NULL");
    *list = nullptr;
    return guarded(call, {}, [&] {
        auto made = std::make_unique<ipckit_object_list>();
        made->found = ipckit::list_objects();
        made->view.reserve(made->found.size());
        for (const ipckit::IpcObject& o : made->found) {
            const bool queue = o.kind == ipckit::ObjectKind::sysvmq;
            ipckit_object c{};
            // kind_name gives views of string literals: NUL-terminated, static.
            c.kind = ipckit::kind_name(o).data();
            c.address = o.address.c_str();
            c.owner = o.owner.c_str();
            c.owner_uid = o.owner_uid;
            c.mode = o.mode;
            c.size = o.size ? static_cast<int64_t>(*o.size) : -1;
            c.messages = o.messages ? static_cast<int64_t>(*o.messages) : -1;
            c.sysv_id = o.sysv_id;
            c.creator_pid = o.creator_source != ipckit::CreatorSource::unknown ? o.creator_pid : 0;
            c.creator_source = ipckit::to_string(o.creator_source).data();
            c.creator_alive = o.creator_alive ? 1 : 0;
            c.in_use = o.in_use ? 1 : 0;
            c.creator_in_other_pid_namespace = o.creator_in_other_pid_namespace ? 1 : 0;
            c.last_sender_pid = queue ? o.last_sender_pid : 0;
            c.last_receiver_pid = queue ? o.last_receiver_pid : 0;
            c.stale = o.stale ? 1 : 0;
            if (o.service) {
                c.service_clients = o.service->clients;
                c.service_clients_attached = o.service->clients_attached;
                c.service_server_alive = o.service->server_alive ? 1 : 0;
                c.service_server_pid = o.service->server_pid;
                c.service_calls = o.service->calls;
                c.service_replies = o.service->replies;
                c.service_replies_dropped = o.service->replies_dropped;
                c.service_takeovers = o.service->takeovers;
            }
            made->view.push_back(c);
        }
        *list = made.release();
        return IPCKIT_OK;
    });
}

size_t ipckit_object_list_size(const ipckit_object_list* list) noexcept {
    return list != nullptr ? list->view.size() : 0;
}

const ipckit_object* ipckit_object_list_get(const ipckit_object_list* list, size_t index) noexcept {
    constexpr std::string_view call = "ipckit_object_list_get";
    if (list == nullptr) {
        invalid(call, "list is NULL");
        return nullptr;
    }
    if (index >= list->view.size()) {
        char what[96];
        std::snprintf(what, sizeof what, "index %zu is past the list's %zu objects", index,
                      list->view.size());
        invalid(call, what);
        return nullptr;
    }
    return &list->view[index];
}

void ipckit_object_list_free(ipckit_object_list* list) noexcept {
    delete list;
}

}  // extern "C"
