// fuzz/fuzz_targets.hpp — the entry functions of ipckit's fuzz targets.
//
// Each takes one input of arbitrary bytes, drives one piece of ipckit that reads untrusted data
// (an address a user typed, a stream another process wrote, a ring another process shares), and
// returns 0. An ipckit::Error is the right answer to bad input and is swallowed; anything else is
// a bug and ends the process: a sanitizer report, an exception of another type escaping, or a
// broken invariant (fuzz_fail prints what and aborts).
//
// Two callers share them: the libFuzzer programs in fuzz/*_fuzz.cpp (built with clang and
// -fsanitize=fuzzer by scripts/fuzz.sh), and tests/faults/fuzz_regression_test.cpp, which replays every
// checked-in input (fuzz/corpus/, fuzz/regressions/) in the normal test build, so an input that
// crashed once stays a test.
//
// Example (what a libFuzzer main does):
//     extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
//         return ipckit::fuzz::fuzz_address(data, size);
//     }
//
// Thread-safety: each call is self-contained; the targets create and remove their own kernel
// objects (a pipe or a socketpair) and memory per call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

namespace ipckit::fuzz {

// parse_address and parse_size on the input as text; checks what a successful parse promises.
int fuzz_address(const std::uint8_t* data, std::size_t size);
// The input's first bytes choose the framing, the channel's limit, the read buffer and pipe or
// socketpair; the rest is the stream. Decoded messages are compared with a reference decoder.
int fuzz_frame(const std::uint8_t* data, std::size_t size);
// The input is a program of operations on one ring: patches of arbitrary bytes anywhere in the
// region (header, cursors, records), attach, send, loan, recv, read, close.
int fuzz_ring(const std::uint8_t* data, std::size_t size);
// The same for a topic: patches of the header, publisher line, slots and records; attach up to
// four subscribers and the publisher; send, loan, recv, read, close.
int fuzz_topic(const std::uint8_t* data, std::size_t size);
// The same for a lanes region (many senders, one receiver): patches of the lanes header, the
// receiver line and each lane's ring; attach up to four senders and the receiver; send, loan,
// recv, read, close. Checks per-sender order and the receiver's turns while nothing is patched.
int fuzz_lanes(const std::uint8_t* data, std::size_t size);
// The same for a service region (one server, up to two clients): patches of the header, the
// ends and every slot's rings; attach, start, loan, recv, reply, loan_reply, wait, read, close.
// Checks that each response is its call's reply while nothing is patched.
int fuzz_service(const std::uint8_t* data, std::size_t size);
// The input is a program of ring calls on a memfd that shrinks and grows under the mapping, as a
// `truncate` of /dev/shm/NAME would do: never SIGBUS; an Error naming the region once it is lost.
int fuzz_shrink(const std::uint8_t* data, std::size_t size);
// The input's first bytes choose the reader's limit and whether bodies are read or skipped; the
// rest is a recorded log (file:), read from a memfd and compared with a reference decoder.
int fuzz_log(const std::uint8_t* data, std::size_t size);

// The first `count` bytes as a little-endian number: how a reference decoder reads a header.
[[nodiscard]] inline std::uint64_t little_endian(std::span<const std::byte> bytes, std::size_t count) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < count; ++i)
        value |= std::to_integer<std::uint64_t>(bytes[i]) << (8 * i);
    return value;
}

// A broken invariant: ipckit accepted hostile input and gave a wrong answer.
[[noreturn]] inline void fuzz_fail(const char* target, const char* what) {
    std::fprintf(stderr, "fuzz_%s: invariant broken: %s\n", target, what);
    std::abort();
}

}  // namespace ipckit::fuzz
