// `ipckit bench` output: the table, the lecture's claims as the run found them, JSON (the
// schema in docs/bench.schema.json), CSV, and the gnuplot picture.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "bench_harness.hpp"

namespace ipckit::bench {

struct Machine {
    std::string cpu_model;
    int cores = 0;
    std::string kernel;
    bool pinned = false;
    std::vector<int> cpus;
    bool quick = false;
    Budget budget;
    std::string channel_layer;                           // "present" | "absent"
    std::map<std::string, std::string> peers;            // name → "present" | "absent"
    int pairs = 0;                                       // pairs per ratio (bench_pairs.hpp)
    double margin = 0;                                   // baselines further apart mark a pair unsteady
    std::uint64_t floor_start_ns = 0, floor_end_ns = 0;  // raw-spin p50 at the run's start and end
};

// One of DESIGN.md's ratio targets: `row` over `base` at `size` in `mode`, at most or at least
// `bound`.
struct Target {
    std::string_view row, base;
    Mode mode;
    std::size_t size;
    double bound;
    bool at_most;
};
[[nodiscard]] const std::vector<Target>& targets();

[[nodiscard]] Machine describe_machine();

// The baseline a row's ratio divides by: raw-spin for a round trip; for throughput at the same
// size raw-loan-ring for the loan rows, raw-memcpy for raw-copy-ring (and itself), raw-copy-ring
// for raw-loan-ring and everything else (the ceiling of a channel that copies).
[[nodiscard]] std::string ratio_baseline(std::string_view transport, Mode mode);
// Fills each row's ratio (the median of its pairs against ratio_baseline), spread, pairs and
// ratio_to from the run's paired ratios.
void attach_ratios(std::vector<Result>& results, const std::vector<PairedRatio>& ratios);

void print_table(std::FILE* out, const std::vector<Result>& results);
// One line per claim: "shared memory is the fastest: confirmed (…)".
[[nodiscard]] std::vector<std::string> summarize_claims(const std::vector<Result>& results);
// One line per performance target of DESIGN.md the run measured, judged from the median of its
// pairs and their quartiles: "shm / raw-copy-ring, throughput 1MiB: median 0.81x (IQR …): missed".
[[nodiscard]] std::vector<std::string> summarize_targets(const std::vector<Result>& results,
                                                         const std::vector<PairedRatio>& ratios);

[[nodiscard]] std::string to_json(const Machine& machine, const std::vector<Result>& results,
                                  const std::vector<PairedRatio>& ratios);
[[nodiscard]] std::string to_csv(const std::vector<Result>& results);

// Where gnuplot is, or empty when it is not on PATH.
[[nodiscard]] std::string find_gnuplot();
// Draws latency and throughput against size with gnuplot; the extension (.svg/.png) picks the
// format. Throws ipckit::Error when gnuplot is missing or fails.
void plot(const std::string& file, const Machine& machine, const std::vector<Result>& results);

// "850 ns", "12.3 µs", "1.25 ms".
[[nodiscard]] std::string format_ns(double ns);
// 65536 → "64KiB", 100 → "100B".
[[nodiscard]] std::string format_bytes(std::size_t bytes);

}  // namespace ipckit::bench
