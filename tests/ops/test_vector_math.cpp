// Accuracy of the vectorisable exp/tanh/sigmoid against libm over the float range (their speed
// shows in bench/train_throughput).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ops/vector_math.h"

namespace sinklab {
namespace {

// Floats from lo to hi in relative steps of 1e-5: dense enough to meet every reduction interval.
template <typename F>
void for_floats(float lo, float hi, F&& f) {
    for (float x = lo; x <= hi; x = std::nextafter(x, hi) + std::fabs(x) * 1e-5f + 1e-30f) f(x);
}

TEST(VectorMath, ExpIsWithinTwoUlpOfLibm) {
    double worst = 0.0;
    for_floats(-87.0f, 88.7f, [&](float x) {
        const double want = std::exp(static_cast<double>(x));
        const double ulp = std::nextafter(static_cast<float>(want), std::numeric_limits<float>::infinity()) -
                           static_cast<float>(want);
        worst = std::max(worst, std::fabs(exp_fast(x) - want) / ulp);
    });
    EXPECT_LE(worst, 2.0);
    EXPECT_EQ(exp_fast(0.0f), 1.0f);
}

TEST(VectorMath, ExpSaturatesInsteadOfOverflowing) {
    EXPECT_TRUE(std::isfinite(exp_fast(1000.0f)));
    EXPECT_GT(exp_fast(1000.0f), 3e38f);
    EXPECT_GE(exp_fast(-1000.0f), 0.0f);
    EXPECT_LT(exp_fast(-1000.0f), 2e-38f);
}

// A diverged run's NaN stays NaN, without an undefined NaN-to-int conversion on the way (found by
// clang's UBSan in SweepCli.ResumesAnInterruptedRunAndRecordsFailures).
TEST(VectorMath, NanStaysNan) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    EXPECT_TRUE(std::isnan(exp_fast(nan)));
    EXPECT_TRUE(std::isnan(tanh_fast(nan)));
    EXPECT_TRUE(std::isnan(sigmoid_fast(nan)));
}

TEST(VectorMath, TanhAndSigmoidAreWithinTwoTenMillionthsAbsolute) {
    double worst_tanh = 0.0, worst_sigmoid = 0.0;
    for_floats(-30.0f, 30.0f, [&](float x) {
        worst_tanh = std::max(worst_tanh, std::fabs(tanh_fast(x) - std::tanh(static_cast<double>(x))));
        worst_sigmoid =
            std::max(worst_sigmoid, std::fabs(sigmoid_fast(x) - 1.0 / (1.0 + std::exp(-static_cast<double>(x)))));
    });
    EXPECT_LE(worst_tanh, 2e-7);
    EXPECT_LE(worst_sigmoid, 2e-7);
    EXPECT_EQ(tanh_fast(0.0f), 0.0f);
    EXPECT_EQ(tanh_fast(-50.0f), -1.0f);
    EXPECT_EQ(tanh_fast(50.0f), 1.0f);
}

}  // namespace
}  // namespace sinklab
