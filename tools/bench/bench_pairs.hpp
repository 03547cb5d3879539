// `ipckit bench` paired, interleaved measurement.
//
// A shared machine moves its CPUs between placements within minutes, so two rows measured a
// minute apart may have run on different hardware. Every ratio the bench reports is therefore
// measured as pairs: the row and its baseline alternate in short slices (one process pair per
// slice), baseline first and last:
//
//     B  R1  B  R2  B  …  RM  B      (one round; `pairs` rounds)
//
// A pair is one slice of a row with the baseline slices either side of it, and its ratio is the
// row's figure over the mean of those two. When the two baseline slices disagree by more than
// the margin, the placement moved during the pair: the row is measured once more, followed by
// a fresh baseline slice; a pair whose baselines still disagree is kept but marked unsteady.
// The ratio reported is the median of the steady pairs' ratios, with their quartiles.
// Thread-safety: single-threaded, like the rest of the tool.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bench_harness.hpp"

namespace ipckit::bench {

// One slice's figure: a round trip's p50 in ns (latency) or bytes/s (throughput).
[[nodiscard]] double figure(const Result& slice);

// Whether two baseline figures disagree by more than `margin` (0.25: the larger is more than
// 25% above the smaller).
[[nodiscard]] bool disagree(double before, double after, double margin);

// Median and quartiles of values (linear interpolation between closest ranks, so the median of
// an even count is the mean of the middle two).
[[nodiscard]] double quantile(std::vector<double> values, double q);

// Over the steady pairs, or over every pair when fewer than half are steady. Empty: no pairs.
[[nodiscard]] std::optional<Spread> summarize(const std::vector<Pair>& pairs);

enum class Verdict { met, missed, unstable };
[[nodiscard]] std::string_view to_string(Verdict verdict) noexcept;
// What a baseline is to its rows: a floor no row can go below (raw-spin), a ceiling no row can go
// above (the bare rings), or neither (a target against another row, such as shm).
enum class Bound { none, floor, ceiling };
[[nodiscard]] Bound bound_of(std::string_view baseline) noexcept;
// met: the median and both quartiles meet the target; missed: none of them does; unstable:
// the target lies inside the interquartile range, fewer than half of the pairs were steady, or
// the middle half of the pairs went through the baseline's bound (every quartile below 1 against
// a floor, above 1 against a ceiling): then the baseline did not measure what it stands for
// (a spinning floor starved on a loaded machine), and no verdict can rest on it.
// `at_most`: the target is an upper bound (latency ratios), else a lower bound.
[[nodiscard]] Verdict judge(const Spread& spread, double target, bool at_most, Bound bound = Bound::none);

// A row of the table, or a baseline: what one slice runs.
struct RowKey {
    Contender* contender = nullptr;
    Mode mode = Mode::latency;
    std::size_t size = 0;
    [[nodiscard]] auto tie() const { return std::tie(contender, mode, size); }
    friend bool operator<(const RowKey& a, const RowKey& b) { return a.tie() < b.tie(); }
    friend bool operator==(const RowKey& a, const RowKey& b) { return a.tie() == b.tie(); }
};

// Rows measured against one baseline.
struct PairGroup {
    RowKey base;
    std::vector<RowKey> rows;
};

// Runs one slice of a row (the harness's run_row with the slice budget, in the tool).
using SliceRunner = std::function<Result(const RowKey&)>;

struct PairedRun {
    std::map<RowKey, std::vector<Result>> slices;  // every slice of every row and baseline, in order
    std::vector<PairedRatio> ratios;               // one per (row, baseline) of the groups
};

// The pairs of `row` against `base` in `mode` at `size` (the row's), or null.
[[nodiscard]] const PairedRatio* find_ratio(const std::vector<PairedRatio>& ratios, std::string_view row,
                                            std::string_view base, Mode mode, std::size_t size);

// Runs the groups round by round (`pairs` rounds), re-measuring pairs whose baselines disagree
// by more than `margin`. A slice that fails ends its row's pairs (the row becomes that error);
// a baseline slice that fails ends its group. Stops early when interrupted().
void run_pairs(const std::vector<PairGroup>& groups, int pairs, double margin, const SliceRunner& run,
               PairedRun& out);

// One result per row from its slices: the medians of the slices' p50, p99, p99.9 and rates, the
// largest max and the summed count; the first failed slice's error makes the row an error row.
[[nodiscard]] Result merge_slices(const std::vector<Result>& slices);

}  // namespace ipckit::bench
