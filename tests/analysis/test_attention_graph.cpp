// Every design as a row-stochastic graph: the slot as node 0, the probe's proxies, raw row sums.
#include <gtest/gtest.h>

#include <vector>

#include "analysis/attention_graph.h"
#include "analysis/diffusion.h"
#include "core/error.h"

namespace sinklab::analysis {
namespace {

// Two heads, three queries, causal weights (NH, T, T) and the slot's weight per query (NH, T): each
// row with its slot sums to 1, as softmax with a slot column writes them.
const std::vector<float> kWeights = {
    0.5f, 0.0f, 0.0f,  0.2f, 0.3f, 0.0f,  0.1f, 0.1f, 0.2f,   // head 0
    0.9f, 0.0f, 0.0f,  0.4f, 0.4f, 0.0f,  0.3f, 0.3f, 0.3f};  // head 1
const std::vector<float> kSlot = {0.5f, 0.5f, 0.6f, 0.1f, 0.2f, 0.1f};

TEST(AttentionGraph, SlotIsNodeZeroOfTPlusOneNodes) {
    AttentionGraphBuilder b(1, RowProxy::none, /*slot=*/true, /*keep_heads=*/true, /*keep_hidden=*/false);
    b.add_weights(0, kWeights.data(), kSlot.data(), 2, 3);
    const AttentionSample& s = b.sample();
    ASSERT_EQ(b.graph_nodes(), 4);
    const Eigen::MatrixXd& a = s.attention[0];
    EXPECT_DOUBLE_EQ(a(0, 0), 1.0);  // the slot keeps to itself
    for (int j = 1; j < 4; ++j) EXPECT_DOUBLE_EQ(a(0, j), 0.0);
    // query 0 of head 0: slot 0.5, token 0.5; head 1: slot 0.1, token 0.9
    EXPECT_NEAR(a(1, 0), (0.5 + 0.1) / 2, 1e-7);
    EXPECT_NEAR(a(1, 1), (0.5 + 0.9) / 2, 1e-7);
    EXPECT_NEAR(a(3, 0), (0.6 + 0.1) / 2, 1e-7);
    EXPECT_NEAR(a(3, 3), (0.2 + 0.3) / 2, 1e-7);
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(a.row(i).sum(), 1.0, 1e-6) << i;
    EXPECT_NEAR(s.heads[0][1](2, 0), 0.2, 1e-7);
    EXPECT_TRUE(is_causal(a));
    validate_sample(s);
    // node 0's column over the queries: the slot's mean weight, alpha_* averaged over heads
    const double alpha_star = (0.5 + 0.5 + 0.6 + 0.1 + 0.2 + 0.1) / 6;
    EXPECT_NEAR(node0_column_means(s)[0], alpha_star, 1e-7);
    // the analyses run on it
    const DiffusionResult d = analyze_diffusion(s);
    EXPECT_NEAR(d.layers[0].from_row1.power_mass[0].mass, alpha_star, 1e-7);
}

TEST(AttentionGraph, SlotWeightsComeWithTheLayerOfASlotDesignOnly) {
    AttentionGraphBuilder b(1, RowProxy::none, true, false, false);
    EXPECT_THROW(b.add_weights(0, kWeights.data(), nullptr, 2, 3), Error);
    AttentionGraphBuilder no_slot(1, RowProxy::none, false, false, false);
    EXPECT_THROW(no_slot.add_weights(0, kWeights.data(), kSlot.data(), 2, 3), Error);
    EXPECT_THROW(no_slot.sample(), Error);  // no layer captured yet
}

TEST(AttentionGraph, RatioProxyNormalisesRowsAndKeepsRawSums) {
    // unnormalised sigmoid-like weights: rows sum to 0.5, 2 and 4
    const std::vector<float> w = {0.5f, 0, 0, 1.5f, 0.5f, 0, 1, 1, 2};
    AttentionGraphBuilder b(1, RowProxy::ratio, false, false, false);
    b.add_weights(0, w.data(), nullptr, 1, 3);
    const Eigen::MatrixXd& a = b.sample().attention[0];
    EXPECT_DOUBLE_EQ(a(0, 0), 1.0);
    EXPECT_DOUBLE_EQ(a(1, 0), 0.75);
    EXPECT_DOUBLE_EQ(a(2, 2), 0.5);
    const RawRowSums& raw = b.raw_row_sums()[0];
    EXPECT_DOUBLE_EQ(raw.min, 0.5);
    EXPECT_DOUBLE_EQ(raw.max, 4.0);
    EXPECT_DOUBLE_EQ(raw.mean(), 6.5 / 3);
    EXPECT_EQ(raw.rows, 3);
    EXPECT_EQ(raw.empty_rows, 0);
}

TEST(AttentionGraph, AbsRatioReadsSignedKernels) {
    // identity kernel: signed weights
    const std::vector<float> w = {-0.2f, 0, 0, 0.3f, -0.1f, 0, -1, 2, 1};
    AttentionGraphBuilder b(1, RowProxy::abs_ratio, false, false, false);
    b.add_weights(0, w.data(), nullptr, 1, 3);
    const Eigen::MatrixXd& a = b.sample().attention[0];
    EXPECT_DOUBLE_EQ(a(0, 0), 1.0);
    EXPECT_NEAR(a(1, 0), 0.75, 1e-7);
    EXPECT_NEAR(a(1, 1), 0.25, 1e-7);
    EXPECT_NEAR(a(2, 1), 0.5, 1e-7);
    validate_sample(b.sample());
    EXPECT_NEAR(b.raw_row_sums()[0].min, -0.2, 1e-7);  // signed sums, as the design wrote them
    EXPECT_NEAR(b.raw_row_sums()[0].max, 2.0, 1e-7);
}

TEST(AttentionGraph, RowWithoutWeightBecomesASelfLoopAndIsCounted) {
    // softpick: every score of query 1 <= 0, so its row is all zeros
    const std::vector<float> w = {0.4f, 0, 0, 0, 0, 0, 0.1f, 0.1f, 0.2f};
    AttentionGraphBuilder b(1, RowProxy::ratio, false, true, false);
    b.add_weights(0, w.data(), nullptr, 1, 3);
    const AttentionSample& s = b.sample();
    EXPECT_DOUBLE_EQ(s.attention[0](1, 1), 1.0);
    EXPECT_DOUBLE_EQ(s.attention[0](1, 0), 0.0);
    EXPECT_DOUBLE_EQ(s.heads[0][0](1, 1), 1.0);
    EXPECT_EQ(b.raw_row_sums()[0].empty_rows, 1);
    validate_sample(s);
}

TEST(AttentionGraph, HiddenStatesGetAZeroSlotRow) {
    const std::vector<float> h = {1, 2, 3, 4, 5, 6};  // (T = 3, C = 2)
    AttentionGraphBuilder b(1, RowProxy::none, true, false, true);
    b.add_weights(0, kWeights.data(), kSlot.data(), 2, 3);
    b.add_hidden(0, h.data(), 3, 2);
    EXPECT_THROW(b.sample(), Error);  // hidden state 1 missing
    b.add_hidden(1, h.data(), 3, 2);
    const AttentionSample& s = b.sample();
    ASSERT_EQ(s.hidden[1].rows(), 4);
    EXPECT_DOUBLE_EQ(s.hidden[1](0, 0), 0.0);
    EXPECT_DOUBLE_EQ(s.hidden[1](3, 1), 6.0);
    validate_sample(s);
}

TEST(AttentionGraph, RawSumsAccumulateOverSamples) {
    std::vector<RawRowSums> total;
    RawRowSums a{.min = 0.5, .max = 2.0, .sum = 3.0, .rows = 2, .empty_rows = 1};
    RawRowSums b{.min = 0.1, .max = 1.0, .sum = 1.5, .rows = 3, .empty_rows = 0};
    accumulate_raw_row_sums(total, {a});
    accumulate_raw_row_sums(total, {b});
    EXPECT_DOUBLE_EQ(total[0].min, 0.1);
    EXPECT_DOUBLE_EQ(total[0].max, 2.0);
    EXPECT_DOUBLE_EQ(total[0].mean(), 4.5 / 5);
    EXPECT_EQ(total[0].empty_rows, 1);
    const nlohmann::json j = graph_reading_json(4, true, false, RowProxy::ratio, total);
    EXPECT_EQ(j["node0"], "slot");
    EXPECT_EQ(j["proxy"], "ratio");
    EXPECT_DOUBLE_EQ(j["raw_row_sums"][0]["mean"].get<double>(), 0.9);
}

}  // namespace
}  // namespace sinklab::analysis
