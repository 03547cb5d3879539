// Internal: what a transport implements to be reached through the channel API.
// One backend per transport family, each in its own file (channel_stream.cpp, channel_packet.cpp,
// channel_queue.cpp, channel_ring.cpp, channel_topic.cpp, channel_nats.cpp, channel_file.cpp);
// the table in transports.cpp says which one an address's scheme takes. Request/response
// backends (service:, nats) implement service_backend.hpp instead.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/backoff.hpp"
#include "ipckit/address.hpp"
#include "ipckit/channel.hpp"
#include "ipckit/deadline.hpp"
#include "ipckit/detail/owned.hpp"
#include "ipckit/error.hpp"
#include "ipckit/registry.hpp"
#include "ipckit/ring.hpp"
#include "ipckit/unix_socket.hpp"

namespace ipckit::detail {

enum class Role { create, open };

// Where the shared-memory region an address names lives (rings/region_memory.hpp): shm:,
// sysvshm:, topic:.
struct RegionPlace;
[[nodiscard]] RegionPlace region_place(const Address& address);

// Attaches one side (a ring end, a lanes end, a topic end: `Side::attach(bytes, wait)`) to a
// shared region, giving a creator that is still formatting it kFormatGrace to finish: an opener
// retries while the header is not valid yet (protocol_error); a creator never does.
// `attach_while_formatting` is the same retry around any `make()` that attaches (a service end).
template <class Make>
auto attach_while_formatting(Role role, Make&& make) {
    const auto grace = Deadline::after(kFormatGrace);
    for (auto backoff = Backoff::for_peer();;) {
        try {
            return make();
        } catch (const Error& e) {
            if (role == Role::create || e.code() != std::errc::protocol_error || !backoff.pause(grace)) throw;
        }
    }
}
template <class Side>
Side attach_formatted(std::span<std::byte> region, WaitMode wait, Role role) {
    return attach_while_formatting(role, [&] { return Side::attach(region, wait); });
}

// The one error for a message larger than the caller's buffer, whatever the transport:
// std::errc::message_size naming both sizes; the message stays queued for a larger buffer.
[[noreturn]] void throw_buffer_too_small(std::string_view address, std::size_t message, std::size_t buffer);

// Records an object a channel created in ipckit's registry, so that `ipckit ls` can name its
// creator and `ipckit rm --stale` can tell whether that process lives, and forgets it when
// the channel goes away (and, unless kept, removes the object). Never fails: see registry.hpp.
class Registration {
public:
    Registration() = default;
    explicit Registration(const Address& address);

    // The object outlives this process after all (a queue kept for its messages): its
    // record stays, so `ipckit ls` shows it.
    void keep() noexcept { entry_.keep(); }

private:
    struct Forget {
        void operator()(const RegistryEntry& entry) const noexcept { registry_forget(entry); }
    };
    detail::Owned<RegistryEntry, Forget> entry_;  // owns nothing: nothing recorded, or kept
};

class SenderBackend {
public:
    explicit SenderBackend(const Address& address) : address_(address.text) {}
    virtual ~SenderBackend() = default;
    // Called by a backend once it has created its object.
    void record_created(const Address& address) { registration_ = Registration(address); }
    [[nodiscard]] virtual IoResult send(std::span<const std::byte> message, Deadline deadline) = 0;
    [[nodiscard]] virtual std::size_t max_message_size() const = 0;
    // Zero copy, for transports that have record space to lend (rings); others refuse.
    [[nodiscard]] virtual Loan loan(std::size_t size, Deadline deadline);
    virtual void commit(std::size_t size);
    [[nodiscard]] const std::string& address() const { return address_; }
    // Ends the channel as the destructor would (lingering where the family does) and says
    // what became of what was sent. Called at most once; the destructor calls it otherwise.
    [[nodiscard]] virtual SenderClose finish() { return {}; }

protected:
    void keep_registration() noexcept { registration_.keep(); }

private:
    std::string address_;
    Registration registration_;  // destroyed after the derived backend has removed its object
};

// What a PollSet waits on (poll_set.cpp): a receiver (a message ready), a server (a request
// ready) or a client (a response ready, or a call in flight whose server went).
class Waitable {
public:
    virtual ~Waitable() = default;
    // A descriptor that polls readable when it may be ready; -1 if none.
    [[nodiscard]] virtual int native_handle() const { return -1; }
    // True when the next call can be made now without waiting, for transports that have no
    // descriptor or that buffer what they read. Must not block.
    [[nodiscard]] virtual bool ready() = 0;
    // True when the peer's death shows only through ready() (no descriptor event comes):
    // PollSet then wakes in slices to ask again.
    [[nodiscard]] virtual bool watches_peer_by_polling() const { return false; }
    // Wait-set support for one that has no standing descriptor but can be woken (a topic's or a
    // ring's doorbell): arm() adds the descriptors to poll and says whether it is ready (or the
    // peer's end is there) already; disarm() undoes it after the wait. Others: unsupported.
    enum class Arm { unsupported, ready, armed };
    [[nodiscard]] virtual Arm arm(std::vector<int>& fds) {
        (void)fds;
        return Arm::unsupported;
    }
    virtual void disarm() noexcept {}
};

class ReceiverBackend : public Waitable {
public:
    explicit ReceiverBackend(const Address& address) : address_(address.text) {}
    void record_created(const Address& address) { registration_ = Registration(address); }
    [[nodiscard]] virtual IoResult recv(std::span<std::byte> buffer, Deadline deadline) = 0;
    [[nodiscard]] virtual IoResult recv(std::vector<std::byte>& message, Deadline deadline) = 0;
    [[nodiscard]] virtual std::size_t max_message_size() const = 0;
    // Messages already waiting when this receiver opened the object (see Receiver).
    [[nodiscard]] virtual std::size_t waiting_at_open() const { return 0; }
    // Zero copy, for transports that keep whole records in memory both sides map (rings).
    [[nodiscard]] virtual RecordView read(Deadline deadline);
    virtual void release();
    // Messages lost (topic overflow=drop) just before the one the last recv delivered.
    [[nodiscard]] virtual std::uint64_t missed() const { return 0; }
    [[nodiscard]] const std::string& address() const { return address_; }

private:
    std::string address_;
    Registration registration_;
};

// An abstract Unix socket has no permissions: anyone may connect to one, or bind a name before
// its rightful owner. Both ends therefore check the other's uid (SO_PEERCRED), and only the
// same user passes. A filesystem socket is guarded by its file's mode instead.
inline bool same_user(const UnixSocket& peer) {
    return peer.peer_credentials().uid == ::geteuid();
}
inline void check_abstract_server(const UnixAddress& where, const UnixSocket& socket,
                                  const Address& address) {
    if (!where.is_abstract() || same_user(socket)) return;
    throw_error(std::errc::permission_denied,
                address.text + ": the socket @" + where.name() + " belongs to uid " +
                    std::to_string(socket.peer_credentials().uid) + ", not to this process's uid " +
                    std::to_string(::geteuid()) + "; refused");
}
// Accepts the next client of the same user; another user's connection is dropped unanswered.
inline std::optional<UnixSocket> accept_same_user(UnixListener& listener, Deadline deadline) {
    for (;;) {
        auto peer = listener.accept(deadline);
        if (!peer || !listener.address().is_abstract() || same_user(*peer)) return peer;
    }
}

// Largest message on stream transports unless the address says max=.
inline constexpr std::size_t kDefaultStreamLimit = 16u << 20;

}  // namespace ipckit::detail
