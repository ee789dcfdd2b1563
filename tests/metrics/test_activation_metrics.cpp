// The accumulators of the residual stream, keys and queries on hand-made taps with known answers.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "metrics/massive_activations.h"
#include "metrics/norm_ratio.h"
#include "metrics/sink_geometry.h"

namespace sinklab {
namespace {

TEST(ActivationMetrics, MassiveActivationsAboveBothThresholds) {
    const int B = 2, T = 4, C = 8;
    std::vector<float> h(static_cast<size_t>(B) * T * C, 0.1f);
    auto at = [&](int b, int t, int d) -> float& { return h[(static_cast<size_t>(b) * T + t) * C + d]; };
    at(0, 0, 3) = 500.0f;   // massive
    at(1, 0, 3) = 120.0f;   // massive
    at(1, 1, 6) = -300.0f;  // massive (|h| counts)
    at(1, 2, 5) = 99.0f;    // below the absolute threshold
    MassiveActivationAccumulator acc(1, C);
    acc.add(0, h.data(), B, T, 10);
    const LayerActivations& a = acc.layer(0);
    EXPECT_FLOAT_EQ(a.median, 0.1f);
    ASSERT_EQ(a.top.size(), 3u);
    EXPECT_EQ(a.top[0].sample, 10);
    EXPECT_EQ(a.top[0].position, 1);
    EXPECT_EQ(a.top[0].dim, 3);
    EXPECT_FLOAT_EQ(a.top[1].value, -300.0f);
    EXPECT_EQ(a.top[1].position, 2);
    EXPECT_EQ(a.top[2].sample, 11);
    EXPECT_EQ(a.massive_count, 3);
    EXPECT_EQ(a.massive_dims, (std::map<int, long>{{3, 2}, {6, 1}}));
    EXPECT_EQ(a.massive_positions, (std::map<int, long>{{1, 2}, {2, 1}}));
    EXPECT_NEAR(a.top_to_median(), 5000.0, 1e-2);
}

TEST(ActivationMetrics, MassiveNeedsThousandTimesTheMedian) {
    // |h| = 150 > 100, but the median is 1: 150 < 1000 x 1, not massive
    std::vector<float> h(16, 1.0f);
    h[5] = 150.0f;
    MassiveActivationAccumulator acc(1, 4);
    acc.add(0, h.data(), 1, 4, 0);
    EXPECT_EQ(acc.layer(0).massive_count, 0);
    EXPECT_FLOAT_EQ(acc.layer(0).top[0].value, 150.0f);
}

TEST(ActivationMetrics, NormRatioOfTheFirstTokenAgainstTheRest) {
    // one sample, T = 3, one group of width 2: norms 6, 1, 3 -> 6 / 2
    const std::vector<float> x = {6, 0, 0, 1, 3, 0};
    NormRatioAccumulator acc(1, 1);
    acc.add(0, x.data(), 2, 2, 1, 3);
    EXPECT_DOUBLE_EQ(acc.ratio()[0][0], 3.0);
}

TEST(ActivationMetrics, GeometryOfQueriesAgainstTheFirstKeyAndTheRest) {
    // NH = NKV = 1, HS = 2, T = 3; rows [q, k, v]. Keys: k_1 = (1, 0), later keys (0, 1).
    const float r = std::sqrt(0.5f);
    const std::vector<float> qkv = {r, r, 1, 0, 0, 0,  //
                                    r, r, 0, 1, 0, 0,  //
                                    1, 0, 0, 2, 0, 0};
    SinkGeometryAccumulator acc(1, 1, 1, 2);
    acc.add(0, qkv.data(), 1, 3);
    // cos(q_t, k_1): r, r, 1 -> mean (2r + 1) / 3; later keys: queries 2 and 3 see (0, 1): r and 0
    EXPECT_NEAR(acc.cos_first()[0][0], (2 * r + 1) / 3, 1e-7);
    EXPECT_NEAR(acc.cos_rest()[0][0], r / 2, 1e-7);
}

TEST(ActivationMetrics, TrainingRatioIsTheLargestLayersPeakOverItsPooledMedian) {
    MassiveRatioAccumulator acc(3);
    // layer 0: |h| 1, 2, 3, 40 pooled over two adds -> upper median 3, peak 40
    const std::vector<float> a = {1.0f, -2.0f}, b = {3.0f, -40.0f};
    acc.add(0, a.data(), 2);
    acc.add(0, b.data(), 2);
    // layer 1: median 0 is left out; layer 2 never seen
    const std::vector<float> zeros = {0.0f, 0.0f, 5.0f};
    acc.add(1, zeros.data(), 3);
    EXPECT_DOUBLE_EQ(acc.ratio(), 40.0 / 3.0);
}

}  // namespace
}  // namespace sinklab
