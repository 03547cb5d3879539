// What shm_race and shm_sync share: the items they pass, the ring they pass them through,
// the command line, and the consumer's bookkeeping (lost, duplicated, torn).
//
// An item is one 64-byte slot: word 0 holds the sequence number + 1 (so a slot nobody wrote,
// all zeros, is recognised), words 1–7 a value derived from it. A reader that sees words
// from two different items (the writer was half-way through overwriting the slot) has a
// torn item.
#pragma once

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace shm_example {

inline constexpr std::size_t words_per_item = 64;

struct Slot {
    std::uint64_t words[words_per_item];
};

inline std::uint64_t word_for(std::uint64_t sequence, std::size_t index) {
    return (sequence + 1) * 0x9e3779b97f4a7c15ULL ^ (index * 0x100000001b3ULL);
}

// Every shared access goes through a relaxed atomic_ref: each load and store is whole and
// the program has no data race in C++ terms, yet nothing orders one access against another
// and a load followed by a store is not one step. That is the "no synchronisation" of the
// lecture, without undefined behaviour.
template <class T>
inline T load(T& place) {
    return std::atomic_ref<T>(place).load(std::memory_order_relaxed);
}
template <class T>
inline void store(T& place, T value) {
    std::atomic_ref<T>(place).store(value, std::memory_order_relaxed);
}

inline void write_item(Slot& slot, std::uint64_t sequence) {
    store(slot.words[0], sequence + 1);
    for (std::size_t i = 1; i < words_per_item; ++i)
        store(slot.words[i], word_for(sequence, i));
}

inline Slot read_item(Slot& slot) {
    Slot copy;
    for (std::size_t i = 0; i < words_per_item; ++i)
        copy.words[i] = load(slot.words[i]);
    return copy;
}

struct Options {
    std::uint64_t count = 200000;
    std::uint64_t slots = 64;
    double limit_seconds = 20;  // a hard stop, so a run can never hang
};

inline void usage(const char* program, bool with_slots, FILE* to) {
    std::fprintf(
        to,
        "usage: %s [--count N]%s\n  --count N   items to pass from producer to consumer (default 200000)\n",
        program, with_slots ? " [--slots N]" : "");
    if (with_slots) std::fprintf(to, "  --slots N   slots in the shared ring (default 64)\n");
}

inline bool parse_number(std::string_view text, std::uint64_t& value) {
    if (text.empty() || text.size() > 12) return false;
    value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return true;
}

// Exits with status 2 and a message on bad input.
inline Options parse_options(int argc, char** argv, bool with_slots) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            usage(argv[0], with_slots, stdout);
            std::exit(0);
        }
        std::uint64_t* target = nullptr;
        if (arg == "--count") target = &options.count;
        if (arg == "--slots" && with_slots) target = &options.slots;
        if (target == nullptr) {
            std::fprintf(stderr, "%s: unknown argument '%s'\n", argv[0], argv[i]);
            usage(argv[0], with_slots, stderr);
            std::exit(2);
        }
        if (i + 1 >= argc || !parse_number(argv[i + 1], *target) || *target == 0) {
            std::fprintf(stderr, "%s: %s needs a positive whole number, got '%s'\n", argv[0], argv[i],
                         i + 1 < argc ? argv[i + 1] : "");
            std::exit(2);
        }
        ++i;
    }
    if (options.count > 100000000 || options.slots > 1000000) {
        std::fprintf(stderr, "%s: at most 100000000 items and 1000000 slots\n", argv[0]);
        std::exit(2);
    }
    return options;
}

// Runs the calling process on the `index`-th CPU it may use (0 or 1), when it may use at
// least two. On a busy machine the scheduler often runs two new processes by turns on one
// core; pinned to two cores they run at the same time, as on an idle machine.
inline void run_on_own_core(int index) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < 2) return;
    int seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (!CPU_ISSET(cpu, &allowed)) continue;
        if (seen++ == index) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            (void)::sched_setaffinity(0, sizeof one, &one);  // best effort: unpinned still works
            return;
        }
    }
}

// Spins, yielding the core now and then: with two cores, a spinner that never yields can
// starve the very process it waits for. Yielding too often has the opposite cost: the
// scheduler hands the core to someone else for a whole time slice, and the consumer misses
// the producer entirely. Every `yield_every` spins (about a millisecond at the default) is
// the compromise. Returns false once the run's time limit has passed.
class Waiter {
public:
    explicit Waiter(double limit_seconds, std::uint64_t yield_every = 1U << 15)
        : deadline_(std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(limit_seconds))),
          yield_every_(yield_every) {}

    bool pause() {
        ++spins_;
        if (spins_ % yield_every_ == 0) {
            ::sched_yield();
            if (std::chrono::steady_clock::now() > deadline_) return false;
        } else {
#if defined(__x86_64__) || defined(__i386__)
            _mm_pause();
#endif
        }
        return true;
    }

private:
    std::chrono::steady_clock::time_point deadline_;
    std::uint64_t yield_every_;
    std::uint64_t spins_ = 0;
};

// The consumer's view of what arrived.
class Tally {
public:
    explicit Tally(std::uint64_t produced) : produced_(produced), seen_(produced, 0) {}

    // Returns false for a torn item (not counted as consumed).
    bool record(const Slot& slot) {
        const std::uint64_t tag = slot.words[0];
        if (tag == 0 || tag > produced_) return ++torn_, false;
        const std::uint64_t sequence = tag - 1;
        for (std::size_t i = 1; i < words_per_item; ++i)
            if (slot.words[i] != word_for(sequence, i)) return ++torn_, false;
        if (seen_[sequence] != UINT32_MAX) ++seen_[sequence];
        if (consumed_ > 0 && sequence != last_ + 1) ++out_of_order_;
        last_ = sequence;
        ++consumed_;
        return true;
    }

    struct Report {
        std::uint64_t produced, consumed, lost, duplicated, torn, out_of_order;
    };

    [[nodiscard]] Report report() const {
        Report r{produced_, consumed_, 0, 0, torn_, out_of_order_};
        for (const std::uint32_t times : seen_) {
            if (times == 0) ++r.lost;
            if (times > 1) r.duplicated += times - 1;
        }
        return r;  // consumed = produced - lost + duplicated
    }

    static void print(const char* program, const Report& r, const char* verdict) {
        std::printf("%s: produced %llu, consumed %llu, lost %llu, duplicated %llu, torn %llu%s%s\n", program,
                    static_cast<unsigned long long>(r.produced), static_cast<unsigned long long>(r.consumed),
                    static_cast<unsigned long long>(r.lost), static_cast<unsigned long long>(r.duplicated),
                    static_cast<unsigned long long>(r.torn), verdict[0] != '\0' ? " \u2014 " : "", verdict);
    }

private:
    std::uint64_t produced_;
    std::vector<std::uint32_t> seen_;
    std::uint64_t consumed_ = 0;
    std::uint64_t torn_ = 0;
    std::uint64_t last_ = 0;
    std::uint64_t out_of_order_ = 0;
};

}  // namespace shm_example
