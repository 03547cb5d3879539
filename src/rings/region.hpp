// Internal: what every kind of shared-memory region shares (docs/ring-layout.md): the control
// line's stamp and its validation, the record area's limits, wake-ups and doorbells. Each kind
// (ring.cpp, lanes.cpp, topic.cpp) keeps only its own header, records and cursors.
//
// Adding a kind (the service of docs/region-layout-v3.md part C, built of kind-1 rings; the
// counters of part B): name it in region::Kind (src/rings/record.hpp) and in kind_name() below;
// format calls check_span, choose_capacity and, last, stamp; attach calls read_control, then
// checks its own header size and kind words against the region with corrupt_header. A kind
// that sleeps uses wait.hpp and wake_all/wake_sleepers; one that a PollSet watches uses the
// doorbell functions below.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "ipckit/fd.hpp"
#include "record.hpp"

namespace ipckit::detail::region {

// "ring", "lanes", "topic": how messages name a kind ("ring header: bad magic …").
[[nodiscard]] std::string_view kind_name(Kind kind) noexcept;

// Numbers for messages.
[[nodiscard]] inline std::string str(std::uint64_t value) {
    return std::to_string(value);
}
[[nodiscard]] std::string hex(std::uint64_t value);

// A capacity a data area may have: a power of two from kMinCapacity to kMaxCapacity.
[[nodiscard]] bool valid_capacity(std::uint64_t capacity) noexcept;

// Throws Error(invalid_argument) unless `region` is line-aligned and holds at least `needed`
// bytes (the smallest region of the kind).
void check_span(std::span<std::byte> region, Kind kind, std::size_t needed);

// The capacity format gives a data area: `requested`, or with 0 the largest that fits in
// `room`. Throws Error(invalid_argument) naming the kind when `requested` is not a valid
// capacity or needs more than `room` (`needed` is then the region size it would take).
[[nodiscard]] std::uint64_t choose_capacity(Kind kind, std::uint64_t requested, std::uint64_t room,
                                            std::uint64_t needed, std::size_t region_size);

// Fills the control line and stores the magic last (release): an attacher that acquires the
// magic sees every field, and everything the kind's format wrote before this call.
// `flags`: kFlagLatency or zero.
void stamp(ControlLine& control, Kind kind, std::size_t header_size, std::uint64_t capacity,
           std::initializer_list<std::uint64_t> kind_words = {}, std::uint32_t flags = 0);
// stamp's two halves, for a format that attaches an end of its own before anyone else can
// (TopicSubscriber::create): every field but the magic, then the magic.
void stamp_fields(ControlLine& control, Kind kind, std::size_t header_size, std::uint64_t capacity,
                  std::initializer_list<std::uint64_t> kind_words, std::uint32_t flags);
void publish_magic(ControlLine& control) noexcept;

// The control line, read once into locals: what the checks passed.
struct Control {
    std::uint32_t header_size;
    std::uint64_t capacity;
    std::uint64_t kind_words[4];
    std::uint32_t flags;  // known bits only (read_control refuses others)
};

// Reads and checks the control line at the start of `region` (magic, version, kind, line size,
// record alignment, capacity, and the header size unless `header_size` is 0: a kind whose
// header grows with its kind words checks it itself); throws Error(protocol_error) "<kind>
// header: …" saying what is wrong, and what the region is when it is another kind. The region
// passed check_span first.
[[nodiscard]] Control read_control(std::span<std::byte> region, Kind kind, std::size_t header_size);

// Error(protocol_error) unless a header of `header_size` and a data area of `capacity` fit in
// `region_size` bytes.
void check_fits(Kind kind, std::uint64_t header_size, std::uint64_t capacity, std::size_t region_size);

// Error(protocol_error) "<kind> header: <what>".
[[noreturn]] void corrupt_header(Kind kind, const std::string& what);

// Bumps a futex word and wakes everyone on it. For rare paths (attach, close): never throws.
void wake_all(std::atomic<std::uint32_t>& event) noexcept;

// ---- Doorbells ----
// A reader that waits in a PollSet binds a datagram socket to an abstract name and writes the
// name into the region; a writer that finds sleepers after a commit sends it one byte. Names
// start with kBellPrefix and a writer rings no other, so a hostile region can make it send one
// byte to another ipckit doorbell and nothing else.
inline constexpr std::string_view kBellPrefix = "ipckit-bell-";

// Binds a non-blocking datagram socket to the abstract name kBellPrefix + `tag` + a random
// suffix, returns it, and sets `name` to the name (without the leading NUL).
[[nodiscard]] Fd bind_doorbell(std::string_view tag, std::string& name);

// Rings the doorbell named by `length` bytes at `name` (read from the region: checked here),
// through `sender`, an unbound socket made on first use. Never throws; errors are ignored (a
// full socket already has a ring pending; a refused one belongs to a reader that died armed).
void ring_doorbell(const char* name, std::uint32_t length, std::size_t capacity, Fd& sender) noexcept;

// Empties a doorbell socket of the rings already sent.
void drain_doorbell(const Fd& doorbell) noexcept;

}  // namespace ipckit::detail::region
