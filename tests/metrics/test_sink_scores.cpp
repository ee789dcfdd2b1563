#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "metrics/attention_stats.h"
#include "metrics/sink_scores.h"

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

TEST(SinkScores, SlotColumnIsPositionZeroSeenByEveryQuery) {
    // One head, T = 3: token weights plus a slot column; each row of tokens + slot sums to 1.
    const int T = 3;
    const std::vector<float> w = {0.4f, 0.0f, 0.0f,  //
                                  0.2f, 0.3f, 0.0f,  //
                                  0.1f, 0.1f, 0.1f};
    const std::vector<float> slot = {0.6f, 0.5f, 0.7f};
    SinkScoreAccumulator acc(1, 1, 2, 0.3f);
    acc.add(0, w.data(), slot.data(), 1, T, ProxyKind::none);
    EXPECT_TRUE(acc.has_slot());
    EXPECT_NEAR(acc.alpha(SinkScoreAccumulator::kSlot)[0][0], 0.6, 1e-7);  // mean over all T queries
    EXPECT_DOUBLE_EQ(acc.sink_percent(SinkScoreAccumulator::kSlot), 100.0);
    EXPECT_NEAR(acc.alpha(1)[0][0], 0.7 / 3, 1e-7);  // token columns as before
    EXPECT_NEAR(acc.alpha(2)[0][0], 0.4 / 2, 1e-7);
    EXPECT_DOUBLE_EQ(acc.sink_percent(1), 0.0);
    // slot weights on every add or on none
    EXPECT_THROW(acc.add(0, w.data(), 1, T), Error);
}

TEST(SinkScores, SlotPositionNeedsSlotWeights) {
    const std::vector<float> w = {1.0f, 0.0f, 0.5f, 0.5f};
    SinkScoreAccumulator acc(1, 1, 2, 0.3f);
    acc.add(0, w.data(), 1, 2);
    EXPECT_FALSE(acc.has_slot());
    EXPECT_THROW(acc.sink_percent(SinkScoreAccumulator::kSlot), Error);
    EXPECT_THROW(acc.alpha(3), Error);  // beyond the tracked positions
}

TEST(SinkScores, RatioProxyNormalisesEachRowBeforeAlpha) {
    // Unnormalised weights (sigmoid-like): each row is read as w / (sum w + 1e-8). Row 2 is a
    // scaled copy of a distribution, so the proxy equals the distribution.
    const int T = 2;
    const std::vector<float> w = {0.5f, 0.0f,   // proxy row: 1, 0
                                  0.9f, 0.3f};  // proxy row: 0.75, 0.25
    SinkScoreAccumulator acc(1, 1, 2, 0.3f);
    acc.add(0, w.data(), nullptr, 1, T, ProxyKind::ratio);
    EXPECT_NEAR(acc.alpha(1)[0][0], (1.0 + 0.75) / 2, 1e-7);
    EXPECT_NEAR(acc.alpha(2)[0][0], 0.25, 1e-7);
    EXPECT_DOUBLE_EQ(acc.sink_percent(1), 100.0);
    EXPECT_DOUBLE_EQ(acc.sink_percent(2), 0.0);
}

TEST(SinkScores, AbsRatioProxyReadsMagnitudesAndIncludesTheSlot) {
    // identity attention: weights of either sign, read as |w| / (sum |w| + 1e-8) over tokens and slot.
    const int T = 2;
    const std::vector<float> w = {-2.0f, 0.0f,  //
                                  1.0f, -1.0f};
    const std::vector<float> slot = {2.0f, 2.0f};
    SinkScoreAccumulator acc(1, 1, 2, 0.3f);
    acc.add(0, w.data(), slot.data(), 1, T, ProxyKind::abs_ratio);
    EXPECT_NEAR(acc.alpha(SinkScoreAccumulator::kSlot)[0][0], (0.5 + 0.5) / 2, 1e-7);
    EXPECT_NEAR(acc.alpha(1)[0][0], (0.5 + 0.25) / 2, 1e-7);
    EXPECT_NEAR(acc.alpha(2)[0][0], 0.25, 1e-7);
}

// Random causal rows that sum to one, (B, H, T, T).
std::vector<float> random_causal_weights(int B, int H, int T, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> w(static_cast<size_t>(B) * H * T * T, 0.0f);
    for (long row = 0; row < static_cast<long>(B) * H * T; ++row) {
        const int i = static_cast<int>(row % T);
        double sum = 0.0;
        for (int j = 0; j <= i; ++j) sum += w[row * T + j] = static_cast<float>(std::exp(3.0 * rng.normal()));
        for (int j = 0; j <= i; ++j) w[row * T + j] = static_cast<float>(w[row * T + j] / sum);
    }
    return w;
}

TEST(SinkScores, SinkScoresFromColumnSumsMatchTheWeightsReader) {
    const int B = 3, H = 2, T = 20, K = 5;
    const float eps = 0.2f;
    SinkScoreAccumulator from_columns(2, H, K, eps);
    SinkScoreAccumulator from_weights(2, H, K, eps);
    for (int layer = 0; layer < 2; ++layer) {
        const std::vector<float> w = random_causal_weights(B, H, T, 40 + layer);
        std::vector<float> columns(static_cast<size_t>(B) * H * T);
        attention_weight_stats(columns.data(), nullptr, w.data(), B, H, T);
        from_columns.add_column_sums(layer, columns.data(), nullptr, B, T);
        from_weights.add(layer, w.data(), B, T);
    }
    for (int k = 1; k <= K; ++k) {
        EXPECT_DOUBLE_EQ(from_columns.sink_percent(k), from_weights.sink_percent(k)) << k;
        for (int l = 0; l < 2; ++l)
            for (int h = 0; h < H; ++h) EXPECT_NEAR(from_columns.alpha(k)[l][h], from_weights.alpha(k)[l][h], 1e-6);
        EXPECT_EQ(from_columns.sink_percent_per_layer(k), from_weights.sink_percent_per_layer(k));
    }
    EXPECT_GT(from_columns.sink_percent(1), 0.0);  // the case is not trivially zero
}

TEST(SinkScores, SlotScoresFromSlotSumsMatchTheWeightsReader) {
    const int B = 2, H = 3, T = 16, K = 4;
    const float eps = 0.1f;
    SinkScoreAccumulator from_columns(1, H, K, eps);
    SinkScoreAccumulator from_weights(1, H, K, eps);
    std::vector<float> w = random_causal_weights(B, H, T, 7);
    // Give every row a slot weight and shrink its token weights to make room for it.
    Rng rng(8);
    std::vector<float> slot(static_cast<size_t>(B) * H * T), slot_sums(static_cast<size_t>(B) * H, 0.0f);
    for (long row = 0; row < static_cast<long>(B) * H * T; ++row) {
        slot[row] = static_cast<float>(rng.uniform());
        for (int j = 0; j < T; ++j) w[row * T + j] *= 1.0f - slot[row];
        slot_sums[row / T] += slot[row];
    }
    std::vector<float> columns(static_cast<size_t>(B) * H * T);
    attention_weight_stats(columns.data(), nullptr, w.data(), B, H, T);
    from_columns.add_column_sums(0, columns.data(), slot_sums.data(), B, T);
    from_weights.add(0, w.data(), slot.data(), B, T, ProxyKind::none);
    ASSERT_TRUE(from_columns.has_slot());
    for (int k : {SinkScoreAccumulator::kSlot, 1, 2, K}) {
        EXPECT_DOUBLE_EQ(from_columns.sink_percent(k), from_weights.sink_percent(k)) << k;
        for (int h = 0; h < H; ++h) EXPECT_NEAR(from_columns.alpha(k)[0][h], from_weights.alpha(k)[0][h], 1e-6) << k;
    }
    EXPECT_GT(from_columns.sink_percent(SinkScoreAccumulator::kSlot), 0.0);
}

TEST(SinkScores, ProxiesFollowGu) {
    const std::map<std::string, ProxyKind> expected = {
        {"softmax", ProxyKind::none},          {"kv_bias", ProxyKind::none},
        {"softpick", ProxyKind::none},         {"sigmoid", ProxyKind::ratio},
        {"sigmoid_learnable", ProxyKind::ratio}, {"sigmoid_norm", ProxyKind::none},
        {"elu1", ProxyKind::ratio},            {"elu1_norm", ProxyKind::none},
        {"linear_elu", ProxyKind::none},       {"identity", ProxyKind::abs_ratio},
        {"identity_norm", ProxyKind::abs_ratio}};
    for (const auto& [name, proxy] : expected) EXPECT_EQ(sink_metric_proxy(AttentionSpec::parse(name)), proxy) << name;
}

TEST(SinkScores, SlotWeightsPairWithTheSameLayersWeightsOnce) {
    SlotWeightsTap slot;
    EXPECT_EQ(slot.take(0), nullptr);  // a design without a slot
    const std::vector<float> weights = {0.25f, 0.5f, 0.75f};
    slot.keep(2, weights.data(), {1, 1, 3});
    EXPECT_EQ(slot.take(1), nullptr);  // another layer's weights tap
    slot.keep(2, weights.data(), {1, 1, 3});
    const float* kept = slot.take(2);
    ASSERT_NE(kept, nullptr);
    EXPECT_EQ(std::vector<float>(kept, kept + 3), weights);
    EXPECT_EQ(slot.take(2), nullptr);  // taken once
}

}  // namespace
}  // namespace sinklab
