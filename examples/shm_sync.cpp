// shm_sync — the producer and consumer of shm_race, made correct.
//
// The lecture asks: "if the first process keeps writing data, how can it ensure that the
// second one reads it?" With two semaphores that live in the shared segment next to the
// data (the classic bounded-buffer solution):
//
//     free_slots = SLOTS, full_slots = 0
//     producer:  free_slots.wait();  slot[in]  = item;  in++;   full_slots.post();
//     consumer:  full_slots.wait();  item = slot[out];  out++;  free_slots.post();
//
// The producer never overwrites a slot the consumer has not released, and the consumer never
// reads a slot the producer has not filled. `post` publishes (release) what was written before
// it and `wait` acquires it, so the consumer sees whole items. Each semaphore sleeps on a
// futex when it must wait and makes no system call when nobody sleeps.
//
// The consumer checks every item, as shm_race's does, and every item arrives once, in order:
//     shm_sync: produced 200000, consumed 200000, lost 0, duplicated 0, torn 0
// It exits 1 if any item was lost, duplicated, torn or out of order, or if the other side
// stopped making progress (each wait has a time limit: a dead peer is reported, not waited for).
//
// Usage: shm_sync [--count N] [--slots N]
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

#include "ipckit/error.hpp"
#include "ipckit/sync.hpp"
#include "ipckit/sysv_shm.hpp"
#include "shm_items.hpp"

namespace {

using namespace shm_example;
using namespace std::chrono_literals;

struct Ring {
    ipckit::ShmSemaphore free_slots;
    ipckit::ShmSemaphore full_slots;
    using shm_fields = ipckit::ShmFields<ipckit::ShmSemaphore, ipckit::ShmSemaphore>;
};

constexpr std::size_t slots_offset = 128;  // slots start on their own cache line

int produce(Ring& ring, Slot* slots, const Options& options) {
    std::uint64_t in = 0;
    for (std::uint64_t sequence = 0; sequence < options.count; ++sequence) {
        if (ring.free_slots.wait(ipckit::Deadline::after(10s)) != ipckit::Status::ok) return 1;
        write_item(slots[in], sequence);
        in = (in + 1) % options.slots;
        ring.full_slots.post();
    }
    return 0;
}

int consume(Ring& ring, Slot* slots, const Options& options, Tally& tally) {
    std::uint64_t out = 0;
    for (std::uint64_t received = 0; received < options.count; ++received) {
        if (ring.full_slots.wait(ipckit::Deadline::after(10s)) != ipckit::Status::ok) return 1;
        tally.record(read_item(slots[out]));
        out = (out + 1) % options.slots;
        ring.free_slots.post();
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse_options(argc, argv, true);
    try {
        // IPC_PRIVATE, removed at once: the segment lives while the two processes are
        // attached and disappears with the last of them, however they end.
        auto segment = ipckit::SysvShm::create(ipckit::SysvKey::private_key(),
                                               slots_offset + options.slots * sizeof(Slot));
        auto memory = segment.attach(ipckit::Access::read_write);
        segment.remove();
        auto& ring = ipckit::construct_at<Ring>(memory.bytes(), 0);
        ring.free_slots.post(static_cast<std::uint32_t>(options.slots));
        auto* slots = reinterpret_cast<Slot*>(memory.data() + slots_offset);

        std::fflush(nullptr);
        const pid_t producer = ::fork();
        if (producer < 0) ipckit::throw_errno("fork", "producer");
        if (producer == 0) ::_exit(produce(ring, slots, options));

        Tally tally(options.count);
        const int consumed = consume(ring, slots, options, tally);
        int status = 0;
        while (::waitpid(producer, &status, 0) < 0 && errno == EINTR) {
        }
        const auto report = tally.report();
        Tally::print("shm_sync", report, "");
        if (consumed != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            std::fprintf(stderr, "shm_sync: the %s stopped making progress\n",
                         consumed != 0 ? "producer" : "consumer");
            return 1;
        }
        if (report.lost + report.duplicated + report.torn + report.out_of_order != 0 ||
            report.consumed != report.produced) {
            std::fprintf(stderr,
                         "shm_sync: items were lost, duplicated, torn or out of order (%llu out of order)\n",
                         static_cast<unsigned long long>(report.out_of_order));
            return 1;
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "shm_sync: %s\n", e.what());
        return 1;
    }
}
