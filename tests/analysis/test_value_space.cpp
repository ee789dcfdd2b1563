// Value-space analyses: ANALYSIS.md section 8.7 (directional influence on U_4) and 8.9 (KL and GSA
// guards), plus the entropy and magnitude conventions of attention_value.ipynb.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "analysis/diffusion.h"
#include "analysis/stats.h"
#include "analysis/value_space.h"
#include "attention_fixtures.h"
#include "core/error.h"

namespace sinklab::analysis {
namespace {

TEST(DirectionalInfluence, UniformFourTokensWithOrthonormalValues) {
    const Eigen::MatrixXd u = uniform_causal_attention(4);
    // Column means 0.5208, 0.2708, 0.1458, 0.0625: three exceed 0.1, the cap max(1, floor(1.2)) keeps 0.
    EXPECT_EQ(reference_tokens(u), std::vector<int>{0});
    const DirectionalInfluence di = directional_influence(u, Eigen::MatrixXd::Identity(4, 4));
    // DI_i = (1 + A_i0 / ||A_i.||_2) / 2 for orthonormal h.
    const double expected_di[] = {0.5, (1.0 + 0.5 / std::sqrt(0.5)) / 2.0, (1.0 + (1.0 / 3.0) / std::sqrt(1.0 / 3.0)) / 2.0,
                                  0.75};
    const double expected_rm[] = {0.5, std::sqrt(0.5), std::sqrt(1.0 / 3.0), 0.5};
    const double expected_ic[] = {0.0, 0.5, 1.0 / 3.0, 0.25};
    ASSERT_EQ(di.influence.size(), 4u);
    for (int i = 0; i < 4; ++i) {
        EXPECT_NEAR(di.influence[i], expected_di[i], 1e-12) << i;
        EXPECT_NEAR(di.relative_magnitude[i], expected_rm[i], 1e-12) << i;
        EXPECT_NEAR(di.information_change[i], expected_ic[i], 1e-12) << i;
    }
    EXPECT_NEAR(di.influence[1], 0.853553, 5e-7);
    EXPECT_NEAR(di.influence[2], 0.788675, 5e-7);
    EXPECT_NEAR(di.mean_influence, 0.723057, 5e-7);
    EXPECT_NEAR(di.mean_influence, (expected_di[0] + expected_di[1] + expected_di[2] + expected_di[3]) / 4.0, 1e-12);
    ASSERT_TRUE(di.corrected_influence.has_value());
    EXPECT_NEAR(*di.corrected_influence, (expected_di[1] + expected_di[2] + expected_di[3]) / 3.0, 1e-12);
    EXPECT_NEAR(*di.corrected_information_change, (0.5 + 1.0 / 3.0 + 0.25) / 3.0, 1e-12);
}

TEST(DirectionalInfluence, ReferenceSetFallbackAndCap) {
    // No column mean above 0.1 (T = 20, near-uniform): the top max(1, floor(2)) = 2 columns.
    Eigen::MatrixXd a = Eigen::MatrixXd::Constant(20, 20, 1.0 / 20);
    a.col(7).array() += 0.004;
    a.col(3).array() += 0.002;
    a.col(12).array() -= 0.006;
    EXPECT_EQ(reference_tokens(a), (std::vector<int>{3, 7}));
    // Every column above 0.1 (T = 5): capped at max(1, floor(1.5)) = 1, the largest.
    Eigen::MatrixXd b = Eigen::MatrixXd::Constant(5, 5, 0.2);
    b.col(2).array() += 0.1;
    b.col(4).array() -= 0.1;
    EXPECT_EQ(reference_tokens(b), std::vector<int>{2});
}

TEST(KlSinkRemoval, IdenticalHeadsDivergeByZero) {
    Rng rng(8);
    const Eigen::MatrixXd a = testing::random_causal(32, rng, 1.0);
    const std::vector<double> percentiles = {80.0, 90.0, 95.0};
    for (int rows : {20, 0}) {
        const KlSinkRemoval kl = kl_sink_removal({a, a, a}, percentiles, rows);
        EXPECT_NEAR(kl.kl, 0.0, 1e-15);
        ASSERT_EQ(kl.by_percentile.size(), 3u);
        for (const SinkRemoval& s : kl.by_percentile) {
            EXPECT_NEAR(s.kl_without_sinks, 0.0, 1e-15);
            EXPECT_NEAR(s.kl_reduction, 0.0, 1e-15);
            EXPECT_FALSE(s.sinks.empty());
            EXPECT_EQ(s.sinks.front(), 0);  // the sink column of random_causal
        }
    }
}

TEST(KlSinkRemoval, DifferentHeadsAndSinkShare) {
    Rng rng(21);
    const std::vector<Eigen::MatrixXd> heads = {testing::random_causal(10, rng, 3.0), testing::random_causal(10, rng)};
    const KlSinkRemoval kl = kl_sink_removal(heads, std::vector<double>{90.0}, 0);
    EXPECT_GT(kl.kl, 0.0);
    // P90 of 10 column sums keeps the top one (column 0, boosted in head 0).
    ASSERT_EQ(kl.by_percentile[0].sinks, std::vector<int>{0});
    const double incoming0 = heads[0].col(0).sum() + heads[1].col(0).sum();
    EXPECT_NEAR(kl.by_percentile[0].sink_attention_percentage, 100.0 * incoming0 / 20.0, 1e-12);
    EXPECT_NEAR(kl.by_percentile[0].avg_sink_concentration, incoming0 / 20.0, 1e-12);
    EXPECT_NEAR(kl.by_percentile[0].kl_reduction, kl.kl - kl.by_percentile[0].kl_without_sinks, 1e-15);
}

TEST(GeometricSemanticAlignment, IdenticalVectorsHitTheZeroVarianceGuard) {
    Rng rng(2);
    const Eigen::MatrixXd a = testing::random_causal(12, rng);
    const Eigen::MatrixXd h = Eigen::RowVectorXd::LinSpaced(6, 1.0, 6.0).replicate(12, 1);
    EXPECT_EQ(geometric_semantic_alignment(a, h, false), 0.0);
    EXPECT_EQ(geometric_semantic_alignment(a, h, true), 0.0);
}

TEST(GeometricSemanticAlignment, FaithfulIncludesTheMaskedTriangle) {
    Rng rng(4);
    const int T = 9;
    const Eigen::MatrixXd a = testing::random_causal(T, rng, 0.5);
    Eigen::MatrixXd h(T, 5);
    for (int i = 0; i < T; ++i)
        for (int d = 0; d < 5; ++d) h(i, d) = rng.normal() * 3000.0;  // exercises the 1e3 rescaling
    std::vector<double> all_a, all_s, vis_a, vis_s;
    for (int i = 0; i < T; ++i)
        for (int j = 0; j < T; ++j) {
            if (i == j) continue;
            const double s = h.row(i).dot(h.row(j)) / (h.row(i).norm() * h.row(j).norm());
            all_a.push_back(a(i, j));
            all_s.push_back(s);
            if (j < i) {
                vis_a.push_back(a(i, j));
                vis_s.push_back(s);
            }
        }
    EXPECT_NEAR(geometric_semantic_alignment(a, h, false), pearson(all_a, all_s).r, 1e-12);
    EXPECT_NEAR(geometric_semantic_alignment(a, h, true), pearson(vis_a, vis_s).r, 1e-12);
}

TEST(ValueSpace, EntropyAndMagnitudeConventions) {
    const Eigen::VectorXd e = attention_entropy(uniform_causal_attention(6));
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(e(i), std::log(i + 1.0), 1e-12);  // uniform over i + 1 keys, nats
    // One factor for both states: max|h| = 4000 scales by 1/4; differences clip at 1e3.
    Eigen::MatrixXd in = Eigen::MatrixXd::Zero(2, 2), out(2, 2);
    out << 4000.0, 0.0, 3.0, 4.0;
    const Eigen::VectorXd m = transformation_magnitude(in, out);
    EXPECT_NEAR(m(0), 1000.0, 1e-9);
    EXPECT_NEAR(m(1), 1.25, 1e-12);
    // Overflowed (non-finite) states read as 0, as np.nan_to_num in the notebooks.
    out(1, 0) = std::numeric_limits<double>::infinity();
    EXPECT_NEAR(transformation_magnitude(in, out)(1), 1.0, 1e-12);
}

TEST(ValueSpace, AnalysisJsonAndSummary) {
    Rng rng(13);
    const int T = 8, L = 3, D = 6;
    std::vector<ValueSpaceResult> results;
    for (int n = 0; n < 4; ++n) {
        AttentionSample s;
        for (int l = 0; l < L; ++l) {
            std::vector<Eigen::MatrixXd> heads = {testing::random_causal(T, rng, 1.0), testing::random_causal(T, rng)};
            s.attention.push_back(0.5 * (heads[0] + heads[1]));
            s.heads.push_back(std::move(heads));
        }
        for (int l = 0; l <= L; ++l) {
            Eigen::MatrixXd h(T, D);
            for (int i = 0; i < T; ++i)
                for (int d = 0; d < D; ++d) h(i, d) = rng.normal() + 0.1 * l;
            s.hidden.push_back(std::move(h));
        }
        results.push_back(analyze_value_space(s));
    }
    const nlohmann::json j = results[0].to_json();
    const nlohmann::json& layer = j["layers"][1];
    EXPECT_EQ(layer["faithful"]["variant"], "faithful");
    EXPECT_EQ(layer["corrected"]["variant"], "corrected");
    EXPECT_EQ(layer["corrected"]["pairs"], "j < i");
    EXPECT_TRUE(layer["faithful"].contains("kl"));
    EXPECT_TRUE(layer["corrected"]["kl"].contains("sinks"));
    EXPECT_TRUE(layer["faithful"].contains("directional_influence"));

    const nlohmann::json summary = value_space_summary(results);
    ASSERT_EQ(summary["metrics"].size(), 3u);
    const nlohmann::json& gsa = summary["metrics"][0];
    EXPECT_EQ(gsa["n"].get<int>(), 4 * L);
    std::vector<double> pooled;
    for (const ValueSpaceResult& r : results)
        for (const ValueSpaceLayer& l : r.layers) pooled.push_back(l.hidden->gsa_faithful);
    EXPECT_NEAR(gsa["mean"].get<double>(), mean(pooled), 1e-15);
    EXPECT_NEAR(gsa["t_test_zero"]["p"].get<double>(), one_sample_t_test(pooled, 0.0).p, 1e-15);
}

TEST(ValueSpace, NeedsHiddenStatesOrHeads) {
    EXPECT_THROW(analyze_value_space(testing::sample_of({uniform_causal_attention(4)})), Error);
}

}  // namespace
}  // namespace sinklab::analysis
