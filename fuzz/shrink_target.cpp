// Fuzz target: a ring whose shared memory shrinks under it (a `truncate` of /dev/shm/NAME by
// anyone with write access), guarded as the shm:/ channel guards it (BusGuard in
// src/rings/shared_region.hpp). Whatever the program, the process never dies of SIGBUS; every
// ring call gives a Status or an Error; once a call has touched memory beyond the file's end the
// guard says the region is lost, and `check()` is an Error naming it.
//
// Input: byte 0 picks the capacity (4 KiB << (b & 3)), so the region spans several pages. The
// rest is a program, one operation per byte (b % 6) and its arguments:
//   0 try_send SIZE16    1 try_recv    2 read, touch every byte, release
//   3 shrink PAGES8: the memfd under the mapping becomes PAGES8 % (pages + 1) pages long
//   4 grow back to the full size (pages cut off come back as zeros in the file)
//   5 loan SIZE16, fill, commit
#include <unistd.h>

#include <optional>
#include <span>
#include <vector>

#include "fuzz_program.hpp"
#include "fuzz_targets.hpp"
#include "ipckit/error.hpp"
#include "ipckit/memfd.hpp"
#include "ipckit/ring.hpp"
#include "rings/shared_region.hpp"

namespace ipckit::fuzz {
namespace {
// Named: tests/faults/fuzz_regression_test.cpp includes every target into one translation unit.
namespace shrink_input {

void check(bool ok, const char* what) {
    if (!ok) fuzz_fail("shrink", what);
}

using Program = ProgramInput;  // fuzz_program.hpp

constexpr std::size_t kPage = 4096;

void run(Program& in) {
    const std::size_t capacity = std::size_t{4096} << (in.take(1) & 3);
    const std::size_t size = Ring::region_size(capacity);
    const std::size_t pages = (size + kPage - 1) / kPage;
    Memfd memfd = Memfd::create("fuzz-shrink", size, false);
    Mapping mapping = memfd.map(Access::read_write);
    (void)Ring::format(mapping.bytes(), {.capacity = capacity});
    detail::BusGuard guard(mapping.bytes(), "memfd:fuzz-shrink");
    std::optional<RingProducer> producer(RingProducer::attach(mapping.bytes()));
    std::optional<RingConsumer> consumer(RingConsumer::attach(mapping.bytes()));
    std::vector<std::byte> message;
    std::vector<std::byte> payload;
    bool cut_to_nothing = false;  // the file has no pages at all since the last shrink

    while (!in.empty()) {
        const auto op = in.take(1) % 6;
        bool touched = false;  // the call read or wrote the ring's memory
        try {
            switch (op) {
                case 0:
                    payload.assign(in.take(2) % (producer->max_message_size() + 1), std::byte{0x5a});
                    touched = true;
                    (void)producer->try_send(payload);
                    break;
                case 1:
                    touched = true;
                    (void)consumer->try_recv(message);
                    break;
                case 2: {
                    touched = true;
                    const RecordView view = consumer->read(Deadline::immediate());
                    if (view.ok()) {
                        unsigned sum = 0;
                        for (std::byte b : view.message)
                            sum += static_cast<unsigned>(b);
                        (void)sum;
                        consumer->release();
                    }
                    break;
                }
                case 3: {
                    const std::size_t keep = in.take(1) % (pages + 1);
                    check(::ftruncate(memfd.fd().get(), static_cast<off_t>(keep * kPage)) == 0, "ftruncate");
                    cut_to_nothing = keep == 0;
                    break;
                }
                case 4:
                    check(::ftruncate(memfd.fd().get(), static_cast<off_t>(size)) == 0, "ftruncate back");
                    cut_to_nothing = false;
                    break;
                default: {
                    const std::size_t want = in.take(2) % (producer->max_message_size() + 1);
                    touched = true;
                    const Loan loan = producer->loan(want, Deadline::immediate());
                    if (loan.ok()) {
                        for (auto& b : loan.buffer)
                            b = std::byte{0x33};
                        producer->commit(loan.buffer.size());
                    }
                    break;
                }
            }
        } catch (const Error&) {
            // Zeros or a truncated ring make the ring refuse: the right answer.
        }
        // Every ring call reads or writes shared memory; with no page left, that faulted.
        if (touched && cut_to_nothing) check(guard.lost(), "a call touched a truncated region unnoticed");
        if (guard.lost()) {
            bool said = false;
            try {
                guard.check();
            } catch (const Error& e) {
                said = std::string_view(e.what()).find("memfd:fuzz-shrink") != std::string_view::npos;
            }
            check(said, "a lost region did not give an Error naming it");
        }
    }
}

}  // namespace shrink_input
}  // namespace

int fuzz_shrink(const std::uint8_t* data, std::size_t size) {
    shrink_input::Program program(data, size);
    try {
        shrink_input::run(program);
    } catch (const Error&) {
    }
    return 0;
}

}  // namespace ipckit::fuzz
