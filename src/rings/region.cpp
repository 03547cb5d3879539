// What every kind of shared-memory region shares (region.hpp).
#include "region.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <bit>
#include <climits>
#include <cstring>
#include <random>

#include "ipckit/error.hpp"
#include "sync/futex.hpp"

namespace ipckit::detail::region {

std::string_view kind_name(Kind kind) noexcept {
    switch (kind) {
        case Kind::ring:
            return "ring";
        case Kind::lanes:
            return "lanes";
        case Kind::topic:
            return "topic";
        case Kind::service:
            return "service";
    }
    return "region";
}

std::string hex(std::uint64_t value) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s = "0x";
    bool started = false;
    for (int shift = 60; shift >= 0; shift -= 4) {
        const auto d = static_cast<unsigned>((value >> shift) & 0xf);
        if (d != 0 || started || shift == 0) {
            s += digits[d];
            started = true;
        }
    }
    return s;
}

bool valid_capacity(std::uint64_t capacity) noexcept {
    return std::has_single_bit(capacity) && capacity >= kMinCapacity && capacity <= kMaxCapacity;
}

void check_span(std::span<std::byte> region, Kind kind, std::size_t needed) {
    const std::string name(kind_name(kind));
    if (reinterpret_cast<std::uintptr_t>(region.data()) % kLineSize != 0) {
        throw_error(std::errc::invalid_argument, name + " region at " +
                                                     hex(reinterpret_cast<std::uintptr_t>(region.data())) +
                                                     " is not aligned to " + str(kLineSize) + " bytes");
    }
    if (region.size() < needed) {
        throw_error(std::errc::invalid_argument, name + " region of " + str(region.size()) +
                                                     " bytes is too small: a " + name + " needs at least " +
                                                     str(needed));
    }
}

std::uint64_t choose_capacity(Kind kind, std::uint64_t requested, std::uint64_t room, std::uint64_t needed,
                              std::size_t region_size) {
    if (requested == 0) return std::bit_floor(std::min(room, kMaxCapacity));
    const std::string name(kind_name(kind));
    if (!valid_capacity(requested)) {
        throw_error(std::errc::invalid_argument, name + " capacity " + str(requested) +
                                                     " is not a power of two between " + str(kMinCapacity) +
                                                     " and " + str(kMaxCapacity));
    }
    if (requested > room) {
        throw_error(std::errc::invalid_argument, name + " capacity " + str(requested) +
                                                     " needs a region of " + str(needed) +
                                                     " bytes; the region has " + str(region_size));
    }
    return requested;
}

void stamp(ControlLine& control, Kind kind, std::size_t header_size, std::uint64_t capacity,
           std::initializer_list<std::uint64_t> kind_words, std::uint32_t flags) {
    stamp_fields(control, kind, header_size, capacity, kind_words, flags);
    publish_magic(control);
}

void stamp_fields(ControlLine& control, Kind kind, std::size_t header_size, std::uint64_t capacity,
                  std::initializer_list<std::uint64_t> kind_words, std::uint32_t flags) {
    control.version = kVersion;
    control.kind = kind;
    control.header_size = static_cast<std::uint32_t>(header_size);
    control.line_size = static_cast<std::uint32_t>(kLineSize);
    control.record_alignment = kRecordAlignment;
    control.capacity = capacity;
    control.flags = flags;
    std::size_t i = 0;
    for (const std::uint64_t word : kind_words)
        control.kind_words[i++] = word;
}

void publish_magic(ControlLine& control) noexcept {
    // release: an attacher that acquires the magic sees every field above, and the kind's format.
    control.magic.store(kMagic, std::memory_order_release);
}

void corrupt_header(Kind kind, const std::string& what) {
    throw_error(std::errc::protocol_error, std::string(kind_name(kind)) + " header: " + what);
}

Control read_control(std::span<std::byte> region, Kind kind, std::size_t header_size) {
    const auto& control = *std::launder(reinterpret_cast<const ControlLine*>(region.data()));
    // acquire: pairs with stamp()'s release of the magic, so the fields below are the formatted ones.
    const std::uint64_t magic = control.magic.load(std::memory_order_acquire);
    if (magic != kMagic) {
        corrupt_header(kind, "bad magic " + hex(magic) + ", expected " + hex(kMagic) + " (not an ipckit " +
                                 std::string(kind_name(kind)) + ", or not formatted yet)");
    }
    const std::uint32_t version = control.version;
    if (version != kVersion) {
        corrupt_header(kind,
                       "version " + str(version) + ", this ipckit reads version " + str(kVersion) +
                           (version < kVersion ? " (a region of an older ipckit: format it again)" : ""));
    }
    const auto found = static_cast<std::uint32_t>(control.kind);
    if (found != static_cast<std::uint32_t>(kind)) {
        static constexpr const char* kIs[] = {"", "a 1:1 ring", "a lanes region", "a topic", "a service"};
        static constexpr const char* kHint[] = {"", " (open it without senders=N)", " (senders=N)", "", ""};
        const bool known = found >= 1 && found <= 4;
        const auto expected = static_cast<std::uint32_t>(kind);
        corrupt_header(kind, "kind " + str(found) + " is not " + kIs[expected] + " (kind " + str(expected) +
                                 ")" + (known ? ": it is " + std::string(kIs[found]) + kHint[found] : ""));
    }
    Control c{};
    c.header_size = control.header_size;
    const std::uint32_t alignment = control.record_alignment;
    const std::uint32_t line_size = control.line_size;
    if (alignment != kRecordAlignment || line_size != kLineSize ||
        (header_size != 0 && c.header_size != header_size)) {
        corrupt_header(kind, "layout (header " + str(c.header_size) + ", record alignment " + str(alignment) +
                                 ", line " + str(line_size) + ") differs from this ipckit's (" +
                                 (header_size != 0 ? str(header_size) : "-") + ", " + str(kRecordAlignment) +
                                 ", " + str(kLineSize) + ")");
    }
    c.capacity = control.capacity;
    if (!valid_capacity(c.capacity)) {
        corrupt_header(kind, "capacity " + str(c.capacity) + " is not a power of two between " +
                                 str(kMinCapacity) + " and " + str(kMaxCapacity));
    }
    for (std::size_t i = 0; i < 4; ++i)
        c.kind_words[i] = control.kind_words[i];
    c.flags = control.flags;
    if ((c.flags & ~kKnownFlags) != 0)
        corrupt_header(kind, "flags " + hex(c.flags) + " (known: " + hex(kFlagLatency) + " stats=latency)");
    return c;
}

void check_fits(Kind kind, std::uint64_t header_size, std::uint64_t capacity, std::size_t region_size) {
    if (capacity > region_size || header_size > region_size - capacity) {
        corrupt_header(kind, "capacity " + str(capacity) + " needs a region of " +
                                 str(header_size + capacity) + " bytes, but the region has " +
                                 str(region_size));
    }
}

void wake_all(std::atomic<std::uint32_t>& event) noexcept {
    event.fetch_add(1, std::memory_order_release);
    try {
        (void)futex_wake(event, INT_MAX);
    } catch (...) {
        // A sleeper also looks again at the end of its slice.
    }
}

namespace {

socklen_t abstract_address(sockaddr_un& address, const char* name, std::size_t length) noexcept {
    address = sockaddr_un{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path + 1, name, length);
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + length);
}

}  // namespace

Fd bind_doorbell(std::string_view tag, std::string& name) {
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) throw_errno("socket", "doorbell");
    std::random_device random;
    name = std::string(kBellPrefix) + std::string(tag) + std::to_string(::getpid()) + "-" +
           std::to_string(random()) + "-" + std::to_string(random());
    sockaddr_un address;
    const socklen_t size = abstract_address(address, name.data(), name.size());
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), size) != 0)
        throw_errno("bind", "doorbell @" + name);
    return fd;
}

void ring_doorbell(const char* name, std::uint32_t length, std::size_t capacity, Fd& sender) noexcept {
    if (length <= kBellPrefix.size() || length > capacity) return;
    sockaddr_un address;
    const socklen_t size = abstract_address(address, name, length);
    if (std::string_view(address.sun_path + 1, kBellPrefix.size()) != kBellPrefix) return;
    if (!sender) {
        sender.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!sender) return;  // the futex wake still reaches a blocking waiter
    }
    const char ring = 1;
    (void)::sendto(sender.get(), &ring, 1, MSG_DONTWAIT | MSG_NOSIGNAL,
                   reinterpret_cast<const sockaddr*>(&address), size);
}

void drain_doorbell(const Fd& doorbell) noexcept {
    if (!doorbell) return;
    char rings[64];
    while (::recv(doorbell.get(), rings, sizeof rings, MSG_DONTWAIT) > 0) {
    }
}

}  // namespace ipckit::detail::region
