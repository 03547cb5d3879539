// `ipckit bench` output: the table, the lecture's claims as the run found them, JSON (the
// schema in docs/bench.schema.json), CSV, and the gnuplot picture.
#pragma once

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
    std::string channel_layer;                 // "present" | "absent"
    std::map<std::string, std::string> peers;  // name → "present" | "absent"
};

[[nodiscard]] Machine describe_machine();

// The baseline a row's ratio divides by: raw-spin for a round trip; for throughput at the same
// size raw-loan-ring for the loan rows, raw-memcpy for raw-copy-ring (and itself), raw-copy-ring
// for raw-loan-ring and everything else (the ceiling of a channel that copies).
[[nodiscard]] std::string ratio_baseline(std::string_view transport, Mode mode);
// Fills each row's ratio and ratio_to.
void compute_ratios(std::vector<Result>& results);

void print_table(std::FILE* out, const std::vector<Result>& results);
// One line per claim: "shared memory is the fastest: confirmed (…)".
[[nodiscard]] std::vector<std::string> summarize_claims(const std::vector<Result>& results);
// One line per performance target of DESIGN.md the run measured: "shm ÷ raw-copy-ring at 1MiB:
// 0.81x (target ≥ 0.95x): missed".
[[nodiscard]] std::vector<std::string> summarize_targets(const std::vector<Result>& results);

[[nodiscard]] std::string to_json(const Machine& machine, const std::vector<Result>& results);
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
