#include <gtest/gtest.h>

#include <vector>

#include "attention/sink_scores.h"

namespace sinklab {
namespace {

// Uniform causal attention A_ij = 1/i (1-indexed): alpha_1 = H_T / T (DESIGN.md section 4).
std::vector<float> uniform_causal(int B, int H, int T) {
    std::vector<float> w(static_cast<size_t>(B) * H * T * T, 0.0f);
    for (int bh = 0; bh < B * H; ++bh)
        for (int i = 0; i < T; ++i)
            for (int j = 0; j <= i; ++j) w[(static_cast<size_t>(bh) * T + i) * T + j] = 1.0f / (i + 1);
    return w;
}

TEST(SinkScores, UniformCausalAlphaIsHarmonicOverT) {
    const int T = 64;
    SinkScoreAccumulator acc(2, 3, 2, 0.3f);
    auto w = uniform_causal(2, 3, T);
    acc.add(0, w.data(), 2, T);
    acc.add(1, w.data(), 2, T);
    double harmonic = 0.0;
    for (int t = 1; t <= T; ++t) harmonic += 1.0 / t;
    for (double a : acc.alpha_per_layer(1)) EXPECT_NEAR(a, harmonic / T, 1e-6);
    EXPECT_NEAR(harmonic / T, 0.0741, 1e-4);
    EXPECT_EQ(acc.sink_percent(1), 0.0);
    // alpha_2 = 1/(T-1) sum_{t=2..T} 1/t
    EXPECT_NEAR(acc.alpha_per_layer(2)[0], (harmonic - 1.0) / (T - 1), 1e-6);
}

TEST(SinkScores, PerfectSinkGivesHundredPercent) {
    const int T = 16, H = 2;
    std::vector<float> w(static_cast<size_t>(H) * T * T, 0.0f);
    for (int h = 0; h < H; ++h)
        for (int i = 0; i < T; ++i) w[(static_cast<size_t>(h) * T + i) * T] = 1.0f;
    SinkScoreAccumulator acc(1, H, 1, 0.3f);
    acc.add(0, w.data(), 1, T);
    EXPECT_DOUBLE_EQ(acc.sink_percent(1), 100.0);
    EXPECT_DOUBLE_EQ(acc.alpha(1)[0][1], 1.0);
}

TEST(SinkScores, ThresholdIsStrictAndPerSample) {
    // Two samples: alpha_1 exactly eps (not counted) and above eps (counted): 50%.
    const int T = 2, H = 1;
    std::vector<float> w = {1.0f, 0.0f, 0.0f, 1.0f,   // alpha_1 = (1 + 0) / 2 = 0.5
                            1.0f, 0.0f, 0.5f, 0.5f};  // alpha_1 = 0.75
    SinkScoreAccumulator acc(1, H, 1, 0.5f);
    acc.add(0, w.data(), 2, T);
    EXPECT_DOUBLE_EQ(acc.sink_percent(1), 50.0);
    EXPECT_DOUBLE_EQ(acc.alpha(1)[0][0], 0.625);
}

}  // namespace
}  // namespace sinklab
