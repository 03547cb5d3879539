// ipckit/shm_safe.hpp — what may live in shared memory, checked at compile time.
//
// Two processes that map the same bytes see one object, but neither ran the other's
// constructor, and either may die at any moment without running a destructor. So a type
// placed in shared memory must be plain bytes: standard layout (the same layout in every
// process built from the same header), trivially destructible (nobody is there to destroy
// it), no pointers (another process maps the region at another address), and every atomic
// in it lock-free (a lock-based std::atomic hides a process-local lock and is not shared).
//
// `ShmSafe<T>` checks this. A trivially copyable type qualifies as it is. A type holding
// atomics (which are not copyable) opts in by listing its fields, so each is checked:
//
//     struct Header {
//         std::atomic<std::uint32_t> sequence;
//         std::uint64_t payload[8];
//         using shm_fields = ipckit::ShmFields<decltype(sequence), decltype(payload)>;
//     };
//     static_assert(ipckit::ShmSafe<Header>);
//
//     auto mapping = ipckit::Mapping::anonymous_shared(4096);
//     Header& header = ipckit::construct_at<Header>(mapping.bytes(), 0);   // the creator
//     Header& same = ipckit::object_at<Header>(mapping.bytes(), 0);        // everyone else
//
// C++20 cannot enumerate a struct's fields, so a forgotten entry in `shm_fields` is not
// caught, and a struct that lists nothing is judged only as a whole (trivially copyable,
// standard layout): list the fields of every struct that holds atomics or might hold a
// pointer. The list is a promise the author makes and the compiler then checks.
//
// Errors: `construct_at` / `object_at` throw `ipckit::Error` (std::errc::invalid_argument)
// when the object would not fit in the region or would be misaligned.
// Thread-safety: compile-time checks and pure functions.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

namespace ipckit {

namespace detail {

template <class T>
struct IsShmField
    : std::bool_constant<std::is_trivially_copyable_v<T> && std::is_standard_layout_v<T> &&
                         !std::is_pointer_v<T> && !std::is_member_pointer_v<T> && !std::is_reference_v<T>> {};

template <class T>
struct IsShmField<std::atomic<T>>
    : std::bool_constant<std::atomic<T>::is_always_lock_free && IsShmField<T>::value> {};

template <class T, std::size_t N>
struct IsShmField<T[N]> : IsShmField<T> {};

// clang-format off
template <class T>
concept HasShmFields = requires { typename T::shm_fields; };

// A type that lists its fields is judged by the list alone: its own trivial copyability says
// nothing about pointers or lock-based atomics inside it.
template <class T>
concept DeclaresShmFields = HasShmFields<T> && T::shm_fields::value;

template <class T>
concept IsShmSafe = (HasShmFields<T> && DeclaresShmFields<T>) || (!HasShmFields<T> && IsShmField<T>::value);
// clang-format on

[[noreturn]] void throw_bad_placement(std::size_t offset, std::size_t size, std::size_t alignment,
                                      std::size_t region_size, bool misaligned);

}  // namespace detail

// The fields a shared-memory type declares; each must itself be ShmSafe, atomics lock-free.
template <class... Fields>
struct ShmFields
    : std::bool_constant<(... && (detail::IsShmField<Fields>::value || detail::DeclaresShmFields<Fields> ||
                                  (std::is_array_v<Fields> &&
                                   detail::DeclaresShmFields<std::remove_all_extents_t<Fields>>)))> {};

// clang-format off
template <class T>
concept ShmSafe = std::is_standard_layout_v<T> && std::is_trivially_destructible_v<T> && detail::IsShmSafe<T>;
// clang-format on

// The object of type T at `offset` in `region`, already constructed by someone (usually
// another process). Bounds and alignment are checked; the contents are not.
template <ShmSafe T>
[[nodiscard]] T& object_at(std::span<std::byte> region, std::size_t offset) {
    const auto address = reinterpret_cast<std::uintptr_t>(region.data()) + offset;
    if (offset > region.size() || region.size() - offset < sizeof(T) || address % alignof(T) != 0)
        detail::throw_bad_placement(offset, sizeof(T), alignof(T), region.size(), address % alignof(T) != 0);
    return *std::launder(reinterpret_cast<T*>(region.data() + offset));
}

// Constructs a T at `offset` in `region` (the creator does this once, before any other
// process uses the object) and returns it.
template <ShmSafe T, class... Args>
T& construct_at(std::span<std::byte> region, std::size_t offset, Args&&... args) {
    const auto address = reinterpret_cast<std::uintptr_t>(region.data()) + offset;
    if (offset > region.size() || region.size() - offset < sizeof(T) || address % alignof(T) != 0)
        detail::throw_bad_placement(offset, sizeof(T), alignof(T), region.size(), address % alignof(T) != 0);
    return *::new (static_cast<void*>(region.data() + offset)) T(std::forward<Args>(args)...);
}

}  // namespace ipckit
