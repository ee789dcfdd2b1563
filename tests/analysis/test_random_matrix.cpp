// Random-matrix statistics: ANALYSIS.md section 8.5 (faithful on U_n) and 8.6 (Marchenko-Pastur).
#include <cmath>
#include <numbers>

#include <boost/math/quadrature/gauss_kronrod.hpp>
#include <gtest/gtest.h>

#include "analysis/diffusion.h"
#include "analysis/random_matrix.h"
#include "attention_fixtures.h"

namespace sinklab::analysis {
namespace {

using testing::harmonic;

TEST(RandomMatrixFaithful, UniformCausalAttention) {
    struct Case {
        int n;
        double participation, stable_rank;
    };
    for (const Case& c : {Case{10, 5.5355746931, 1.4730781303}, Case{30, 9.8997742220, 1.6994271822}}) {
        const FaithfulRmt f = faithful_rmt(uniform_causal_attention(c.n));
        EXPECT_EQ(f.spectral_gap, 2.0) << "n=" << c.n;  // |lambda| = 1, 1/2, ...: exactly 2
        EXPECT_NEAR(f.participation_ratio, harmonic(c.n) * harmonic(c.n) / harmonic(c.n, 2), 1e-12);
        EXPECT_NEAR(f.participation_ratio, c.participation, 1e-9) << "n=" << c.n;
        EXPECT_NEAR(f.stable_rank, c.stable_rank, 1e-9) << "n=" << c.n;
        EXPECT_NEAR(f.stable_rank * f.spectral_norm * f.spectral_norm, harmonic(c.n), 1e-12);  // ||U||_F^2 = H_n
        EXPECT_NEAR(f.marchenko_pastur_kl, 0.8267308556, c.n == 10 ? 1e-10 : 1e-7) << "n=" << c.n;
        EXPECT_EQ(f.largest_eigenvalue, 1.0);
        ASSERT_EQ(f.top_eigenvalues.size(), 10u);
        EXPECT_EQ(f.top_eigenvalues[9], 0.1);
    }
    const FaithfulRmt f = faithful_rmt(uniform_causal_attention(10));
    EXPECT_NEAR(f.spectral_norm, 1.4100822356, 1e-10);
    EXPECT_NEAR(f.sink_concentration, harmonic(10) / 10.0, 1e-12);  // only column 0 passes P90 = 2.0289682540
    EXPECT_NEAR(f.sink_concentration, 0.2928968254, 1e-10);
    EXPECT_NEAR(f.entropy, std::log2(3628800.0) / 10.0, 1e-8);  // log2(10!)/10; the 1e-10 inside the log moves it ~1e-9
    EXPECT_NEAR(f.entropy, 2.17910611, 5e-9);
}

TEST(RandomMatrixFaithful, NonCausalSpectrumStartsAtOne) {
    Rng rng(17);
    const FaithfulRmt f = faithful_rmt(testing::random_dense(20, rng));
    EXPECT_NEAR(f.largest_eigenvalue, 1.0, 1e-12);  // row-stochastic: Perron root 1
    EXPECT_GT(f.spectral_gap, 1.0);
    EXPECT_TRUE(std::isnan(faithful_mp_kl(std::vector<double>{1.0})));
}

TEST(RandomMatrixCorrected, CausalDiagonalStatistics) {
    const int n = 12;
    const CorrectedRmt c = corrected_rmt(uniform_causal_attention(n));
    EXPECT_NEAR(*c.self_attention_mean, harmonic(n) / n, 1e-14);
    EXPECT_DOUBLE_EQ(*c.self_attention_max_after_first, 0.5);
    EXPECT_NEAR(*c.self_attention_participation, harmonic(n) * harmonic(n) / harmonic(n, 2), 1e-12);
    ASSERT_TRUE(c.mp.has_value());
    EXPECT_NEAR(c.mp->moments[0], 1.0, 1e-12);  // eigenvalues scaled by the entry variance have mean 1
    EXPECT_EQ(c.eigenvalues.size(), static_cast<size_t>(n));
    // All rows equal: the centred matrix is 0 and there is no spectrum to compare.
    Eigen::MatrixXd same = Eigen::MatrixXd::Constant(6, 6, 1.0 / 6);
    EXPECT_FALSE(corrected_rmt(same).mp.has_value());
}

// Integral of x^k p(x) on [a, b] in the angle x = m - h cos(t), independent of MarchenkoPastur::cdf.
double mp_moment_by_quadrature(const MarchenkoPastur& law, int k) {
    const double a = law.lower_edge(), b = law.upper_edge(), h = 0.5 * (b - a);
    const auto f = [&](double t) {
        const double x = a + 2.0 * h * std::pow(std::sin(0.5 * t), 2);  // m - h cos(t), no cancellation
        return std::pow(x, k) * law.density(x) * h * std::sin(t);
    };
    return boost::math::quadrature::gauss_kronrod<double, 61>::integrate(f, 0.0, std::numbers::pi, 15, 1e-12);
}

// Integral of p on [a, x], by quadrature in the same angle, to check the closed-form CDF.
double mp_cdf_by_quadrature(const MarchenkoPastur& law, double x) {
    const double a = law.lower_edge(), b = law.upper_edge(), m = 0.5 * (a + b), h = 0.5 * (b - a);
    const double theta = std::acos((m - x) / h);
    // a + 2h sin^2(t/2) is m - h cos(t) without the cancellation near t = 0.
    const auto f = [&](double t) { return law.density(a + 2.0 * h * std::pow(std::sin(0.5 * t), 2)) * h * std::sin(t); };
    return boost::math::quadrature::gauss_kronrod<double, 61>::integrate(f, 0.0, theta, 15, 1e-12);
}

TEST(MarchenkoPastur, ClosedFormCdfMatchesQuadrature) {
    for (double g : {0.1, 0.25, 0.5, 0.99, 1.0})
        for (double s2 : {1.0, 0.3}) {
            const MarchenkoPastur law{g, s2};
            for (double f : {0.01, 0.2, 0.5, 0.8, 0.999}) {
                const double x = law.lower_edge() + f * (law.upper_edge() - law.lower_edge());
                EXPECT_NEAR(law.cdf(x), mp_cdf_by_quadrature(law, x), 1e-9) << "gamma=" << g << " sigma2=" << s2 << " x=" << x;
            }
            EXPECT_EQ(law.cdf(law.lower_edge()), 0.0);
            EXPECT_EQ(law.cdf(law.upper_edge()), 1.0);
        }
}

TEST(MarchenkoPastur, IntegralAndNarayanaMoments) {
    for (double g : {0.25, 0.5, 0.99, 1.0}) {
        const MarchenkoPastur law{g, 1.0};
        EXPECT_NEAR(law.cdf(law.upper_edge() - 1e-12), 1.0, 1e-8) << "gamma=" << g;
        EXPECT_NEAR(law.cdf(0.5 * (law.lower_edge() + law.upper_edge()) + 1e-3) -
                        law.cdf(0.5 * (law.lower_edge() + law.upper_edge())),
                    law.density(0.5 * (law.lower_edge() + law.upper_edge())) * 1e-3, 1e-6);
        EXPECT_NEAR(law.moment(1), 1.0, 1e-12);
        EXPECT_NEAR(law.moment(2), 1.0 + g, 1e-12);
        EXPECT_NEAR(law.moment(3), 1.0 + 3 * g + g * g, 1e-12);
        EXPECT_NEAR(law.moment(4), 1.0 + 6 * g + 6 * g * g + g * g * g, 1e-12);
        EXPECT_NEAR(mp_moment_by_quadrature(law, 0), 1.0, 1e-6) << "gamma=" << g;
        for (int k = 1; k <= 4; ++k)
            EXPECT_NEAR(mp_moment_by_quadrature(law, k), law.moment(k), 1e-6) << "gamma=" << g << " k=" << k;
    }
    const MarchenkoPastur near_one{0.99, 1.0};
    EXPECT_NEAR(near_one.moment(2), 1.99, 1e-12);
    const MarchenkoPastur scaled{0.5, 2.0};
    EXPECT_NEAR(scaled.moment(2), 4.0 * 1.5, 1e-12);
    EXPECT_NEAR(scaled.upper_edge(), 2.0 * std::pow(1.0 + std::sqrt(0.5), 2), 1e-12);
}

TEST(MarchenkoPastur, SeededWishartSample) {
    // X (400 x 1600) standard normal, W = X X^T / 1600: gamma = 0.25, edges 0.25 and 2.25.
    const int p = 400, n = 1600;
    Rng rng(42);
    Eigen::MatrixXd x(p, n);
    for (int i = 0; i < p; ++i)
        for (int j = 0; j < n; ++j) x(i, j) = rng.normal();
    const Eigen::MatrixXd w = x * x.transpose() / n;
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(w, Eigen::EigenvaluesOnly);
    const Eigen::VectorXd& ev = es.eigenvalues();
    const MarchenkoPastur law{0.25, 1.0};
    const MpComparison c = compare_with_marchenko_pastur(std::vector<double>(ev.data(), ev.data() + ev.size()), law);
    // Statistical tolerances: fluctuations of these statistics are O(1/p) in the bulk and
    // O(p^-2/3) at the edges.
    EXPECT_NEAR(c.moments[0], 1.0, 0.01);
    EXPECT_NEAR(c.moments[1], 1.25, 0.03);
    EXPECT_NEAR(c.moments[2], 1.8125, 0.06);
    EXPECT_NEAR(c.min_eigenvalue, 0.25, 0.04);
    EXPECT_NEAR(c.max_eigenvalue, 2.25, 0.1);
    EXPECT_LT(c.ks_distance, 0.03);
    EXPECT_LE(c.outliers.size(), 3u);
}

TEST(RandomMatrix, JsonLabels) {
    const RandomMatrixResult r = analyze_random_matrix(testing::sample_of({uniform_causal_attention(10)}));
    const nlohmann::json j = r.to_json();
    EXPECT_EQ(j["layers"][0]["faithful"]["variant"], "faithful");
    EXPECT_EQ(j["layers"][0]["corrected"]["variant"], "corrected");
    EXPECT_EQ(j["layers"][0]["corrected"]["self_attention_max_after_first"].get<double>(), 0.5);
    EXPECT_NEAR(j["layers"][0]["faithful"]["marchenko_pastur_kl"].get<double>(), 0.8267308556, 1e-10);
}

}  // namespace
}  // namespace sinklab::analysis
