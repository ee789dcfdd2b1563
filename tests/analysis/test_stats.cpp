// Statistics helpers against numpy/scipy conventions; p-values against closed forms of the Student
// t distribution (df = 1: 1 - 2 atan(|t|)/pi; df = 2: 1 - |t|/sqrt(2 + t^2)).
#include <cmath>
#include <numbers>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "analysis/results.h"
#include "analysis/stats.h"

namespace sinklab::analysis {
namespace {

TEST(Stats, MomentsAndNumpyPercentile) {
    const std::vector<double> x = {3, 1, 4, 1, 5, 9, 2, 6};
    EXPECT_DOUBLE_EQ(mean(x), 31.0 / 8.0);
    EXPECT_NEAR(stddev(x), 2.5708704751503917, 1e-15);   // np.std
    EXPECT_NEAR(variance(x, 1), 7.553571428571429, 1e-14);  // np.var(ddof=1)
    // np.percentile(x, [0, 25, 50, 90, 100, 37.5])
    EXPECT_DOUBLE_EQ(percentile_linear(x, 0), 1.0);
    EXPECT_DOUBLE_EQ(percentile_linear(x, 25), 1.75);
    EXPECT_DOUBLE_EQ(percentile_linear(x, 50), 3.5);
    EXPECT_NEAR(percentile_linear(x, 90), 6.8999999999999995, 1e-15);
    EXPECT_DOUBLE_EQ(percentile_linear(x, 100), 9.0);
    EXPECT_DOUBLE_EQ(percentile_linear(x, 37.5), 2.625);
    EXPECT_DOUBLE_EQ(median(x), 3.5);
    EXPECT_TRUE(std::isnan(mean(std::vector<double>{})));
}

TEST(Stats, GiniAndRanks) {
    EXPECT_NEAR(gini(std::vector<double>{5, 1, 2, 1}), 0.36111111111111116, 1e-15);
    EXPECT_EQ(gini(std::vector<double>{0, 0, 0}), 0.0);
    EXPECT_EQ(average_ranks(std::vector<double>{10, 20, 10, 30, 20}), (std::vector<double>{1.5, 3.5, 1.5, 5, 3.5}));
}

TEST(Stats, LinspaceIndicesTruncateLikeNumpy) {
    // np.linspace(0, 127, 20, dtype=int)
    EXPECT_EQ(linspace_indices(128, 20), (std::vector<int>{0, 6, 13, 20, 26, 33, 40, 46, 53, 60, 66, 73, 80, 86, 93,
                                                            100, 106, 113, 120, 127}));
    EXPECT_EQ(linspace_indices(5, 20), (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Stats, PearsonAndSpearmanPValues) {
    // n = 3, r = 1/2: t = 1/sqrt(3), df = 1, p = 1 - (2/pi)(pi/6) = 2/3.
    const Correlation c3 = pearson(std::vector<double>{1, 2, 3}, std::vector<double>{1, 3, 2});
    EXPECT_NEAR(c3.r, 0.5, 1e-15);
    EXPECT_NEAR(c3.p, 2.0 / 3.0, 1e-12);
    // n = 4, r = 0.6: df = 2, p = 1 - t / sqrt(2 + t^2) = 0.4.
    const Correlation c4 = pearson(std::vector<double>{1, 2, 3, 4}, std::vector<double>{2, 1, 4, 3});
    EXPECT_NEAR(c4.r, 0.6, 1e-15);
    EXPECT_NEAR(c4.p, 0.4, 1e-12);
    EXPECT_EQ(pearson(std::vector<double>{1, 2}, std::vector<double>{3, 5}).p, 1.0);
    EXPECT_TRUE(std::isnan(pearson(std::vector<double>{1, 1, 1}, std::vector<double>{1, 2, 3}).r));
    // Spearman is Pearson of the average ranks; a monotone transform gives 1.
    const Correlation s = spearman(std::vector<double>{1, 2, 3, 4, 5}, std::vector<double>{1, 4, 9, 16, 1000});
    EXPECT_NEAR(s.r, 1.0, 1e-15);
    EXPECT_EQ(s.p, 0.0);
    const Correlation st = spearman(std::vector<double>{1, 2, 2, 3}, std::vector<double>{4, 3, 3, 1});
    const Correlation manual = pearson(std::vector<double>{1, 2.5, 2.5, 4}, std::vector<double>{4, 2.5, 2.5, 1});
    EXPECT_NEAR(st.r, manual.r, 1e-15);
}

TEST(Stats, WelchAndOneSampleTTests) {
    // Equal sizes and variances: df = 2 (n = 2 each); t = -3/sqrt(2).
    const TTest w = welch_t_test(std::vector<double>{0, 2}, std::vector<double>{3, 5});
    EXPECT_NEAR(w.t, -3.0 / std::sqrt(2.0), 1e-14);
    EXPECT_NEAR(w.df, 2.0, 1e-14);
    EXPECT_NEAR(w.p, 1.0 - std::fabs(w.t) / std::sqrt(2.0 + w.t * w.t), 1e-12);
    // x = {1, 2}, mu = 0: t = 3, df = 1.
    const TTest o = one_sample_t_test(std::vector<double>{1, 2}, 0.0);
    EXPECT_NEAR(o.t, 3.0, 1e-14);
    EXPECT_NEAR(o.p, 1.0 - 2.0 * std::atan(3.0) / std::numbers::pi, 1e-12);
    EXPECT_DOUBLE_EQ(student_t_two_sided_p(0.0, 7.0), 1.0);
    EXPECT_TRUE(std::isnan(welch_t_test(std::vector<double>{1}, std::vector<double>{1, 2}).p));
}

TEST(Results, AggregationRules) {
    using nlohmann::json;
    const json a = {{"analysis", "x"},
                    {"layers",
                     {{{"layer", 0}, {"faithful", {{"variant", "faithful"}, {"v", 1.0}, {"flag", true}, {"arr", {1.0, 2.0}},
                                                   {"tokens", {1, 2, 3}}, {"gap", nullptr}, {"tau", 0.1}, {"diagrams", {1.0}}}}}}}};
    const json b = {{"analysis", "x"},
                    {"layers",
                     {{{"layer", 0}, {"faithful", {{"variant", "faithful"}, {"v", 3.0}, {"flag", false}, {"arr", {3.0, 6.0}},
                                                   {"tokens", {1, 2}}, {"gap", 2.0}, {"tau", 0.1}, {"diagrams", {2.0}}}}}}}};
    const json agg = aggregate_layers({a, b});
    EXPECT_EQ(agg["samples"], 2);
    const json& f = agg["layers"][0]["faithful"];
    EXPECT_EQ(f["variant"], "faithful");
    EXPECT_EQ(f["tau"], 0.1);  // key field, equal in every sample
    EXPECT_EQ(f["v"]["mean"], 2.0);
    EXPECT_EQ(f["v"]["std"], 1.0);
    EXPECT_EQ(f["flag"]["fraction"], 0.5);
    EXPECT_EQ(f["arr"]["mean"], json({2.0, 4.0}));
    EXPECT_FALSE(f.contains("tokens"));    // lengths differ between samples
    EXPECT_FALSE(f.contains("diagrams"));  // per-sample detail
    EXPECT_EQ(f["gap"]["n"], 1);         // null (undefined) values are skipped
    EXPECT_EQ(json_number(std::numeric_limits<double>::infinity()), nullptr);
}

}  // namespace
}  // namespace sinklab::analysis
