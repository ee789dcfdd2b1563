// Statistics of attention weights on hand-made weights with closed-form answers.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "metrics/attention_stats.h"

namespace sinklab {
namespace {

TEST(AttentionWeightStats, UniformCausalRows) {
    // A_ij = 1/(i+1): row i has entropy ln(i+1); column j receives sum_{i>=j} 1/(i+1) = H_T - H_j.
    const int T = 64;
    std::vector<float> w(static_cast<size_t>(T) * T, 0.0f);
    for (int i = 0; i < T; ++i)
        for (int j = 0; j <= i; ++j) w[static_cast<size_t>(i) * T + j] = 1.0f / (i + 1);
    std::vector<float> cols(T), entropy(T);
    attention_weight_stats(cols.data(), entropy.data(), w.data(), 1, 1, T);
    double harmonic_T = 0.0;
    for (int t = 1; t <= T; ++t) harmonic_T += 1.0 / t;
    double harmonic_j = 0.0;
    for (int j = 0; j < T; ++j) {
        EXPECT_NEAR(entropy[j], std::log(j + 1.0), 1e-5);
        EXPECT_NEAR(cols[j], harmonic_T - harmonic_j, 1e-5);
        harmonic_j += 1.0 / (j + 1);
    }
    EXPECT_NEAR(cols[0] / T, 0.0741, 1e-4);  // alpha_1 = H_T / T
}

TEST(AttentionWeightStats, ProxiesRescaleEachRow) {
    // Unnormalised weights read as w / (sum w + 1e-8), or |w| / (sum |w| + 1e-8).
    const std::vector<float> w = {2.0f, 0.0f, -1.0f, 3.0f};
    std::vector<float> cols(2), entropy(2);
    attention_weight_stats(cols.data(), entropy.data(), w.data(), 1, 1, 2, ProxyKind::abs_ratio);
    EXPECT_NEAR(cols[0], 1.0 + 0.25, 1e-6);
    EXPECT_NEAR(cols[1], 0.75, 1e-6);
    EXPECT_NEAR(entropy[0], 0.0, 1e-6);
    EXPECT_NEAR(entropy[1], -(0.25 * std::log(0.25) + 0.75 * std::log(0.75)), 1e-6);
}

TEST(AttentionWeightStats, SlotSumsAddEachHeadsSlotColumnOverTheQueries) {
    const std::vector<float> slot = {0.5f, 0.25f, 0.125f,  // (b 0, h 0)
                                     1.0f, 0.0f, 0.5f};    // (b 0, h 1)
    std::vector<float> sums = {9.0f};                      // replaced, whatever it held
    slot_weight_sums(sums, slot.data(), 1, 2, 3);
    EXPECT_EQ(sums, (std::vector<float>{0.875f, 1.5f}));
}

TEST(HeadAverage, IsTheMeanOverHeadsInBothPrecisions) {
    // NH = 3 planes of 2 x 2: the average of 1, 2, 6 and of a sink column
    const std::vector<float> w = {1, 0, 1, 0,  //
                                  2, 0, 0, 2,  //
                                  6, 0, 2, 1};
    std::vector<float> single(4, 7.0f);  // overwritten, not accumulated
    std::vector<double> wide(4, 7.0);
    head_average(single.data(), w.data(), 3, 4);
    head_average(wide.data(), w.data(), 3, 4);
    const std::vector<double> expected = {3.0, 0.0, 1.0, 1.0};
    for (int i = 0; i < 4; ++i) {
        EXPECT_NEAR(single[i], expected[i], 1e-6) << i;
        EXPECT_NEAR(wide[i], expected[i], 1e-15) << i;
    }
}

TEST(LayerHeadMeans, DivideEachLayersSumsByItsSamplesAndGiveZeroForALayerWithNone) {
    // 3 layers of 2 heads; layer 1 saw no sample (a probe that stopped early, a layer not tapped)
    const std::vector<double> sums = {3.0, 6.0, 5.0, 7.0, 1.0, -2.0};
    const std::vector<long> samples = {3, 0, 4};
    const std::vector<std::vector<double>> means = layer_head_means(sums, samples, 2);
    const std::vector<std::vector<double>> expected = {{1.0, 2.0}, {0.0, 0.0}, {0.25, -0.5}};
    EXPECT_EQ(means, expected);
}

}  // namespace
}  // namespace sinklab
