// Internal: shared memory under a region (region_memory.hpp) that cannot leak, cannot be
// truncated, and, when it is a named file that someone else can truncate, cannot kill its
// holders with SIGBUS.
//
// `SharedRegion` (shm:@NAME and topic:@NAME): the creator puts the region in a memfd,
// seals its size (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) and serves the descriptor on an
// abstract Unix socket from a thread of its own; an opener connects, receives the descriptor
// (SCM_RIGHTS), checks the seals and maps it. Each side checks the other's uid (SO_PEERCRED):
// only the creator's own user gets the descriptor, and an opener trusts only a server of its
// own uid. Nothing is in /dev/shm or the registry; the memory is freed by the kernel when the
// last holder goes, whoever died how. Every holder keeps the descriptor and its connection to
// the server; when the server goes (killed, or closed), a surviving holder binds the name and
// serves in its place, so new openers reach the memory as long as anyone holds it.
//
// `BusGuard`: a POSIX shm file (shm:/NAME) can be truncated under its holders, and the next
// access to a page beyond the end would raise SIGBUS. A guarded region is registered with a
// process-wide SIGBUS handler (installed with the first guard); a fault inside a registered
// region replaces the region's pages with anonymous zero pages (MAP_FIXED), marks it lost, and
// returns, so the access completes on zeros. The channel code checks `lost()` (one relaxed
// load) after each call and throws an Error naming the region. Faults anywhere else go to the
// handler that was there before (or the default action: the process dies).
//
// A sleeper on a truncated region is not woken by the cut (its futex words are in the pages cut
// away), so a guard given the file's descriptor also watches the file (inotify, one thread per
// process that sleeps in read()): a truncation below the mapping loses the region at once and
// bumps region_lost_event(), which every ring sleep watches beside its own words; the sleep then
// throws (sleep_on, wait.hpp) and the channel reports the truncation.
//
// Thread-safety: a SharedRegion or BusGuard is owned by one thread; the server thread and the
// handler touch only what they own.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ipckit/deadline.hpp"
#include "ipckit/mapping.hpp"

namespace ipckit::detail {

class BusGuard {
public:
    BusGuard() = default;
    // Guards [region.data(), region.data() + region.size()); the region must be a whole mapping
    // (page-aligned start) that outlives the guard. With `fd`, the file mapped there (open while
    // the guard lives), a truncation is seen at once, sleepers included (watched()). Throws Error
    // when 256 regions are guarded.
    explicit BusGuard(std::span<std::byte> region, std::string object, int fd = -1);
    BusGuard(BusGuard&& other) noexcept;
    BusGuard& operator=(BusGuard&& other) noexcept;
    ~BusGuard();

    // A fault hit the region: its contents are gone (now zeros, private to this process). One
    // acquire load, inline: a channel asks after every send and receive.
    [[nodiscard]] bool lost() const noexcept {
        return lost_ != nullptr && lost_->load(std::memory_order_acquire);
    }
    // Throws Error (std::errc::no_such_device_or_address) naming the region when lost().
    void check() const {
        if (lost()) [[unlikely]]
            throw_lost();
    }
    [[nodiscard]] bool active() const noexcept { return slot_ >= 0; }
    // The file is watched: a sleeper on the region is woken by its truncation. False where the
    // kernel refused the watch; a caller then looks between slices of its waits.
    [[nodiscard]] bool watched() const noexcept { return watched_; }

private:
    void release() noexcept;
    [[noreturn]] void throw_lost() const;
    int slot_ = -1;
    const std::atomic<bool>* lost_ = nullptr;  // the slot's flag, set by the SIGBUS handler
    bool watched_ = false;
    std::string object_;
};

// Bumped, and its sleepers woken, whenever a guarded region is lost (a futex word).
[[nodiscard]] std::atomic<std::uint32_t>& region_lost_event() noexcept;
// True when `address` lies in a guarded region that was lost.
[[nodiscard]] bool region_lost_at(const void* address) noexcept;

class SharedRegion {
public:
    // Creates a sealed memfd of `size` bytes, maps it, lets `initialise` format it, then serves
    // it on the abstract socket `socket_name` (without the '@'). `object` names it in errors,
    // e.g. "shm:@telemetry". The name in use by another server: Error(address_in_use).
    [[nodiscard]] static SharedRegion create(std::string_view socket_name, std::size_t size,
                                             const std::function<void(std::span<std::byte>)>& initialise,
                                             std::string object);
    // Connects to the creator (retrying until `deadline` while nobody listens), receives and
    // checks the descriptor, maps it. Refusal by uid: Error(permission_denied) naming the object.
    [[nodiscard]] static SharedRegion open(std::string_view socket_name, Deadline deadline,
                                           std::string object);

    SharedRegion(SharedRegion&&) noexcept;
    SharedRegion& operator=(SharedRegion&&) noexcept;
    ~SharedRegion();  // stops serving (creator), unmaps

    [[nodiscard]] std::span<std::byte> bytes() const noexcept { return mapping_.bytes(); }
    // This process serves the name now (the creator, or a holder that took over from it).
    [[nodiscard]] bool serving() const noexcept;
    // The name serves other memory now: a creator bound it in the moment it was free (after its
    // server was killed, before a survivor bound it), and no opener reaches this memory again.
    [[nodiscard]] bool superseded() const noexcept;

    struct Server;  // the listening socket and its thread (creator only)

private:
    SharedRegion(Mapping mapping, std::unique_ptr<Server> server) noexcept;
    Mapping mapping_;
    std::unique_ptr<Server> server_;
};

}  // namespace ipckit::detail
