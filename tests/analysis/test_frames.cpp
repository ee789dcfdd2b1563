// Reference-frame classification on patterns whose frame is known by construction.
#include <gtest/gtest.h>

#include "analysis/diffusion.h"
#include "analysis/frames.h"
#include "analysis/stats.h"
#include "attention_fixtures.h"

namespace sinklab::analysis {
namespace {

// Non-causal attention with two anchors: 0.45 on token 0, 0.45 on token T-1, the rest spread.
Eigen::MatrixXd dual_anchor(int T) {
    Eigen::MatrixXd a = Eigen::MatrixXd::Constant(T, T, 0.1 / (T - 2));
    a.col(0).setConstant(0.45);
    a.col(T - 1).setConstant(0.45);
    return a;
}

TEST(Frames, PerfectSinkIsCentralized) {
    const int n = 12;
    const FrameResult r = classify_frames({testing::sample_of({testing::perfect_sink(n), testing::perfect_sink(n)})});
    EXPECT_EQ(r.frame, Frame::centralized);
    EXPECT_TRUE(r.causal);
    ASSERT_EQ(r.layers.size(), 2u);
    const LayerFrame& l = r.layers[0];
    EXPECT_EQ(l.frame, Frame::centralized);
    EXPECT_DOUBLE_EQ(l.reference_count, 1.0);
    EXPECT_DOUBLE_EQ(l.token0_only_fraction, 1.0);
    EXPECT_NEAR(l.column0_share, (1.0 + 0.9 * (n - 1)) / n, 1e-15);
    const Eigen::VectorXd col = testing::perfect_sink(n).colwise().sum().transpose();
    EXPECT_NEAR(l.in_degree_gini, gini(std::vector<double>(col.data(), col.data() + n)), 1e-15);
}

TEST(Frames, UniformCausalAttentionIsDistributed) {
    // Column means of U_16: 0.211, 0.149, 0.118, 0.097, ...: R = {0, 1, 2}.
    const FrameResult r = classify_frames({testing::sample_of({uniform_causal_attention(16)})});
    EXPECT_EQ(r.frame, Frame::distributed);
    EXPECT_DOUBLE_EQ(r.layers[0].reference_count, 3.0);
}

TEST(Frames, DualAnchorEncoderIsBidirectional) {
    const FrameResult r = classify_frames({testing::sample_of({dual_anchor(10), testing::perfect_sink(10)})});
    EXPECT_FALSE(r.causal);
    EXPECT_EQ(r.layers[0].frame, Frame::bidirectional);
    EXPECT_EQ(r.layers[1].frame, Frame::centralized);
    EXPECT_EQ(r.frame, Frame::bidirectional);
    const nlohmann::json j = r.to_json();
    EXPECT_EQ(j["frame"], "bidirectional");
    EXPECT_EQ(j["variant"], "corrected");
    EXPECT_EQ(j["layers"][0]["dual_anchor_fraction"].get<double>(), 1.0);
}

TEST(Frames, ModelLabelFollowsTheLayerMajority) {
    const Eigen::MatrixXd sink = testing::perfect_sink(16), spread = uniform_causal_attention(16);
    EXPECT_EQ(classify_frames({testing::sample_of({sink, sink, sink, spread})}).frame, Frame::centralized);
    EXPECT_EQ(classify_frames({testing::sample_of({sink, sink, spread, spread})}).frame, Frame::distributed);
    // Layer votes across samples: a tie is distributed.
    const FrameResult tie = classify_frames({testing::sample_of({sink}), testing::sample_of({spread})});
    EXPECT_DOUBLE_EQ(tie.layers[0].votes[static_cast<int>(Frame::centralized)], 0.5);
    EXPECT_EQ(tie.layers[0].frame, Frame::distributed);
}

}  // namespace
}  // namespace sinklab::analysis
