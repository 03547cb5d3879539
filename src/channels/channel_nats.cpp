// The nats:// transport: a subject on a NATS server, through the NATS C client (libnats).
//
// Core NATS (no `stream=`): a Sender publishes, a Receiver holds a subscription (with
// `group=`, a queue subscription). The server fans a message out to every subscriber and
// keeps nothing: at most once. Each sender numbers its messages in a header so that receivers
// can count what a disconnection cost (nats.hpp).
//
// JetStream (`stream=NAME`): the stream is created on first use (file storage, the subject
// only); a Sender's send returns ok when the server acknowledged storing the message,
// repeating it under the same message id (so the stream drops the copy) until then; a
// Receiver pulls from a durable consumer and acknowledges each message when the next is asked
// for or the receiver closes: at least once.
//
// Request/reply (NatsServer, NatsClient): a service on a subject (service.hpp); below, before
// the table's makers.
//
// libnats starts its own threads; the callbacks below only touch atomics and a mutex.
#include "channel_backend.hpp"
#include "service_backend.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "core/backoff.hpp"
#include "ipckit/error.hpp"
#include "ipckit/nats.hpp"

#if IPCKIT_HAVE_NATS
#include <nats/nats.h>
#endif

namespace ipckit {
namespace detail {

struct BackendAccess {
    static SenderBackend* of(const Sender& sender) { return sender.backend_.get(); }
    static ReceiverBackend* of(const Receiver& receiver) { return receiver.backend_.get(); }
};

}  // namespace detail

#if IPCKIT_HAVE_NATS

namespace {

using namespace std::chrono_literals;

// Room kept below the server's max_payload for ipckit's header (Ipckit-Seq, or JetStream's
// Nats-Msg-Id): the server counts headers against the limit.
constexpr std::size_t kHeaderReserve = 128;
constexpr const char* kSeqHeader = "Ipckit-Seq";
// How long one wait inside a blocking call lasts before the connection's state is looked at
// again (a closed connection ends the wait at once, not at the deadline).
constexpr auto kSlice = 100ms;

std::errc errc_of(natsStatus s) {
    switch (s) {
        case NATS_NO_SERVER:
        case NATS_CONNECTION_DISCONNECTED:
            return std::errc::connection_refused;
        case NATS_CONNECTION_AUTH_FAILED:
        case NATS_NOT_PERMITTED:
            return std::errc::permission_denied;
        case NATS_MAX_PAYLOAD:
            return std::errc::message_size;
        case NATS_TIMEOUT:
            return std::errc::timed_out;
        case NATS_NOT_FOUND:
            return std::errc::no_such_file_or_directory;
        case NATS_CONNECTION_CLOSED:
            return std::errc::not_connected;
        default:
            return std::errc::io_error;
    }
}

// libnats's words for the last failure on this thread.
std::string last_error(natsStatus s) {
    std::string_view reason = nats_GetLastError(nullptr) != nullptr ? nats_GetLastError(nullptr) : "";
    // libnats puts where in its sources it failed first, "(conn.c:2088): ": not for users.
    if (reason.starts_with('(')) {
        if (const auto end = reason.find("): "); end != std::string_view::npos) reason.remove_prefix(end + 3);
    }
    return std::string(!reason.empty() ? reason : std::string_view(natsStatus_GetText(s)));
}

// "nats "ADDRESS": WHAT: NATS's reason". Never the token: `address` is the shown text.
[[noreturn]] void throw_nats(natsStatus s, std::string_view address, std::string_view what,
                             const std::string& reason) {
    std::string message = "nats \"";
    message += address;
    message += "\": ";
    message += what;
    message += ": ";
    message += reason;
    throw_error(errc_of(s), message);
}
[[noreturn]] void throw_nats(natsStatus s, std::string_view address, std::string_view what) {
    throw_nats(s, address, what, last_error(s));
}

int64_t slice_ms(Deadline deadline) {
    if (deadline.is_never()) return kSlice.count();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline.remaining()).count();
    return std::clamp<int64_t>(left, 1, kSlice.count());
}

Status waited(Deadline deadline) {
    return deadline.is_immediate() ? Status::would_block : Status::timed_out;
}

std::string random_id() {
    std::random_device device;
    char text[24];
    std::snprintf(text, sizeof text, "%08x%08x", device(), device());
    return text;
}

// What both ends share: the connection, its options, its JetStream context, and the counters
// its callbacks keep.
class Connection {
public:
    Connection(const Address& address, Deadline deadline) : shown_(address.text) {
        natsStatus s = natsOptions_Create(&options_);
        if (s != NATS_OK) throw_nats(s, shown_, "natsOptions_Create");
        const std::string host =
            address.target.find(':') != std::string::npos ? "[" + address.target + "]" : address.target;
        server_ = host + ":" + std::to_string(address.nats.port);
        const std::string url = "nats://" + server_;
        s = natsOptions_SetURL(options_, url.c_str());
        if (s == NATS_OK) s = natsOptions_SetTimeout(options_, 2000);
        // A send leaves at once, as on every other transport, instead of waiting in libnats's
        // buffer for its flusher thread (milliseconds of latency on a busy machine).
        if (s == NATS_OK) s = natsOptions_SetSendAsap(options_, true);
        if (s == NATS_OK) s = natsOptions_SetMaxReconnect(options_, address.nats.reconnect);
        if (s == NATS_OK) s = natsOptions_SetAllowReconnect(options_, address.nats.reconnect > 0);
        if (s == NATS_OK) s = natsOptions_SetCustomReconnectDelay(options_, &Connection::backoff, this);
        if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(options_, &Connection::on_disconnected, this);
        if (s == NATS_OK) s = natsOptions_SetReconnectedCB(options_, &Connection::on_reconnected, this);
        if (s == NATS_OK) s = natsOptions_SetClosedCB(options_, &Connection::on_closed, this);
        if (s == NATS_OK) s = natsOptions_SetErrorHandler(options_, &Connection::on_error, this);
        // A client that cannot keep up gets this many messages held for it before it drops (and
        // says so): enough for a burst, bounded so a stalled receiver does not eat the memory.
        if (s == NATS_OK) s = natsOptions_SetMaxPendingMsgs(options_, 65536);
        if (s == NATS_OK && !address.nats.creds.empty())
            s = natsOptions_SetUserCredentialsFromFiles(options_, address.nats.creds.c_str(), nullptr);
        if (s == NATS_OK && !address.nats.token.empty())
            s = natsOptions_SetToken(options_, address.nats.token.c_str());
        if (s != NATS_OK) {
            natsOptions_Destroy(options_);
            throw_nats(s, shown_, "options");
        }
        // A finite deadline covers a server that is not up yet, as for sockets; without one the
        // first refusal is final.
        for (auto backoff = detail::Backoff::for_peer();;) {
            s = natsConnection_Connect(&connection_, options_);
            if (s == NATS_OK) break;
            if (s != NATS_NO_SERVER || deadline.is_never() || !backoff.pause(deadline)) {
                natsOptions_Destroy(options_);
                throw_nats(s, shown_, "cannot connect to the NATS server at " + server_);
            }
        }
        if (!address.nats.stream.empty()) {
            s = natsConnection_JetStream(&js_, connection_, nullptr);
            if (s != NATS_OK) fail(s, "JetStream context");
            ensure_stream(address);
        }
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection() {
        if (connection_ == nullptr) return;  // fail() took it down
        shutdown();
        if (js_ != nullptr) jsCtx_Destroy(js_);
        natsConnection_Destroy(connection_);
        natsOptions_Destroy(options_);
    }

    // Sends what was published (a bounded wait), then closes: libnats's reader thread stops, so
    // a subscription may be destroyed after this without a message arriving for it meanwhile.
    void shutdown() {
        if (shut_) return;
        shut_ = true;
        if (natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED)
            (void)natsConnection_FlushTimeout(connection_, 5000);
        close_and_wait();
    }

    // Takes the connection down and throws; `subscription` (if any) is destroyed once no
    // message can arrive for it.
    [[noreturn]] void fail(natsStatus s, std::string_view what, natsSubscription* subscription = nullptr) {
        const std::string reason = last_error(s);
        close_and_wait();
        if (subscription != nullptr) natsSubscription_Destroy(subscription);
        if (js_ != nullptr) jsCtx_Destroy(js_);
        js_ = nullptr;
        natsConnection_Destroy(connection_);
        natsOptions_Destroy(options_);
        connection_ = nullptr;
        options_ = nullptr;
        throw_nats(s, shown_, what, reason);
    }

    natsConnection* get() const { return connection_; }
    jsCtx* js() const { return js_; }
    const std::string& shown() const { return shown_; }
    bool closed() const { return natsConnection_Status(connection_) == NATS_CONN_STATUS_CLOSED; }
    bool connected() const { return natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED; }
    std::uint64_t disconnects() const { return disconnects_.load(); }
    std::size_t max_payload() const {
        const int64_t payload = natsConnection_GetMaxPayload(connection_);
        return payload > static_cast<int64_t>(kHeaderReserve)
                   ? static_cast<std::size_t>(payload) - kHeaderReserve
                   : 0;
    }

    void fill(NatsReport& report) const {
        report.is_nats = true;
        report.disconnects = disconnects_.load();
        report.reconnects = reconnects_.load();
        // The closed callback may still be on its way while the state already says closed.
        report.gave_up = gave_up_.load() || (!closing_.load() && closed());
        std::lock_guard lock(mutex_);
        report.last_event = last_event_;
        if (report.gave_up && !report.last_event.starts_with("gave up")) report.last_event = gave_up_text();
    }
    void event(std::string text) {
        std::lock_guard lock(mutex_);
        last_event_ = std::move(text);
    }

private:
    std::string gave_up_text() const {
        return "gave up reconnecting to " + server_ + "; the channel is closed";
    }

    // libnats runs the callbacks on its own thread, after natsConnection_Close returns: this
    // object must outlive the last of them, which is the closed callback.
    void close_and_wait() {
        closing_.store(true);
        natsConnection_Close(connection_);
        std::unique_lock lock(mutex_);
        (void)closed_cv_.wait_for(lock, 5s, [&] { return closed_done_; });
    }

    // The stream holds the subject on disk; made by whichever end comes first.
    void ensure_stream(const Address& address) {
        jsStreamInfo* info = nullptr;
        jsErrCode code{};
        natsStatus s = js_GetStreamInfo(&info, js_, address.nats.stream.c_str(), nullptr, &code);
        if (s == NATS_OK) {
            jsStreamInfo_Destroy(info);
            return;
        }
        if (s != NATS_NOT_FOUND)
            fail(s, "JetStream stream " + address.nats.stream + " (is the server run with -js?)");
        jsStreamConfig config;
        jsStreamConfig_Init(&config);
        config.Name = address.nats.stream.c_str();
        const char* subjects[] = {address.nats.subject.c_str()};
        config.Subjects = subjects;
        config.SubjectsLen = 1;
        config.Storage = js_FileStorage;
        s = js_AddStream(&info, js_, &config, nullptr, &code);
        if (s == NATS_OK) {
            jsStreamInfo_Destroy(info);
            return;
        }
        // Another end created it at the same moment.
        if (js_GetStreamInfo(&info, js_, address.nats.stream.c_str(), nullptr, nullptr) == NATS_OK) {
            jsStreamInfo_Destroy(info);
            return;
        }
        fail(s, "creating JetStream stream " + address.nats.stream);
    }

    // Exponential back-off from 50 ms to 2 s, with jitter so that many clients do not all
    // come back at the same instant.
    static int64_t backoff(natsConnection*, int attempts, void*) {
        const int64_t base = std::min<int64_t>(2000, int64_t{50} << std::min(attempts, 6));
        static thread_local std::minstd_rand jitter(std::random_device{}());
        return base + static_cast<int64_t>(jitter() % static_cast<unsigned>(base / 4 + 1));
    }
    static void on_disconnected(natsConnection*, void* closure) {
        auto* self = static_cast<Connection*>(closure);
        self->disconnects_.fetch_add(1);
        self->event("disconnected from " + self->server_ + "; reconnecting");
    }
    static void on_reconnected(natsConnection*, void* closure) {
        auto* self = static_cast<Connection*>(closure);
        self->reconnects_.fetch_add(1);
        self->event("reconnected to " + self->server_);
    }
    static void on_closed(natsConnection* connection, void* closure) {
        auto* self = static_cast<Connection*>(closure);
        // Closed by this process (the destructor) is not giving up.
        if (!self->closing_.load()) {
            self->gave_up_.store(true);
            self->event(self->gave_up_text());
        }
        (void)connection;
        std::lock_guard lock(self->mutex_);
        self->closed_done_ = true;
        self->closed_cv_.notify_all();
    }
    static void on_error(natsConnection*, natsSubscription*, natsStatus s, void* closure) {
        static_cast<Connection*>(closure)->event(std::string("NATS: ") + natsStatus_GetText(s));
    }

    std::string shown_;
    std::string server_;
    natsOptions* options_ = nullptr;
    natsConnection* connection_ = nullptr;
    jsCtx* js_ = nullptr;
    std::atomic<std::uint64_t> disconnects_{0};
    std::atomic<std::uint64_t> reconnects_{0};
    std::atomic<bool> gave_up_{false};
    std::atomic<bool> closing_{false};
    bool shut_ = false;
    mutable std::mutex mutex_;
    std::condition_variable closed_cv_;
    bool closed_done_ = false;
    std::string last_event_;
};

class NatsSender final : public detail::SenderBackend {
public:
    NatsSender(const Address& address, Deadline deadline)
        : SenderBackend(address),
          connection_(address, deadline),
          subject_(address.nats.subject),
          id_(random_id()) {
        if (subject_.find_first_of("*>") != std::string::npos) {
            throw_error(std::errc::invalid_argument,
                        "nats \"" + address.text + "\": subject \"" + subject_ +
                            "\" has a wildcard: a sender publishes to one subject");
        }
        limit_ = connection_.max_payload();
        if (address.max_message) limit_ = std::min(limit_, *address.max_message);
    }

    IoResult send(std::span<const std::byte> message, Deadline deadline) override {
        if (message.size() > limit_) {
            throw_error(std::errc::message_size,
                        "nats \"" + address() + "\": message of " + std::to_string(message.size()) +
                            " B is over the limit of " + std::to_string(limit_) +
                            " B (the server's max_payload " + std::to_string(limit_ + kHeaderReserve) +
                            " B less " + std::to_string(kHeaderReserve) + " B for headers)");
        }
        if (connection_.closed()) return {Status::closed, 0};
        const std::string seq = id_ + "." + std::to_string(++sequence_);
        return connection_.js() != nullptr ? publish_stored(message, seq, deadline)
                                           : publish(message, seq, deadline);
    }
    std::size_t max_message_size() const override { return limit_; }

    void fill(NatsReport& report) const {
        connection_.fill(report);
        report.sent_disconnected = sent_disconnected_;
        report.retried = retried_;
    }

private:
    // Core NATS: handed to the client library, which sends it (or, while reconnecting, holds it
    // in its reconnect buffer and sends it on reconnection).
    IoResult publish(std::span<const std::byte> message, const std::string& seq, Deadline deadline) {
        natsMsg* msg = nullptr;
        natsStatus s =
            natsMsg_Create(&msg, subject_.c_str(), nullptr, reinterpret_cast<const char*>(message.data()),
                           static_cast<int>(message.size()));
        if (s == NATS_OK) s = natsMsgHeader_Set(msg, kSeqHeader, seq.c_str());
        if (s != NATS_OK) {
            natsMsg_Destroy(msg);
            throw_nats(s, address(), "natsMsg_Create");
        }
        for (;;) {
            const bool connected = connection_.connected();
            s = natsConnection_PublishMsg(connection_.get(), msg);
            if (s == NATS_OK) {
                if (!connected) ++sent_disconnected_;
                break;
            }
            if (s == NATS_CONNECTION_CLOSED || connection_.closed()) {
                natsMsg_Destroy(msg);
                return {Status::closed, 0};
            }
            // The reconnect buffer is full: wait for the server (backpressure, not loss). A write
            // that failed as the server went away (I/O error) is the same moment seen earlier,
            // before the client has noticed the disconnection: try again once it reconnects or
            // buffers; if it gives up, the connection closes and so does this channel.
            if (s != NATS_INSUFFICIENT_BUFFER && s != NATS_IO_ERROR && s != NATS_CONNECTION_DISCONNECTED) {
                natsMsg_Destroy(msg);
                throw_nats(s, address(), "publish");
            }
            if (deadline.expired()) {
                natsMsg_Destroy(msg);
                return {waited(deadline), 0};
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(slice_ms(deadline)));
        }
        natsMsg_Destroy(msg);
        return {Status::ok, message.size()};
    }

    // JetStream: ok only once the server said it stored the message. Repeats keep the message id,
    // so the stream stores one copy however many times it was sent.
    IoResult publish_stored(std::span<const std::byte> message, const std::string& id, Deadline deadline) {
        jsPubOptions options;
        jsPubOptions_Init(&options);
        options.MsgId = id.c_str();
        for (bool first = true;; first = false) {
            if (!first) ++retried_;
            options.MaxWait =
                deadline.is_immediate() ? 1000 : std::max<int64_t>(slice_ms(deadline) * 10, 100);
            jsPubAck* ack = nullptr;
            jsErrCode code{};
            const natsStatus s = js_Publish(&ack, connection_.js(), subject_.c_str(), message.data(),
                                            static_cast<int>(message.size()), &options, &code);
            if (s == NATS_OK) {
                jsPubAck_Destroy(ack);
                return {Status::ok, message.size()};
            }
            if (connection_.closed()) return {Status::closed, 0};
            const bool passing = s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS ||
                                 s == NATS_CONNECTION_DISCONNECTED || s == NATS_INSUFFICIENT_BUFFER ||
                                 s == NATS_CONNECTION_CLOSED;
            if (!passing) throw_nats(s, address(), "publish to stream");
            if (deadline.is_immediate() || deadline.expired()) return {waited(deadline), 0};
            std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
                std::chrono::milliseconds(slice_ms(deadline)), std::chrono::milliseconds(50)));
        }
    }

    Connection connection_;
    std::string subject_;
    std::string id_;  // this sender's name in the Ipckit-Seq header
    std::uint64_t sequence_ = 0;
    std::size_t limit_ = 0;
    std::atomic<std::uint64_t> sent_disconnected_{0};
    std::atomic<std::uint64_t> retried_{0};
};

class NatsReceiver final : public detail::ReceiverBackend {
public:
    NatsReceiver(const Address& address, Deadline deadline)
        : ReceiverBackend(address), connection_(address, deadline), grouped_(!address.nats.group.empty()) {
        natsStatus s = NATS_OK;
        if (connection_.js() != nullptr) {
            durable_ = !address.nats.durable.empty() ? address.nats.durable
                       : grouped_                    ? address.nats.group
                                                     : "ipckit";
            jsSubOptions options;
            jsSubOptions_Init(&options);
            options.Stream = address.nats.stream.c_str();
            // Redelivery of what a killed receiver had taken but not acknowledged.
            options.Config.AckWait = std::chrono::nanoseconds(10s).count();
            jsErrCode code{};
            s = js_PullSubscribe(&subscription_, connection_.js(), address.nats.subject.c_str(),
                                 durable_.c_str(), nullptr, &options, &code);
            if (s != NATS_OK) connection_.fail(s, "JetStream consumer " + durable_);
        } else {
            s = grouped_ ? natsConnection_QueueSubscribeSync(&subscription_, connection_.get(),
                                                             address.nats.subject.c_str(),
                                                             address.nats.group.c_str())
                         : natsConnection_SubscribeSync(&subscription_, connection_.get(),
                                                        address.nats.subject.c_str());
            if (s != NATS_OK) connection_.fail(s, "subscribe");
            s = natsSubscription_SetPendingLimits(subscription_, 65536, 512 << 20);
            if (s != NATS_OK) connection_.fail(s, "subscribe (pending limits)", subscription_);
            // The server knows of the subscription once this returns: what is sent after
            // `open` returned reaches this receiver.
            s = natsConnection_FlushTimeout(connection_.get(), 5000);
            if (s != NATS_OK) connection_.fail(s, "subscribe (flush)", subscription_);
        }
        limit_ = connection_.max_payload();
        if (address.max_message) limit_ = std::min(limit_, *address.max_message);
    }
    ~NatsReceiver() override {
        if (connection_.js() != nullptr) {
            acknowledge_taken();
            // Fetched but never handed out: back to the server at once, for the next receiver.
            for (natsMsg* msg : fetched_)
                (void)natsMsg_Nak(msg, nullptr);
        }
        // The acknowledgements leave, and no more messages come, before the subscription goes:
        // destroying it while libnats's reader still delivers to it is a use after free.
        connection_.shutdown();
        for (natsMsg* msg : fetched_)
            natsMsg_Destroy(msg);
        natsSubscription_Destroy(subscription_);
    }

    IoResult recv(std::span<std::byte> buffer, Deadline deadline) override {
        const IoResult r = next(deadline);
        if (!r.ok()) return r;
        natsMsg* msg = fetched_.front();
        const auto size = static_cast<std::size_t>(natsMsg_GetDataLength(msg));
        if (size > buffer.size()) {
            throw_error(std::errc::message_size, "nats \"" + address() + "\": message of " +
                                                     std::to_string(size) + " B does not fit the buffer of " +
                                                     std::to_string(buffer.size()) + " B (it stays queued)");
        }
        std::copy_n(reinterpret_cast<const std::byte*>(natsMsg_GetData(msg)), size, buffer.data());
        take();
        return {Status::ok, size};
    }
    IoResult recv(std::vector<std::byte>& message, Deadline deadline) override {
        const IoResult r = next(deadline);
        if (!r.ok()) return r;
        natsMsg* msg = fetched_.front();
        const auto size = static_cast<std::size_t>(natsMsg_GetDataLength(msg));
        message.resize(size);
        std::copy_n(reinterpret_cast<const std::byte*>(natsMsg_GetData(msg)), size, message.data());
        take();
        return {Status::ok, size};
    }
    std::size_t max_message_size() const override { return limit_; }
    bool ready() override {
        if (!fetched_.empty()) return true;
        if (connection_.js() != nullptr) {
            // A pull consumer's messages come only when asked for: ask, waiting 1 ms at most.
            return next(Deadline::immediate()).ok();
        }
        int messages = 0;
        int bytes = 0;
        return natsSubscription_GetPending(subscription_, &messages, &bytes) == NATS_OK && messages > 0;
    }

    void fill(NatsReport& report) const {
        connection_.fill(report);
        report.lost = gaps_ + dropped_;
        report.redelivered = redelivered_;
    }
    bool hand_back() {
        if (taken_ == nullptr) return false;
        (void)natsMsg_Nak(taken_, nullptr);
        natsMsg_Destroy(taken_);
        taken_ = nullptr;
        return true;
    }

private:
    // Makes fetched_.front() the next message, waiting until the deadline.
    IoResult next(Deadline deadline) {
        acknowledge_taken();
        while (fetched_.empty()) {
            if (connection_.closed()) return {Status::closed, 0};
            if (connection_.js() != nullptr) {
                natsMsgList list{};
                jsErrCode code{};
                // A pull waits on the server for at most one slice, then the state is checked.
                const natsStatus s = natsSubscription_Fetch(
                    &list, subscription_, 64, deadline.is_immediate() ? 1 : slice_ms(deadline), &code);
                if (s == NATS_OK) {
                    for (int i = 0; i < list.Count; ++i) {
                        fetched_.push_back(list.Msgs[i]);
                        list.Msgs[i] = nullptr;
                    }
                    natsMsgList_Destroy(&list);
                } else if (s != NATS_TIMEOUT && s != NATS_NO_RESPONDERS &&
                           s != NATS_CONNECTION_DISCONNECTED && s != NATS_CONNECTION_CLOSED &&
                           s != NATS_ERR && s != NATS_IO_ERROR) {
                    // NATS_IO_ERROR: the pull request met the socket of a server that just went
                    // (ECONNRESET); the client reconnects, as for the publishes above.
                    throw_nats(s, address(), "fetch from stream");
                } else if (s != NATS_TIMEOUT && !deadline.is_immediate()) {
                    // The server is away: the client reconnects meanwhile.
                    std::this_thread::sleep_for(
                        std::chrono::milliseconds(std::min<int64_t>(slice_ms(deadline), 20)));
                }
            } else {
                natsMsg* msg = nullptr;
                const natsStatus s = natsSubscription_NextMsg(
                    &msg, subscription_, deadline.is_immediate() ? 0 : slice_ms(deadline));
                count_dropped();
                if (s == NATS_OK) {
                    fetched_.push_back(msg);
                } else if (s == NATS_CONNECTION_CLOSED || s == NATS_INVALID_SUBSCRIPTION) {
                    return {Status::closed, 0};
                } else if (s != NATS_TIMEOUT && s != NATS_SLOW_CONSUMER) {
                    throw_nats(s, address(), "receive");
                }
            }
            if (fetched_.empty() && (deadline.is_immediate() || deadline.expired()))
                return {waited(deadline), 0};
        }
        return {Status::ok, 0};
    }

    // The front message was handed to the caller: count it, and keep it to acknowledge later.
    void take() {
        natsMsg* msg = fetched_.front();
        fetched_.pop_front();
        if (connection_.js() != nullptr) {
            jsMsgMetaData* meta = nullptr;
            if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
                if (meta->NumDelivered > 1) ++redelivered_;
                jsMsgMetaData_Destroy(meta);
            }
            taken_ = msg;
            return;
        }
        count_gap(msg);
        natsMsg_Destroy(msg);
    }

    void acknowledge_taken() {
        if (taken_ == nullptr) return;
        (void)natsMsg_Ack(taken_, nullptr);
        natsMsg_Destroy(taken_);
        taken_ = nullptr;
    }

    // A sender's numbers run 1, 2, 3...; a jump is what the server or a disconnection lost. In a
    // queue group the other members get the rest, so gaps mean nothing there.
    void count_gap(natsMsg* msg) {
        if (grouped_) return;
        const char* value = nullptr;
        if (natsMsgHeader_Get(msg, kSeqHeader, &value) != NATS_OK || value == nullptr) return;
        const std::string_view text(value);
        const auto dot = text.rfind('.');
        if (dot == std::string_view::npos) return;
        const std::string sender(text.substr(0, dot));
        const std::uint64_t seq = std::strtoull(value + dot + 1, nullptr, 10);
        auto [it, first] = last_seen_.try_emplace(sender, seq);
        if (first) return;  // what that sender published before this receiver came is not loss
        if (seq > it->second + 1) gaps_ += seq - it->second - 1;
        it->second = std::max(it->second, seq);
    }
    void count_dropped() {
        int64_t dropped = 0;
        if (natsSubscription_GetDropped(subscription_, &dropped) == NATS_OK && dropped > 0)
            dropped_ = static_cast<std::uint64_t>(dropped);
    }

    Connection connection_;
    bool grouped_;
    std::string durable_;
    natsSubscription* subscription_ = nullptr;
    std::deque<natsMsg*> fetched_;
    natsMsg* taken_ = nullptr;  // JetStream: handed out, acknowledged on the next call
    std::size_t limit_ = 0;
    std::map<std::string, std::uint64_t> last_seen_;
    std::atomic<std::uint64_t> gaps_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<std::uint64_t> redelivered_{0};
};

// Request/reply (service.hpp). The server holds a subscription on SUBJECT (with `group=`, a queue
// subscription: each request goes to one server of the group) and answers on each request's reply
// subject. The client subscribes to an inbox of its own, "_INBOX.<unique>.*", and sends call N
// with the reply subject "_INBOX.<unique>.N": the subject a response arrives on names its call,
// so the payload carries no id and any NATS responder can answer (docs/nats.md).
void check_request_reply(const Address& address) {
    if (!address.nats.stream.empty())
        throw_error(
            std::errc::invalid_argument,
            "nats \"" + address.text + "\": a service is core NATS request/reply; stream= is for channels");
    if (address.nats.subject.find_first_of("*>") != std::string::npos)
        throw_error(std::errc::invalid_argument, "nats \"" + address.text + "\": subject \"" +
                                                     address.nats.subject +
                                                     "\" has a wildcard: a service answers on one subject");
}

std::size_t request_limit(const Connection& connection, const Address& address) {
    const std::size_t limit = connection.max_payload();
    return address.max_message ? std::min(limit, *address.max_message) : limit;
}

void check_size(const std::string& address, std::string_view what, std::size_t size, std::size_t limit) {
    if (size <= limit) return;
    throw_error(std::errc::message_size, "nats \"" + address + "\": " + std::string(what) + " of " +
                                             std::to_string(size) + " B is over the limit of " +
                                             std::to_string(limit) + " B (max_message_size)");
}

class NatsServer final : public detail::ServerBackend {
public:
    explicit NatsServer(const Address& address)
        : ServerBackend(address), connection_((check_request_reply(address), address), Deadline::never()) {
        const auto& nats = address.nats;
        natsStatus s =
            nats.group.empty()
                ? natsConnection_SubscribeSync(&subscription_, connection_.get(), nats.subject.c_str())
                : natsConnection_QueueSubscribeSync(&subscription_, connection_.get(), nats.subject.c_str(),
                                                    nats.group.c_str());
        if (s != NATS_OK) connection_.fail(s, "subscribe");
        s = natsSubscription_SetPendingLimits(subscription_, 65536, 512 << 20);
        // Once the server knows of the subscription, a call made after `create` returned reaches it.
        if (s == NATS_OK) s = natsConnection_FlushTimeout(connection_.get(), 5000);
        if (s != NATS_OK) connection_.fail(s, "subscribe", subscription_);
        limit_ = request_limit(connection_, address);
        epoch_ = static_cast<std::uint32_t>(std::random_device{}());
    }
    ~NatsServer() override {
        connection_.shutdown();
        natsSubscription_Destroy(subscription_);
    }

    IoResult recv(Request& request, Deadline deadline) override {
        for (;;) {
            if (connection_.closed()) return {Status::closed, 0};
            natsMsg* msg = nullptr;
            const natsStatus s = natsSubscription_NextMsg(&msg, subscription_,
                                                          deadline.is_immediate() ? 0 : slice_ms(deadline));
            if (s == NATS_OK) {
                const char* inbox = natsMsg_GetReply(msg);
                // A plain publish to the subject asks nothing: no one waits for an answer.
                if (inbox != nullptr && *inbox != '\0') {
                    const auto size = static_cast<std::size_t>(natsMsg_GetDataLength(msg));
                    request.message.resize(size);
                    std::copy_n(reinterpret_cast<const std::byte*>(natsMsg_GetData(msg)), size,
                                request.message.data());
                    {
                        std::lock_guard lock(mutex_);
                        request.handle = {0, epoch_, ++next_id_};
                        inboxes_.emplace(request.handle.id, inbox);
                        ++counts_.calls;
                    }
                    natsMsg_Destroy(msg);
                    return {Status::ok, size};
                }
                natsMsg_Destroy(msg);
            } else if (s == NATS_CONNECTION_CLOSED || s == NATS_INVALID_SUBSCRIPTION) {
                return {Status::closed, 0};
            } else if (s != NATS_TIMEOUT && s != NATS_SLOW_CONSUMER) {
                throw_nats(s, address(), "receive a request");
            }
            if (deadline.is_immediate() || deadline.expired()) return {waited(deadline), 0};
        }
    }

    IoResult reply(const ReplyHandle& to, std::span<const std::byte> response) override {
        check_size(address(), "response", response.size(), limit_);
        std::string inbox;
        {
            std::lock_guard lock(mutex_);
            const auto it = to.epoch == epoch_ ? inboxes_.find(to.id) : inboxes_.end();
            if (it == inboxes_.end())
                throw_error(std::errc::invalid_argument,
                            "nats \"" + address() + "\": reply to request " + std::to_string(to.id) +
                                ": stale or unknown request id (never received by this server, or answered)");
            inbox = std::move(it->second);
            inboxes_.erase(it);
        }
        // The caller may have given up or gone: NATS cannot tell, and a reply to no one costs nothing.
        const natsStatus s = natsConnection_Publish(connection_.get(), inbox.c_str(), response.data(),
                                                    static_cast<int>(response.size()));
        std::lock_guard lock(mutex_);
        if (s == NATS_OK) {
            ++counts_.replies;
            return {Status::ok, response.size()};
        }
        ++counts_.replies_dropped;
        if (s == NATS_CONNECTION_CLOSED || connection_.closed()) return {Status::closed, 0};
        throw_nats(s, address(), "reply");
    }

    std::size_t max_message_size() const override { return limit_; }
    // libnats has no descriptor: a PollSet asks between short sleeps.
    bool ready() override {
        int messages = 0;
        int bytes = 0;
        return connection_.closed() ||
               (natsSubscription_GetPending(subscription_, &messages, &bytes) == NATS_OK && messages > 0);
    }
    ServerCounts counts() const override {
        std::lock_guard lock(mutex_);
        return counts_;
    }
    void close() noexcept override { connection_.shutdown(); }

private:
    Connection connection_;
    natsSubscription* subscription_ = nullptr;
    std::size_t limit_ = 0;
    std::uint32_t epoch_ = 0;   // a handle from another server of the group, or an earlier one, is stale
    mutable std::mutex mutex_;  // reply runs on any thread of the server
    std::uint64_t next_id_ = 0;
    std::map<std::uint64_t, std::string> inboxes_;  // request id → the caller's reply subject
    ServerCounts counts_;
};

class NatsClient final : public detail::ClientBackend {
public:
    explicit NatsClient(const Address& address)
        : ClientBackend(address),
          connection_((check_request_reply(address), address), Deadline::never()),
          subject_(address.nats.subject),
          inflight_(address.region.inflight) {
        natsInbox* inbox = nullptr;
        natsStatus s = natsInbox_Create(&inbox);
        if (s != NATS_OK) connection_.fail(s, "natsInbox_Create");
        inbox_ = std::string(inbox) + ".";
        natsInbox_Destroy(inbox);
        s = natsConnection_Subscribe(&subscription_, connection_.get(), (inbox_ + "*").c_str(),
                                     &NatsClient::on_response, this);
        if (s != NATS_OK) connection_.fail(s, "subscribe to the reply inbox");
        s = natsSubscription_SetOnCompleteCB(subscription_, &NatsClient::on_complete, this);
        if (s == NATS_OK) s = natsConnection_FlushTimeout(connection_.get(), 5000);
        if (s != NATS_OK) connection_.fail(s, "subscribe to the reply inbox", subscription_);
        limit_ = request_limit(connection_, address);
    }
    ~NatsClient() override {
        connection_.shutdown();
        // The response callback may be running on libnats's thread until the completion callback.
        std::unique_lock lock(mutex_);
        (void)arrived_.wait_for(lock, 5s, [&] { return complete_; });
        lock.unlock();
        natsSubscription_Destroy(subscription_);
    }

    Client::Started start(std::span<const std::byte> request, Deadline deadline) override {
        check_size(address(), "request", request.size(), limit_);
        if (connection_.closed()) return {Status::closed, {}};
        Call* call = nullptr;
        std::uint64_t id = 0;
        {
            std::lock_guard lock(mutex_);
            if (calls_.size() >= inflight_)
                throw_error(std::errc::resource_unavailable_try_again,
                            "nats \"" + address() + "\": " + std::to_string(calls_.size()) +
                                " calls in flight already, the most this client may have (inflight=" +
                                std::to_string(inflight_) + ")");
            id = ++next_id_;
            call = &calls_[id];  // map nodes stay put: the pointer outlives the lock
            call->request.assign(request.begin(), request.end());
            call->disconnects = connection_.disconnects();
        }
        const Status sent = send(id, *call, deadline);
        if (sent != Status::ok) {
            std::lock_guard lock(mutex_);
            calls_.erase(id);
            return {sent, {}};
        }
        return {Status::ok, {id}};
    }

    IoResult wait(CallId id, std::vector<std::byte>& response, Deadline deadline) override {
        std::unique_lock lock(mutex_);
        const auto it = calls_.find(id.id);
        if (it == calls_.end())
            throw_error(
                std::errc::invalid_argument,
                "nats \"" + address() + "\": wait for call " + std::to_string(id.id) +
                    ": no such call in flight (never started, or already answered, timed out or closed)");
        Call& call = it->second;
        const auto end = [&](Status status) -> IoResult {
            const std::size_t size = call.response.size();
            if (status == Status::ok) response = std::move(call.response);
            calls_.erase(it);
            return {status, status == Status::ok ? size : 0};
        };
        for (;;) {
            if (call.state == Call::State::answered) return end(Status::ok);
            // Lost with the connection: the request may or may not have reached a server.
            if (connection_.closed() || connection_.disconnects() != call.disconnects)
                return end(Status::closed);
            auto wake = Deadline::Clock::now() + kSlice;
            if (!deadline.is_never()) wake = std::min(wake, deadline.when());
            for (auto& [other_id, other] : calls_) {
                if (other.state != Call::State::unanswered) continue;
                if (other.resend_at > Deadline::Clock::now()) {
                    wake = std::min(wake, other.resend_at);
                    continue;
                }
                // No server yet: ask again, until one answers or the deadline passes. (Also on a
                // look without waiting, so a PollSet's caller keeps asking too.)
                other.state = Call::State::waiting;
                lock.unlock();
                const Status sent = send(other_id, other, Deadline::immediate());
                lock.lock();
                if (sent == Status::closed) return end(Status::closed);
                if (sent != Status::ok) {  // the reconnect buffer is full: try again shortly
                    other.state = Call::State::unanswered;
                    other.resend_at = Deadline::Clock::now() + kNoServerPause;
                }
            }
            if (deadline.is_immediate()) return {Status::would_block, 0};
            if (deadline.expired()) return end(Status::timed_out);
            arrived_.wait_until(lock, wake);
        }
    }

    std::size_t max_message_size() const override { return limit_; }
    // A response is there, or a call's connection was lost. A PollSet asks between short sleeps
    // (libnats has no descriptor).
    bool ready() override {
        std::lock_guard lock(mutex_);
        const bool lost = connection_.closed();
        return std::any_of(calls_.begin(), calls_.end(), [&](const auto& entry) {
            return entry.second.state == Call::State::answered || lost ||
                   entry.second.disconnects != connection_.disconnects();
        });
    }

private:
    struct Call {
        enum class State { waiting, unanswered, answered };
        State state = State::waiting;
        std::vector<std::byte> request;  // kept to ask again while no server answers
        std::vector<std::byte> response;
        std::uint64_t disconnects = 0;  // the connection's count when the call was sent
        Deadline::Clock::time_point resend_at;
    };
    // How long a call with no server waits before asking again: a server that comes is found
    // this soon, and an absent one costs the NATS server fifty requests a second per call.
    static constexpr auto kNoServerPause = 20ms;

    Status send(std::uint64_t id, const Call& call, Deadline deadline) {
        const std::string reply = inbox_ + std::to_string(id);
        for (;;) {
            const natsStatus s =
                natsConnection_PublishRequest(connection_.get(), subject_.c_str(), reply.c_str(),
                                              call.request.data(), static_cast<int>(call.request.size()));
            if (s == NATS_OK) return Status::ok;
            if (s == NATS_CONNECTION_CLOSED || connection_.closed()) return Status::closed;
            // The reconnect buffer is full: wait for the NATS server, as a sender does.
            if (s != NATS_INSUFFICIENT_BUFFER && s != NATS_IO_ERROR && s != NATS_CONNECTION_DISCONNECTED)
                throw_nats(s, address(), "send a request");
            if (deadline.is_immediate() || deadline.expired()) return waited(deadline);
            std::this_thread::sleep_for(std::chrono::milliseconds(slice_ms(deadline)));
        }
    }

    // On libnats's delivery thread.
    static void on_response(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
        auto* self = static_cast<NatsClient*>(closure);
        const std::string_view subject = natsMsg_GetSubject(msg);
        const std::uint64_t id = std::strtoull(subject.data() + subject.rfind('.') + 1, nullptr, 10);
        {
            std::lock_guard lock(self->mutex_);
            const auto it = self->calls_.find(id);
            // An answer to a call that ended (timed out, closed) is dropped.
            if (it != self->calls_.end() && it->second.state == Call::State::waiting) {
                Call& call = it->second;
                if (natsMsg_IsNoResponders(msg)) {
                    call.state = Call::State::unanswered;
                    call.resend_at = Deadline::Clock::now() + kNoServerPause;
                } else {
                    const auto* data = reinterpret_cast<const std::byte*>(natsMsg_GetData(msg));
                    call.response.assign(data, data + natsMsg_GetDataLength(msg));
                    call.state = Call::State::answered;
                }
            }
        }
        self->arrived_.notify_all();
        natsMsg_Destroy(msg);
    }
    static void on_complete(void* closure) {
        auto* self = static_cast<NatsClient*>(closure);
        std::lock_guard lock(self->mutex_);
        self->complete_ = true;
        self->arrived_.notify_all();
    }

    Connection connection_;
    std::string subject_;
    std::string inbox_;  // "_INBOX.<unique>.": a call's reply subject is this and its id
    std::size_t inflight_;
    std::size_t limit_ = 0;
    natsSubscription* subscription_ = nullptr;
    std::mutex mutex_;  // calls_, shared with the response callback
    std::condition_variable arrived_;
    std::map<std::uint64_t, Call> calls_;
    std::uint64_t next_id_ = 0;
    bool complete_ = false;
};

}  // namespace

namespace detail {

std::unique_ptr<SenderBackend> make_nats_sender(const Address& address, Role, Deadline deadline) {
    return std::make_unique<NatsSender>(address, deadline);
}
std::unique_ptr<ReceiverBackend> make_nats_receiver(const Address& address, Role, Deadline deadline) {
    return std::make_unique<NatsReceiver>(address, deadline);
}
std::unique_ptr<ServerBackend> make_nats_server(const Address& address) {
    return std::make_unique<NatsServer>(address);
}
std::unique_ptr<ClientBackend> make_nats_client(const Address& address) {
    return std::make_unique<NatsClient>(address);
}

}  // namespace detail

NatsReport nats_report(const Sender& sender) {
    NatsReport report;
    if (const auto* nats = dynamic_cast<const NatsSender*>(detail::BackendAccess::of(sender)))
        nats->fill(report);
    return report;
}
NatsReport nats_report(const Receiver& receiver) {
    NatsReport report;
    if (const auto* nats = dynamic_cast<const NatsReceiver*>(detail::BackendAccess::of(receiver)))
        nats->fill(report);
    return report;
}
bool nats_hand_back_last(Receiver& receiver) {
    auto* nats = dynamic_cast<NatsReceiver*>(detail::BackendAccess::of(receiver));
    return nats != nullptr && nats->hand_back();
}
bool nats_available() noexcept {
    return true;
}

#else  // built without libnats

namespace detail {

namespace {
[[noreturn]] void not_built(const Address& address) {
    throw_error(
        std::errc::function_not_supported,
        "nats \"" + address.text + "\": built without NATS (libnats-dev absent when ipckit was configured)");
}
}  // namespace

std::unique_ptr<SenderBackend> make_nats_sender(const Address& address, Role, Deadline) {
    not_built(address);
}
std::unique_ptr<ReceiverBackend> make_nats_receiver(const Address& address, Role, Deadline) {
    not_built(address);
}
std::unique_ptr<ServerBackend> make_nats_server(const Address& address) {
    not_built(address);
}
std::unique_ptr<ClientBackend> make_nats_client(const Address& address) {
    not_built(address);
}

}  // namespace detail

NatsReport nats_report(const Sender&) {
    return {};
}
NatsReport nats_report(const Receiver&) {
    return {};
}
bool nats_hand_back_last(Receiver&) {
    return false;
}
bool nats_available() noexcept {
    return false;
}

#endif

}  // namespace ipckit
