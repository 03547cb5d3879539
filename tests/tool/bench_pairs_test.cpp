// The bench's paired measurement (tools/bench/bench_pairs.hpp) as arithmetic: the median and
// quartiles of the pairs, when two baseline slices disagree, the verdict on a target, the order
// in which slices run and when a pair is measured again. The slices here are given figures, not
// measured, so every outcome is known in advance; bench_test runs the real thing end to end.
#include <gtest/gtest.h>

#include <deque>

#include "bench_pairs.hpp"

namespace ipckit::bench {
namespace {

Pair pair(double before, double row, double after, bool steady = true) {
    Pair p;
    p.before = before;
    p.row = row;
    p.after = after;
    p.steady = steady;
    return p;
}

TEST(BenchPairsTest, QuantileInterpolatesAndTheMedianOfAnEvenCountIsTheMeanOfTheMiddleTwo) {
    EXPECT_DOUBLE_EQ(quantile({3, 1, 2}, 0.5), 2);
    EXPECT_DOUBLE_EQ(quantile({4, 1, 3, 2}, 0.5), 2.5);
    EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4, 5}, 0.25), 2);
    EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4}, 0.25), 1.75);
    EXPECT_DOUBLE_EQ(quantile({7}, 0.75), 7);
    EXPECT_DOUBLE_EQ(quantile({}, 0.5), 0);
}

TEST(BenchPairsTest, APairsRatioDividesTheRowByTheMeanOfItsTwoBaselines) {
    EXPECT_DOUBLE_EQ(pair(100, 300, 200).ratio(), 2.0);
    EXPECT_DOUBLE_EQ(pair(4e9, 1e9, 4e9).ratio(), 0.25);
}

TEST(BenchPairsTest, BaselinesDisagreeWhenTheLargerExceedsTheSmallerByMoreThanTheMargin) {
    EXPECT_FALSE(disagree(100, 125, 0.25));
    EXPECT_TRUE(disagree(100, 126, 0.25));
    EXPECT_TRUE(disagree(126, 100, 0.25));
    EXPECT_FALSE(disagree(100, 100, 0.0));
    EXPECT_TRUE(disagree(0, 100, 0.25)) << "a baseline of nothing cannot pair";
}

TEST(BenchPairsTest, SummaryUsesTheSteadyPairsUnlessFewerThanHalfAreSteady) {
    EXPECT_FALSE(summarize({}).has_value());
    // Ratios 1, 2, 3, 4 steady and a wild 100 that is not: the wild one is left out.
    const std::vector<Pair> mostly = {pair(1, 1, 1), pair(1, 2, 1), pair(1, 3, 1), pair(1, 4, 1),
                                      pair(1, 100, 1, false)};
    const auto s = summarize(mostly);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->total, 5u);
    EXPECT_EQ(s->steady, 4u);
    EXPECT_FALSE(s->unsteady());
    EXPECT_DOUBLE_EQ(s->median, 2.5);
    EXPECT_DOUBLE_EQ(s->q1, 1.75);
    EXPECT_DOUBLE_EQ(s->q3, 3.25);
    EXPECT_DOUBLE_EQ(s->min, 1);
    EXPECT_DOUBLE_EQ(s->max, 4);
    // One steady pair of three: every pair counts, and the summary says it is unsteady.
    const auto few = summarize({pair(1, 1, 1), pair(1, 5, 1, false), pair(1, 9, 1, false)});
    ASSERT_TRUE(few.has_value());
    EXPECT_TRUE(few->unsteady());
    EXPECT_DOUBLE_EQ(few->median, 5);
}

TEST(BenchPairsTest, ATargetIsMetOrMissedOnlyWhenBothQuartilesAgreeWithTheMedian) {
    Spread s;
    s.total = s.steady = 8;
    s.q1 = 1.1;
    s.median = 1.2;
    s.q3 = 1.25;
    EXPECT_EQ(judge(s, 1.3, true), Verdict::met);
    EXPECT_EQ(judge(s, 1.0, true), Verdict::missed);
    EXPECT_EQ(judge(s, 1.15, true), Verdict::unstable);
    EXPECT_EQ(judge(s, 1.0, false), Verdict::met);
    EXPECT_EQ(judge(s, 1.3, false), Verdict::missed);
    EXPECT_EQ(judge(s, 1.22, false), Verdict::unstable);
    // A row below its floor, or above its ceiling, says the baseline failed: no verdict.
    EXPECT_EQ(judge(s, 1.3, true, Bound::floor), Verdict::met);
    Spread below = s;
    below.q1 = 0.06;
    below.median = 0.07;
    below.q3 = 0.08;
    EXPECT_EQ(judge(below, 1.3, true, Bound::none), Verdict::met);
    EXPECT_EQ(judge(below, 1.3, true, Bound::floor), Verdict::unstable);
    EXPECT_EQ(judge(s, 0.9, false, Bound::ceiling), Verdict::unstable);
    EXPECT_EQ(judge(below, 0.5, false, Bound::ceiling), Verdict::missed);
    EXPECT_EQ(bound_of("raw-spin"), Bound::floor);
    EXPECT_EQ(bound_of("raw-loan-ring"), Bound::ceiling);
    EXPECT_EQ(bound_of("shm"), Bound::none);
    s.steady = 3;  // fewer than half steady: nothing can be judged
    EXPECT_EQ(judge(s, 1.3, true), Verdict::unstable);
    EXPECT_EQ(to_string(Verdict::unstable), "unstable");
}

// Slices with given figures, in the order the schedule asks for them.
class Script {
public:
    explicit Script(std::deque<double> figures) : figures_(std::move(figures)) {}
    Result operator()(const RowKey& key) {
        order.push_back(key.contender->name());
        Result r;
        r.transport = key.contender->name();
        r.mode = key.mode;
        r.size = key.size;
        r.count = 1;
        r.p50 = static_cast<std::uint64_t>(figures_.front());
        figures_.pop_front();
        return r;
    }
    std::vector<std::string> order;

private:
    std::deque<double> figures_;
};

class Named final : public Contender {
public:
    explicit Named(std::string name) : Contender(std::move(name), Category::channel) {}
    std::unique_ptr<Side> prepare(const RowPlan&, PeerLaunch&) override { return nullptr; }
    std::unique_ptr<Side> join(const RowPlan&, const std::vector<std::string>&) override { return nullptr; }
};

TEST(BenchPairsTest, RowsAlternateWithTheirBaselineAndAPairWhoseBaselinesDisagreeIsMeasuredAgain) {
    Named base("base"), a("a"), b("b");
    const RowKey kb{&base, Mode::latency, 64}, ka{&a, Mode::latency, 64}, kbb{&b, Mode::latency, 64};
    // Round 1: B a B b B (steady). Round 2: B a B(far off: a again, then B) b B; in the re-measured
    // pair the baselines disagree again, so it stays, marked unsteady.
    Script script({100, 200, 100, 300, 100,  //
                   100, 250, 200, 260, 100, 300, 100});
    PairedRun run;
    run_pairs({PairGroup{kb, {ka, kbb}}}, 2, 0.25, std::ref(script), run);
    EXPECT_EQ(script.order, (std::vector<std::string>{"base", "a", "base", "b", "base", "base", "a", "base",
                                                      "a", "base", "b", "base"}));
    ASSERT_EQ(run.ratios.size(), 2u);
    const PairedRatio* ra = find_ratio(run.ratios, "a", "base", Mode::latency, 64);
    const PairedRatio* rb = find_ratio(run.ratios, "b", "base", Mode::latency, 64);
    ASSERT_NE(ra, nullptr);
    ASSERT_NE(rb, nullptr);
    ASSERT_EQ(ra->pairs.size(), 2u);
    EXPECT_DOUBLE_EQ(ra->pairs[0].ratio(), 2.0);
    EXPECT_TRUE(ra->pairs[0].steady);
    EXPECT_TRUE(ra->pairs[1].remeasured);
    EXPECT_FALSE(ra->pairs[1].steady);
    EXPECT_DOUBLE_EQ(ra->pairs[1].before, 200);
    EXPECT_DOUBLE_EQ(ra->pairs[1].row, 260);
    EXPECT_DOUBLE_EQ(ra->pairs[1].after, 100);
    // b's second pair starts from the re-measured pair's last baseline.
    ASSERT_EQ(rb->pairs.size(), 2u);
    EXPECT_DOUBLE_EQ(rb->pairs[1].before, 100);
    EXPECT_DOUBLE_EQ(rb->pairs[1].ratio(), 3.0);
    EXPECT_EQ(run.slices.at(kb).size(), 7u);
    EXPECT_EQ(run.slices.at(ka).size(), 3u);
    // The row's figures are the medians of its slices.
    EXPECT_EQ(merge_slices(run.slices.at(ka)).p50, 250u);
    EXPECT_EQ(merge_slices(run.slices.at(ka)).slices, 3u);
}

TEST(BenchPairsTest, ARowWhoseSliceFailsIsThatErrorAndGetsNoMorePairs) {
    Named base("base"), a("a");
    const RowKey kb{&base, Mode::latency, 64}, ka{&a, Mode::latency, 64};
    int calls = 0;
    const SliceRunner runner = [&](const RowKey& key) {
        ++calls;
        Result r;
        r.transport = key.contender->name();
        r.mode = key.mode;
        r.size = key.size;
        r.count = 1;
        r.p50 = 100;
        if (key == ka && calls > 2) r.error = "peer died";
        return r;
    };
    PairedRun run;
    run_pairs({PairGroup{kb, {ka}}}, 3, 0.25, runner, run);
    // Round 1: B a B; round 2: B a(fails); round 3: nothing left to pair.
    EXPECT_EQ(calls, 5);
    EXPECT_EQ(find_ratio(run.ratios, "a", "base", Mode::latency, 64)->pairs.size(), 1u);
    EXPECT_EQ(merge_slices(run.slices.at(ka)).error, "peer died");
}

}  // namespace
}  // namespace ipckit::bench
