// `ipckit bench` paired, interleaved measurement: the schedule of slices, the pairs, their
// median and spread, and the verdict on a target.
#include "bench_pairs.hpp"

#include <algorithm>
#include <cmath>
#include <set>

namespace ipckit::bench {

double figure(const Result& slice) {
    return slice.mode == Mode::latency ? static_cast<double>(slice.p50) : slice.bytes_per_s;
}

bool disagree(double before, double after, double margin) {
    const double low = std::min(before, after), high = std::max(before, after);
    if (low <= 0) return true;
    return high / low - 1.0 > margin;
}

double quantile(std::vector<double> values, double q) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(values.size() - 1);
    const auto below = static_cast<std::size_t>(std::floor(rank));
    const auto above = std::min(below + 1, values.size() - 1);
    const double weight = rank - static_cast<double>(below);
    return values[below] + (values[above] - values[below]) * weight;
}

std::optional<Spread> summarize(const std::vector<Pair>& pairs) {
    if (pairs.empty()) return std::nullopt;
    Spread spread;
    spread.total = pairs.size();
    std::vector<double> steady, all;
    for (const auto& pair : pairs) {
        all.push_back(pair.ratio());
        if (pair.steady) steady.push_back(pair.ratio());
    }
    spread.steady = steady.size();
    const auto& used = spread.unsteady() ? all : steady;
    spread.median = quantile(used, 0.5);
    spread.q1 = quantile(used, 0.25);
    spread.q3 = quantile(used, 0.75);
    spread.min = *std::min_element(used.begin(), used.end());
    spread.max = *std::max_element(used.begin(), used.end());
    return spread;
}

std::string_view to_string(Verdict verdict) noexcept {
    constexpr std::string_view kNames[] = {"met", "missed", "unstable"};  // in the enum's order
    return kNames[static_cast<int>(verdict)];
}

Bound bound_of(std::string_view baseline) noexcept {
    if (baseline == "raw-spin") return Bound::floor;
    if (baseline == "raw-copy-ring" || baseline == "raw-loan-ring") return Bound::ceiling;
    return Bound::none;
}

Verdict judge(const Spread& spread, double target, bool at_most, Bound bound) {
    if (spread.unsteady()) return Verdict::unstable;
    if ((bound == Bound::floor && spread.q3 < 1.0) || (bound == Bound::ceiling && spread.q1 > 1.0))
        return Verdict::unstable;
    const auto meets = [&](double x) { return at_most ? x <= target : x >= target; };
    const bool median = meets(spread.median), q1 = meets(spread.q1), q3 = meets(spread.q3);
    if (median && q1 && q3) return Verdict::met;
    if (!median && !q1 && !q3) return Verdict::missed;
    return Verdict::unstable;
}

const PairedRatio* find_ratio(const std::vector<PairedRatio>& ratios, std::string_view row,
                              std::string_view base, Mode mode, std::size_t size) {
    for (const auto& r : ratios)
        if (r.row == row && r.base == base && r.mode == mode && r.size == size) return &r;
    return nullptr;
}

namespace {

// The state of one group across the rounds.
struct GroupState {
    const PairGroup* group;
    bool base_failed = false;
    std::set<RowKey> failed;           // rows whose slice failed: no more pairs
    std::vector<PairedRatio*> ratios;  // one per row, in the group's order
};

}  // namespace

void run_pairs(const std::vector<PairGroup>& groups, int pairs, double margin, const SliceRunner& run,
               PairedRun& out) {
    std::vector<GroupState> states;
    out.ratios.reserve(out.ratios.size() + [&] {
        std::size_t n = 0;
        for (const auto& g : groups)
            n += g.rows.size();
        return n;
    }());
    for (const auto& group : groups) {
        GroupState state{&group, false, {}, {}};
        for (const auto& row : group.rows) {
            out.ratios.push_back({row.contender->name(),
                                  group.base.contender->name(),
                                  row.mode,
                                  row.size,
                                  group.base.size,
                                  {}});
            state.ratios.push_back(&out.ratios.back());
        }
        states.push_back(std::move(state));
    }
    // Runs a slice and keeps it; false when it failed.
    const auto slice = [&](const RowKey& key, double& value) {
        Result result = run(key);
        const bool ok = result.ok();
        value = ok ? figure(result) : 0;
        out.slices[key].push_back(std::move(result));
        return ok && value > 0;
    };
    // Rounds across every group, so each row's pairs spread over the whole run.
    for (int round = 0; round < pairs && !interrupted(); ++round) {
        for (auto& state : states) {
            const PairGroup& group = *state.group;
            if (state.base_failed) {
                // No pairs without a baseline: each row still runs once, so the table has it.
                double ignored = 0;
                for (const auto& row : group.rows)
                    if (out.slices.count(row) == 0 && !interrupted()) (void)slice(row, ignored);
                continue;
            }
            if (state.failed.size() == group.rows.size()) continue;  // nothing left to pair
            double before = 0;
            if (!slice(group.base, before)) {
                state.base_failed = true;
                continue;
            }
            for (std::size_t i = 0; i < group.rows.size() && !interrupted(); ++i) {
                const RowKey& row = group.rows[i];
                if (state.failed.count(row) != 0) continue;
                Pair pair;
                pair.before = before;
                if (!slice(row, pair.row)) {
                    state.failed.insert(row);
                    continue;
                }
                if (!slice(group.base, pair.after)) {
                    state.base_failed = true;
                    break;
                }
                if (disagree(pair.before, pair.after, margin)) {
                    // The placement moved during the pair: measure the row again between the
                    // baseline slice just taken and a fresh one.
                    Pair again;
                    again.before = pair.after;
                    again.remeasured = true;
                    if (!slice(row, again.row)) {
                        state.failed.insert(row);
                        before = pair.after;
                        continue;
                    }
                    if (!slice(group.base, again.after)) {
                        state.base_failed = true;
                        break;
                    }
                    again.steady = !disagree(again.before, again.after, margin);
                    pair = again;
                }
                before = pair.after;
                state.ratios[i]->pairs.push_back(pair);
            }
        }
    }
}

Result merge_slices(const std::vector<Result>& slices) {
    Result merged;
    if (slices.empty()) return merged;
    const Result& first = slices.front();
    merged.transport = first.transport;
    merged.wait = first.wait;
    merged.category = first.category;
    merged.mode = first.mode;
    merged.size = first.size;
    merged.slices = slices.size();
    for (const auto& s : slices) {
        if (!s.ok()) {
            merged.error = s.error;
            merged.count = 0;
            return merged;
        }
    }
    std::vector<double> p50, p99, p999, msgs, bytes;
    for (const auto& s : slices) {
        merged.count += s.count;
        merged.max = std::max(merged.max, s.max);
        p50.push_back(static_cast<double>(s.p50));
        p99.push_back(static_cast<double>(s.p99));
        p999.push_back(static_cast<double>(s.p999));
        msgs.push_back(s.msgs_per_s);
        bytes.push_back(s.bytes_per_s);
    }
    const auto whole = [](double v) { return static_cast<std::uint64_t>(std::llround(v)); };
    merged.p50 = whole(quantile(p50, 0.5));
    merged.p99 = whole(quantile(p99, 0.5));
    merged.p999 = whole(quantile(p999, 0.5));
    merged.msgs_per_s = quantile(msgs, 0.5);
    merged.bytes_per_s = quantile(bytes, 0.5);
    return merged;
}

}  // namespace ipckit::bench
