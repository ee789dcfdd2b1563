// Persistent homology: ANALYSIS.md section 8.4 and the ripser.py emulation of the faithful variant.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "analysis/diffusion.h"
#include "analysis/stats.h"
#include "analysis/topology.h"
#include "attention_fixtures.h"

namespace sinklab::analysis {
namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

int count_essential(const std::vector<Bar>& bars) {
    int n = 0;
    for (const Bar& b : bars) n += std::isinf(b.death);
    return n;
}

TEST(TopologyRips, FourCycleHasOneLoop) {
    // The graph metric of a 4-cycle: sides 1, diagonals 2.
    Eigen::MatrixXd d(4, 4);
    d << 0, 1, 2, 1,  //
        1, 0, 1, 2,   //
        2, 1, 0, 1,   //
        1, 2, 1, 0;
    const Barcode code = rips_barcode(d);
    ASSERT_EQ(code.h0.size(), 4u);
    EXPECT_EQ(count_essential(code.h0), 1);  // betti_numbers() = (1, 0)
    EXPECT_EQ(count_essential(code.h1), 0);
    for (const Bar& b : code.h0) {
        EXPECT_EQ(b.birth, 0.0);
        if (!std::isinf(b.death)) {
            EXPECT_EQ(b.death, 1.0);
        }
    }
    ASSERT_EQ(code.h1.size(), 1u);
    EXPECT_EQ(code.h1[0].birth, 1.0);
    EXPECT_EQ(code.h1[0].death, 2.0);
}

TEST(TopologyRipser, VertexBirthsUpperTriangleAndDroppedZeros) {
    // Births 0, 0.2, 0.4; edges (0,1) = 0.5, (0,2) = 0.3; (1,2) = 0 is not stored, so no edge; the
    // lower triangle is ignored. (0,2) at 0.3 < birth 0.4 merges without a bar.
    Eigen::MatrixXf d(3, 3);
    d << 0.0f, 0.5f, 0.3f,  //
        0.9f, 0.2f, 0.0f,   //
        0.9f, 0.9f, 0.4f;
    const Barcode code = ripser_coo_barcode(d);
    ASSERT_EQ(code.h0.size(), 2u);
    EXPECT_EQ(code.h0[0].birth, 0.0);
    EXPECT_EQ(code.h0[0].death, inf);
    EXPECT_EQ(code.h0[1].birth, static_cast<double>(0.2f));
    EXPECT_EQ(code.h0[1].death, static_cast<double>(0.5f));
    EXPECT_TRUE(code.h1.empty());
}

TEST(TopologyFaithful, CausalUniformAttentionMeasuresSelfAttention) {
    // D = 1 - U_n: every upper-triangle edge is born at 1, vertex i at 1 - 1/i (1-indexed), so
    // beta0 = n, beta1 = 0, dim0 persistences are A_ii for i >= 2: mean (H_n - 1)/(n - 1), max 1/2.
    // The faithful variant works in float32 like the notebook, hence the 2e-7 tolerance.
    for (const auto& [n, expected_avg] : {std::pair{12, 0.1912009707}, std::pair{30, 0.1032754183}}) {
        const TopologyResult r = analyze_topology(testing::sample_of({uniform_causal_attention(n)}));
        const TopologyLayer& l = r.layers[0];
        EXPECT_EQ(l.faithful.h0.size(), static_cast<size_t>(n)) << "n=" << n;
        EXPECT_TRUE(l.faithful.h1.empty()) << "n=" << n;
        EXPECT_NEAR(expected_avg, (testing::harmonic(n) - 1.0) / (n - 1.0), 1e-10);
        const nlohmann::json j = r.to_json()["layers"][0]["faithful"];
        EXPECT_EQ(j["variant"], "faithful");
        EXPECT_EQ(j["betti_numbers"][0].get<int>(), n);
        EXPECT_EQ(j["betti_numbers"][1].get<int>(), 0);
        EXPECT_NEAR(j["dim0_avg_persistence"].get<double>(), expected_avg, 2e-7) << "n=" << n;
        EXPECT_NEAR(j["dim0_max_persistence"].get<double>(), 0.5, 2e-7) << "n=" << n;
        EXPECT_FALSE(j.contains("dim1_avg_persistence"));  // no finite H1 bar: the notebook stores nothing
    }
}

TEST(TopologyFaithful, DownsamplesToThirtyTokens) {
    EXPECT_EQ(linspace_indices(48, 30),
              (std::vector<int>{0, 1, 3, 4, 6, 8, 9, 11, 12, 14, 16, 17, 19, 21, 22, 24, 25, 27, 29, 30, 32, 34, 35, 37,
                                38, 40, 42, 43, 45, 47}));
    EXPECT_EQ(linspace_indices(31, 30).back(), 30);
    EXPECT_EQ(linspace_indices(31, 30)[28], 28);
    EXPECT_EQ(linspace_indices(1000, 30)[3], 103);
    const TopologyResult r = analyze_topology(testing::sample_of({uniform_causal_attention(48)}));
    EXPECT_EQ(r.layers[0].faithful_points.size(), 30u);
    EXPECT_EQ(r.layers[0].faithful.h0.size(), 30u);
}

TEST(TopologyFaithful, LayerSelectionOfTheNotebook) {
    EXPECT_EQ(faithful_topology_layers(28), (std::vector<int>{0, 7, 14, 27}));
    EXPECT_EQ(faithful_topology_layers(16), (std::vector<int>{0, 4, 8, 15}));
    EXPECT_EQ(faithful_topology_layers(2), (std::vector<int>{0, 1}));
    EXPECT_EQ(faithful_topology_layers(1), (std::vector<int>{0}));
}

TEST(TopologyCorrected, SymmetrisedPerfectSink) {
    // A_i0 = 0.9, A_ii = 0.1: D_i0 = 0.1, every other pair at 1. n - 1 H0 bars [0, 0.1), one
    // essential, and the complete graph at 1 fills every loop: no H1.
    const int n = 12;
    const TopologyResult r = analyze_topology(testing::sample_of({testing::perfect_sink(n)}));
    const Barcode& code = r.layers[0].corrected;
    ASSERT_EQ(code.h0.size(), static_cast<size_t>(n));
    EXPECT_EQ(count_essential(code.h0), 1);
    for (const Bar& b : code.h0) {
        EXPECT_EQ(b.birth, 0.0);
        if (!std::isinf(b.death)) {
            EXPECT_NEAR(b.death, 0.1, 1e-12);
        }
    }
    EXPECT_TRUE(code.h1.empty());
    const nlohmann::json j = r.to_json()["layers"][0]["corrected"];
    EXPECT_EQ(j["variant"], "corrected");
    EXPECT_NEAR(j["total_persistence"][0].get<double>(), (n - 1) * 0.1, 1e-12);
    EXPECT_EQ(j["bars_above_eps"][0].get<int>(), n);  // the essential bar's persistence is infinite
    EXPECT_EQ(j["essential"][0].get<int>(), 1);
    // beta_0 at r = 0.5: one component; the default scales are 0.5, 0.9, 0.99.
    EXPECT_EQ(j["betti_at_scale"][0]["betti"][0].get<int>(), 1);
}

TEST(TopologyFaithful, HeadStatistics) {
    const int n = 8;
    const Eigen::MatrixXd u = uniform_causal_attention(n);
    AttentionSample s = testing::sample_of({u});
    s.heads = {{u, u}};
    const TopologyResult r = analyze_topology(s);
    ASSERT_EQ(r.layers[0].heads.size(), 2u);
    const HeadStats& h = r.layers[0].heads[1];
    EXPECT_EQ(h.head, 1);
    EXPECT_EQ(h.top_token, 0);
    EXPECT_NEAR(h.top_strength, testing::harmonic(n) / n, 1e-7);
    double entropy = 0.0;  // row i (1-indexed) carries i entries of 1/i: i * (1/i) log2 i
    for (int i = 1; i <= n; ++i) entropy += std::log2(static_cast<double>(i));
    EXPECT_NEAR(h.entropy, entropy, 1e-5);

    std::vector<TopologyResult> samples(5, r);
    const nlohmann::json summary = topology_summary(samples);
    ASSERT_EQ(summary["specialized_heads"].size(), 2u);
    EXPECT_EQ(summary["specialized_heads"][0]["consistency"].get<double>(), 1.0);
    EXPECT_EQ(summary["specialized_heads"][0]["top_token"].get<int>(), 0);
}

}  // namespace
}  // namespace sinklab::analysis
