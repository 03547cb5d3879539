// shm_race — the lecture's "producer and consumer problem using shared memory without
// synchronization", run for real.
//
// A producer process and a consumer process share a System V segment holding a mailbox: one
// item slot and a `full` flag. Nothing else coordinates them, as in the lecture:
//
//     producer:  for each item:  slot = item;  full = 1;              (it keeps writing)
//     consumer:  forever:        while (!full) ;  item = slot;  full = 0;
//
// "If the first process keeps writing data, how can it ensure that the second one reads it?"
// It cannot. Whenever the consumer is not reading at that very moment (it is running on the
// other core a little behind, or the scheduler gave its core to someone else), the next item
// overwrites the last one: lost. When both run at once, the consumer can read a slot the
// producer is half-way through overwriting (torn), or read an item, clear the flag, and then
// see the flag the producer sets for that same item and read it again (duplicated). No sleep
// is planted anywhere: this is how the two processes behave. Every shared access is a
// relaxed atomic load or store (see shm_items.hpp), so the program is a race in its logic,
// not undefined behaviour in C++.
//
// The two processes are pinned to two different cores (when there are two), so that they
// really run at the same time, as they would on an idle machine. Unpinned on a busy machine,
// the scheduler often runs them by turns on one core, and the race then shows only as lost
// items (the producer writes a whole time slice's worth while the consumer waits its turn).
//
// The consumer checks every item and reports, e.g.:
//     shm_race: produced 200000, consumed 6122, lost 193878, duplicated 0, torn 4221 — ...
// where consumed = produced - lost + duplicated (torn reads are not items). shm_sync is the
// same producer and consumer made correct with semaphores.
//
// Usage: shm_race [--count N]
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

#include "ipckit/error.hpp"
#include "ipckit/sysv_shm.hpp"
#include "shm_items.hpp"

namespace {

using namespace shm_example;

struct Mailbox {
    std::uint32_t start_line;     // 1: the consumer runs, 2: so does the producer. Only so that
                                  // the producer does not finish before the consumer starts;
                                  // it orders no item
    std::uint32_t full;           // the plain flag: 1 after the producer wrote the slot
    std::uint32_t producer_done;  // the producer has written its last item
    Slot slot;
};

int produce(Mailbox& mailbox, const Options& options) {
    run_on_own_core(1);
    Waiter waiter(options.limit_seconds);
    while (load(mailbox.start_line) == 0)
        if (!waiter.pause()) return 1;
    store(mailbox.start_line, 2U);
    for (std::uint64_t sequence = 0; sequence < options.count; ++sequence) {
        write_item(mailbox.slot, sequence);
        store(mailbox.full, 1U);  // and on to the next item: nothing says it was read
    }
    store(mailbox.producer_done, 1U);
    return 0;
}

int consume(Mailbox& mailbox, const Options& options, Tally& tally) {
    run_on_own_core(0);
    Waiter waiter(options.limit_seconds);
    store(mailbox.start_line, 1U);
    while (load(mailbox.start_line) != 2)
        if (!waiter.pause()) return 1;
    for (;;) {
        while (load(mailbox.full) == 0) {
            if (load(mailbox.producer_done) != 0 && load(mailbox.full) == 0) return 0;
            if (!waiter.pause()) return 1;
        }
        tally.record(read_item(mailbox.slot));
        store(mailbox.full, 0U);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse_options(argc, argv, false);
    try {
        // IPC_PRIVATE, removed at once: the segment lives while the two processes are
        // attached and disappears with the last of them, however they end.
        auto segment = ipckit::SysvShm::create(ipckit::SysvKey::private_key(), sizeof(Mailbox));
        auto memory = segment.attach(ipckit::Access::read_write);
        segment.remove();
        auto& mailbox = *reinterpret_cast<Mailbox*>(memory.data());  // zero-filled by the kernel

        std::fflush(nullptr);
        const pid_t producer = ::fork();
        if (producer < 0) ipckit::throw_errno("fork", "producer");
        if (producer == 0) ::_exit(produce(mailbox, options));

        Tally tally(options.count);
        const int consumed = consume(mailbox, options, tally);
        int status = 0;
        while (::waitpid(producer, &status, 0) < 0 && errno == EINTR) {
        }
        const auto report = tally.report();
        if (consumed != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            Tally::print("shm_race", report, "");
            std::fprintf(
                stderr, "shm_race: gave up after %.0f s: the producer and consumer stopped making progress\n",
                options.limit_seconds);
            return 1;
        }
        const bool raced = report.lost + report.duplicated + report.torn > 0;
        Tally::print(
            "shm_race", report,
            raced ? "without synchronisation items are lost, duplicated or torn"
                  : "no race showed this run (the two processes may have shared one core); try a larger "
                    "--count");
        if (raced) {
            std::printf(
                "The producer kept writing without knowing whether the consumer had read the last item,\n"
                "so items were overwritten before they were read (lost). While both ran at once, the\n"
                "consumer could also read an item half-overwritten (torn) or read one twice (duplicated).\n"
                "Shared memory has no synchronisation of its own: shm_sync is the same pair with "
                "semaphores.\n");
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "shm_race: %s\n", e.what());
        return 1;
    }
}
