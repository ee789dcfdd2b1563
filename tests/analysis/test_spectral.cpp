// Spectral analysis: the closed forms of ANALYSIS.md section 8.1-8.3, the notebooks' in-degree
// metrics on the perfect sink, and Spectra shift-invert against the dense solver at T = 1024.
#include <cmath>
#include <numbers>

#include <gtest/gtest.h>

#include "analysis/diffusion.h"
#include "analysis/spectral.h"
#include "analysis/stats.h"
#include "attention_fixtures.h"

namespace sinklab::analysis {
namespace {

std::vector<double> full_spectrum(const Eigen::MatrixXd& m) {
    return smallest_eigenvalues(m, static_cast<int>(m.rows()), 1 << 20).eigenvalues;
}

void expect_spectrum(const std::vector<double>& got, const std::vector<double>& expected, double tol, const char* what) {
    ASSERT_EQ(got.size(), expected.size()) << what;
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], tol) << what << " eigenvalue " << i;
}

std::vector<double> repeated(std::initializer_list<std::pair<double, int>> parts) {
    std::vector<double> v;
    for (const auto& [value, count] : parts) v.insert(v.end(), count, value);
    return v;
}

TEST(SpectralClosedForm, StarCompleteAndPathLaplacians) {
    const int n = 10;
    Eigen::MatrixXd star = Eigen::MatrixXd::Zero(n, n), complete = Eigen::MatrixXd::Ones(n, n), path = Eigen::MatrixXd::Zero(n, n);
    for (int i = 1; i < n; ++i) star(0, i) = star(i, 0) = 1.0;
    complete.diagonal().setZero();
    for (int i = 0; i + 1 < n; ++i) path(i, i + 1) = path(i + 1, i) = 1.0;

    expect_spectrum(full_spectrum(laplacian(star)), repeated({{0.0, 1}, {1.0, n - 2}, {double(n), 1}}), 1e-12, "star");
    expect_spectrum(full_spectrum(laplacian(complete)), repeated({{0.0, 1}, {double(n), n - 1}}), 1e-12, "complete");
    std::vector<double> path_expected;
    for (int k = 0; k < n; ++k) path_expected.push_back(2.0 - 2.0 * std::cos(std::numbers::pi * k / n));
    expect_spectrum(full_spectrum(laplacian(path)), path_expected, 1e-12, "path");
    EXPECT_NEAR(full_spectrum(laplacian(path))[1], 0.0978869674, 1e-10);
}

TEST(SpectralFaithful, PerfectSink) {
    const int n = 10;
    SpectralOptions options;
    options.fiedler_thresholds = {0.01};
    options.laplacian_thresholds = {0.01};
    const SpectralResult r = analyze_spectral(testing::sample_of({testing::perfect_sink(n)}), options);
    const SpectralLayer& layer = r.layers[0];

    // S is a star with weight 1/2: {0, 0.5^(n-2), n/2}.
    const Eigen::MatrixXd b = (testing::perfect_sink(n).array() > 0.01).cast<double>();
    expect_spectrum(full_spectrum(laplacian(0.5 * (b + b.transpose()))),
                    repeated({{0.0, 1}, {0.5, n - 2}, {n / 2.0, 1}}), 1e-12, "perfect sink");

    const double basic = 10.0 / 9.0;
    const double gini = (3.0 * n - 1) / (2.0 * n - 1) - (n + 1.0) / n;
    const LaplacianThreshold& lap = layer.laplacian[0];
    ASSERT_TRUE(lap.computed);
    ASSERT_FALSE(lap.too_few_connections);
    expect_spectrum(lap.eigenvalues, {0.0, 0.5, 0.5}, 1e-12, "laplacian.ipynb");
    EXPECT_NEAR(lap.fiedler_value, 0.5, 1e-12);
    EXPECT_NEAR(lap.spectral_gap, 0.0, 1e-12);
    EXPECT_EQ(lap.degrees.nodes, n);
    EXPECT_NEAR(lap.degrees.basic_star_likeness, basic, 1e-12);
    EXPECT_NEAR(lap.degrees.basic_star_likeness, 1.111111, 5e-7);
    EXPECT_NEAR(lap.degrees.degree_centralization, 1.0, 1e-12);
    EXPECT_NEAR(lap.degrees.gini, gini, 1e-12);
    EXPECT_NEAR(lap.degrees.gini, 0.426316, 5e-7);
    EXPECT_NEAR(lap.degrees.star_likeness, 0.3 * basic + 0.7 * gini, 1e-12);
    EXPECT_NEAR(lap.degrees.star_likeness, 0.631754, 5e-7);
    EXPECT_NEAR(lap.degrees.degree_variance, 7.29, 1e-12);
    // Undirected S is a star: path lengths 1 (centre) and 2 (leaf to leaf), no triangles.
    ASSERT_TRUE(lap.avg_shortest_path.has_value());
    EXPECT_NEAR(*lap.avg_shortest_path, (2.0 * (n - 1) + 2.0 * (n - 1) * (n - 2)) / (n * (n - 1.0)), 1e-12);
    EXPECT_NEAR(*lap.clustering, 0.0, 1e-15);

    const FiedlerThreshold& f = layer.fiedler[0];
    EXPECT_NEAR(f.fiedler_value, 0.5, 1e-12);
    EXPECT_NEAR(f.star_likeness, basic, 1e-12);
    EXPECT_NEAR(*f.degree_centralization, 1.0, 1e-12);
    EXPECT_NEAR(*f.degree_variance, 7.29, 1e-12);
    EXPECT_NEAR(*f.connection_density, (2.0 * n - 1) / (n * n), 1e-15);

    // Corrected in-degree, no self-loops: only column 0 receives (n - 1 edges).
    const InDegreeMetrics& c = layer.in_degree[0].degrees;
    EXPECT_NEAR(c.basic_star_likeness, 1.0, 1e-12);
    EXPECT_NEAR(c.degree_centralization, 1.0, 1e-12);
    EXPECT_NEAR(c.gini, 2.0 - (n + 1.0) / n, 1e-12);
}

TEST(SpectralFaithful, ShiftInvertOnThePerfectSink) {
    const Eigen::MatrixXd b = (testing::perfect_sink(10).array() > 0.01).cast<double>();
    const Spectrum s = smallest_eigenvalues(laplacian(0.5 * (b + b.transpose())), 3, /*dense_max=*/0);
    EXPECT_EQ(s.solver, "shift-invert");
    expect_spectrum(s.eigenvalues, {0.0, 0.5, 0.5}, 1e-10, "Spectra");
}

TEST(SpectralFaithful, DenseCausalBinarization) {
    // Threshold below every entry: B is the lower triangle, S = K_n / 2 (+ self-loops that cancel).
    const int n = 9;
    const Eigen::MatrixXd u = uniform_causal_attention(n);
    const Eigen::MatrixXd b = (u.array() > 0.5 / n).cast<double>();
    expect_spectrum(full_spectrum(laplacian(0.5 * (b + b.transpose()))), repeated({{0.0, 1}, {n / 2.0, n - 1}}), 1e-12,
                    "dense causal");
}

TEST(SpectralFaithful, UniformAttentionWithThreshold) {
    // r = #{i : 1/i > tau} (1-indexed): {0^(n-r+1), (r/2)^(r-1)}.
    const int n = 12;
    const double tau = 0.15;
    int r = 0;
    for (int i = 1; i <= n; ++i) r += 1.0 / i > tau;
    ASSERT_EQ(r, 6);
    const Eigen::MatrixXd b = (uniform_causal_attention(n).array() > tau).cast<double>();
    expect_spectrum(full_spectrum(laplacian(0.5 * (b + b.transpose()))), repeated({{0.0, n - r + 1}, {r / 2.0, r - 1}}),
                    1e-12, "uniform with threshold");
    // The same through the analysis (the three smallest are zeros: disconnected graph).
    SpectralOptions options;
    options.fiedler_thresholds = {tau};
    options.laplacian_thresholds = {tau};
    const SpectralResult res = analyze_spectral(testing::sample_of({uniform_causal_attention(n)}), options);
    expect_spectrum(res.layers[0].laplacian[0].eigenvalues, {0.0, 0.0, 0.0}, 1e-12, "analysis");
}

TEST(SpectralFaithful, NotebookComputesFullMetricsOnlyWhenEffectiveOrEveryFourthLayer) {
    // tau = 0.3 on U_8 keeps 1, 1/2 x 2, 1/3 x 3: density 6/64, effective.
    // tau = 0.6 keeps only A_00: density 1/64, not effective, and fewer than 2 connections.
    SpectralOptions options;
    options.fiedler_thresholds = {0.6};
    options.laplacian_thresholds = {0.3, 0.6};
    const Eigen::MatrixXd u = uniform_causal_attention(8);
    const SpectralResult r = analyze_spectral(testing::sample_of({u, u}), options);
    const LaplacianThreshold& l0 = r.layers[0].laplacian[1];
    const LaplacianThreshold& l1_eff = r.layers[1].laplacian[0];
    const LaplacianThreshold& l1 = r.layers[1].laplacian[1];
    EXPECT_TRUE(l1_eff.effective);
    EXPECT_TRUE(l1_eff.computed);
    EXPECT_FALSE(l0.effective);
    EXPECT_TRUE(l0.computed);  // layer 0 % 4 == 0
    EXPECT_TRUE(l0.too_few_connections);
    EXPECT_FALSE(l1.computed);
    EXPECT_EQ(r.layers[0].fiedler[0].fiedler_value, 0.0);
    EXPECT_FALSE(r.layers[0].fiedler[0].degree_variance.has_value());
    const nlohmann::json j = r.to_json();
    EXPECT_FALSE(j["layers"][1]["faithful"]["laplacian_notebook"][1].contains("fiedler_value"));
    EXPECT_EQ(j["layers"][1]["faithful"]["variant"], "faithful");
    EXPECT_EQ(j["layers"][1]["corrected"]["variant"], "corrected");
}

TEST(SpectralCorrected, WeightedAndNormalizedLaplacians) {
    // Perfect sink: W has W_0i = 0.45 only (a weighted star): L_w = {0, 0.45^(n-2), 0.45 n}; the
    // normalised Laplacian of a star is {0, 1^(n-2), 2}.
    const int n = 10;
    const SpectralResult r = analyze_spectral(testing::sample_of({testing::perfect_sink(n)}));
    expect_spectrum(r.layers[0].weighted.eigenvalues, {0.0, 0.45, 0.45}, 1e-12, "weighted");
    expect_spectrum(r.layers[0].normalized.eigenvalues, {0.0, 1.0, 1.0}, 1e-12, "normalized");
    Eigen::MatrixXd w = 0.5 * (testing::perfect_sink(n) + testing::perfect_sink(n).transpose());
    w.diagonal().setZero();
    expect_spectrum(full_spectrum(normalized_laplacian(w)), repeated({{0.0, 1}, {1.0, n - 2}, {2.0, 1}}), 1e-12,
                    "normalized star");
}

TEST(SpectralSolver, DisconnectedBlocksMatchTheDenseSolver) {
    Rng rng(5);
    Eigen::MatrixXd s = Eigen::MatrixXd::Zero(40, 40);
    for (int i = 0; i < 40; ++i)
        for (int j = 0; j < i; ++j)
            if ((i < 25) == (j < 25) && rng.uniform() < 0.3) s(i, j) = s(j, i) = rng.uniform();
    const Eigen::MatrixXd l = laplacian(s);
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(l);
    const Spectrum split = smallest_eigenvalues(l, 4, /*dense_max=*/5);
    EXPECT_EQ(split.solver, "shift-invert");
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(split.eigenvalues[i], es.eigenvalues()(i), 1e-9) << i;
}

TEST(SpectralSolver, SpectraAgreesWithDenseAtT1024) {
    Rng rng(1024);
    const AttentionSample sample = testing::sample_of({testing::random_causal(1024, rng, 0.02)});
    SpectralOptions options;
    options.fiedler_thresholds = {0.001};
    options.laplacian_thresholds = {0.001};
    options.dense_max = 256;
    const SpectralResult shift = analyze_spectral(sample, options);
    options.dense_max = 4096;
    const SpectralResult dense = analyze_spectral(sample, options);

    const SpectralLayer& a = shift.layers[0];
    const SpectralLayer& b = dense.layers[0];
    EXPECT_EQ(a.weighted.solver, "shift-invert");
    EXPECT_EQ(a.normalized.solver, "shift-invert");
    EXPECT_EQ(b.weighted.solver, "dense");
    ASSERT_FALSE(a.laplacian[0].too_few_connections);
    const auto close = [](const std::vector<double>& x, const std::vector<double>& y, const char* what) {
        ASSERT_EQ(x.size(), 3u) << what;
        ASSERT_EQ(y.size(), 3u) << what;
        for (int i = 0; i < 3; ++i) EXPECT_NEAR(x[i], y[i], 1e-8 * std::max(1.0, std::fabs(y[i]))) << what << " " << i;
    };
    close(a.laplacian[0].eigenvalues, b.laplacian[0].eigenvalues, "binarised");
    close(a.weighted.eigenvalues, b.weighted.eigenvalues, "weighted");
    close(a.normalized.eigenvalues, b.normalized.eigenvalues, "normalized");
    EXPECT_NEAR(a.fiedler[0].fiedler_value, b.fiedler[0].fiedler_value, 1e-8);
    EXPECT_GT(b.weighted.eigenvalues[1], 1e-6);  // connected: a real algebraic connectivity was compared
}

TEST(SpectralSummary, FiedlerCorrelationsPairSamples) {
    Rng rng(9);
    std::vector<SpectralResult> samples;
    SpectralOptions options;
    options.fiedler_thresholds = {0.05};
    options.laplacian_thresholds = {};
    std::vector<double> fiedler, variance;
    for (int n = 0; n < 6; ++n) {
        samples.push_back(analyze_spectral(testing::sample_of({testing::random_causal(16, rng, 0.3 * n)}), options));
        fiedler.push_back(samples.back().layers[0].fiedler[0].fiedler_value);
        variance.push_back(*samples.back().layers[0].fiedler[0].degree_variance);
    }
    const nlohmann::json j = fiedler_correlations(samples);
    const Correlation expected = pearson(fiedler, variance);
    const nlohmann::json& entry = j["layers"][0]["thresholds"][0]["degree_variance"];
    EXPECT_EQ(entry["n"].get<int>(), 6);
    EXPECT_NEAR(entry["r"].get<double>(), expected.r, 1e-15);
    EXPECT_NEAR(entry["p"].get<double>(), expected.p, 1e-15);
    EXPECT_NEAR(j["overall"][0]["degree_variance"]["mean_r"].get<double>(), expected.r, 1e-15);
    // Column 0 receives every row in every sample: star-likeness is constant, r undefined (null).
    EXPECT_TRUE(j["layers"][0]["thresholds"][0]["star_likeness"]["r"].is_null());
}

}  // namespace
}  // namespace sinklab::analysis
