// Powers of causal attention: the closed forms of ANALYSIS.md section 7.3 / 8.8, and an independent
// numpy oracle (tests/oracle/analysis_diffusion.py) on random attention.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "analysis/diffusion.h"
#include "analysis/results.h"
#include "attention_fixtures.h"
#include "core/error.h"

namespace sinklab::analysis {
namespace {

using testing::harmonic;

Eigen::MatrixXd matrix_power(const Eigen::MatrixXd& a, int k) {
    Eigen::MatrixXd p = Eigen::MatrixXd::Identity(a.rows(), a.cols());
    for (int i = 0; i < k; ++i) p = a * p;
    return p;
}

TEST(DiffusionClosedForm, TableOfUniformPowerMass) {
    // ANALYSIS.md section 7.3, printed to 6 decimals.
    struct Row {
        int T;
        double s[5];
    };
    const Row table[] = {
        {8, {0.339732, 0.557136, 0.842375, 0.987278, 0.999947}},
        {12, {0.258601, 0.466454, 0.787367, 0.980813, 0.999916}},
        {16, {0.211296, 0.406677, 0.744173, 0.974792, 0.999886}},
        {32, {0.126828, 0.282587, 0.630411, 0.953925, 0.999767}},
        {48, {0.092892, 0.224012, 0.561012, 0.936591, 0.999649}},
        {128, {0.042446, 0.121704, 0.399779, 0.875549, 0.999081}},
    };
    const int powers[] = {1, 2, 4, 8, 16};
    for (const Row& row : table)
        for (int i = 0; i < 5; ++i)
            EXPECT_NEAR(uniform_power_mass(row.T, powers[i]), row.s[i], 5e-7) << "T=" << row.T << " k=" << powers[i];
}

TEST(DiffusionClosedForm, FirstPowersAreHarmonicNumbers) {
    for (int T : {5, 12, 40}) {
        const double h1 = harmonic(T), h2 = harmonic(T, 2);
        EXPECT_NEAR(uniform_power_mass(T, 1), h1 / T, 1e-14);
        EXPECT_NEAR(uniform_power_mass(T, 2), (h1 * h1 + h2) / (2.0 * T), 1e-14);
    }
}

TEST(DiffusionClosedForm, MassLevelsOfUniformAttention) {
    struct Row {
        int T, k05, k09;
    };
    for (const Row& row : {Row{8, 2, 5}, Row{16, 3, 6}, Row{32, 4, 7}, Row{48, 4, 8}, Row{128, 5, 9}}) {
        const DiffusionResult r = analyze_diffusion(testing::sample_of({uniform_causal_attention(row.T)}));
        const DiffusionView& v = r.layers[0].all_rows;
        ASSERT_EQ(v.levels.size(), 2u);
        EXPECT_EQ(v.levels[0].k, row.k05) << "T=" << row.T;
        EXPECT_EQ(v.levels[0].baseline_k, row.k05) << "T=" << row.T;
        EXPECT_EQ(v.levels[1].k, row.k09) << "T=" << row.T;
        EXPECT_EQ(v.levels[1].baseline_k, row.k09) << "T=" << row.T;
    }
}

TEST(DiffusionClosedForm, LazyWalk) {
    EXPECT_NEAR(uniform_lazy_power_mass(12, 8), 0.7448966772, 1e-10);
    const Eigen::MatrixXd u = uniform_causal_attention(12);
    const Eigen::MatrixXd lazy = 0.5 * (Eigen::MatrixXd::Identity(12, 12) + u);
    for (int k = 0; k <= 16; ++k)
        EXPECT_NEAR(uniform_lazy_power_mass(12, k), matrix_power(lazy, k).col(0).mean(), 1e-14) << "k=" << k;
}

TEST(DiffusionClosedForm, EntriesAndColumnSumsMatchRepeatedProducts) {
    const int T = 12;
    const Eigen::MatrixXd u = uniform_causal_attention(T);
    double previous = 0.0;
    for (int k = 1; k <= 16; ++k) {
        const Eigen::MatrixXd uk = matrix_power(u, k);
        EXPECT_LE((uniform_causal_power(T, k) - uk).cwiseAbs().maxCoeff(), 1e-14) << "k=" << k;
        const std::vector<double> sums = uniform_column_sums(T, k);
        for (int j = 0; j < T; ++j) {
            EXPECT_NEAR(sums[j], uk.col(j).sum(), 1e-13) << "k=" << k << " j=" << j;
            if (j > 0) {
                EXPECT_LT(sums[j], sums[j - 1]) << "column sums strictly decrease, k=" << k;
            }
        }
        EXPECT_NEAR(uniform_power_mass(T, k), uk.col(0).mean(), 1e-14) << "k=" << k;
        // Row 0 (1-indexed row 1) of U^k is e_0 for every k.
        EXPECT_EQ(uk(0, 0), 1.0);
        EXPECT_EQ(uk.row(0).tail(T - 1).cwiseAbs().maxCoeff(), 0.0);
        EXPECT_GT(uniform_power_mass(T, k), previous) << "s_k is monotone in k";
        previous = uniform_power_mass(T, k);
    }
    const std::vector<double> k1 = uniform_column_sums(T, 1);
    for (int j = 0; j < T; ++j) EXPECT_NEAR(k1[j], harmonic(T) - harmonic(j), 1e-14);  // H_T - H_{j-1}, 1-indexed
}

TEST(DiffusionClosedForm, LargePowersApproachOne) {
    // 1 - s_k ~ (T - 1) / 2^(k+1).
    for (int T : {8, 32}) {
        const double predicted = (T - 1) / std::pow(2.0, 31);
        EXPECT_NEAR((1.0 - uniform_power_mass(T, 30)) / predicted, 1.0, 1e-3) << "T=" << T;
    }
}

TEST(Diffusion, UniformAttentionHasNoExcess) {
    const int T = 16, L = 4;
    const DiffusionResult r =
        analyze_diffusion(testing::sample_of(std::vector<Eigen::MatrixXd>(L, uniform_causal_attention(T))));
    ASSERT_EQ(r.layers.size(), static_cast<size_t>(L));
    for (const DiffusionLayer& layer : r.layers) {
        EXPECT_TRUE(layer.causal);
        ASSERT_TRUE(layer.mixing_rate.has_value());
        EXPECT_DOUBLE_EQ(*layer.mixing_rate, 0.5);  // max_{i>=1} 1/(i+1)
        for (const DiffusionView* v : {&layer.all_rows, &layer.from_row1}) {
            for (const PowerMass& p : v->power_mass) EXPECT_NEAR(p.excess, 0.0, 1e-13) << "k=" << p.k;
            EXPECT_NEAR(v->depth_mass, v->depth_baseline, 1e-13) << "layer " << layer.layer;
            EXPECT_NEAR(v->lazy_depth_mass, v->lazy_depth_baseline, 1e-13) << "layer " << layer.layer;
        }
        EXPECT_NEAR(layer.all_rows.depth_baseline, uniform_power_mass(T, layer.layer + 1), 1e-15);
        EXPECT_NEAR(layer.from_row1.power_mass[0].mass, mass_from_row1(uniform_power_mass(T, 1), T), 1e-14);
        for (const ColumnRouting& c : layer.all_rows.routing) {
            const std::vector<double> expected = uniform_column_sums(T, c.k);
            for (int j = 0; j < T; ++j) EXPECT_NEAR(c.column_sums[j], expected[j], 1e-13);
            EXPECT_NEAR(c.column0_share, expected[0] / T, 1e-14);
        }
    }
}

TEST(Diffusion, PerHeadAndJsonLabels) {
    Rng rng(7);
    const int T = 10;
    AttentionSample s;
    std::vector<Eigen::MatrixXd> heads = {testing::random_causal(T, rng, 0.5), testing::random_causal(T, rng)};
    s.attention = {0.5 * (heads[0] + heads[1])};
    s.heads = {heads};
    const DiffusionResult r = analyze_diffusion(s);
    ASSERT_EQ(r.layers[0].all_rows.head_power_mass.size(), 2u);
    const Eigen::MatrixXd h0 = matrix_power(heads[0], 4);
    EXPECT_NEAR(r.layers[0].all_rows.head_power_mass[0][2], h0.col(0).mean(), 1e-13);
    const nlohmann::json j = r.to_json();
    EXPECT_EQ(j["analysis"], "diffusion");
    EXPECT_EQ(j["layers"][0]["faithful"]["variant"], "faithful");
    EXPECT_EQ(j["layers"][0]["corrected"]["variant"], "corrected");
    EXPECT_TRUE(j["layers"][0]["corrected"].contains("mixing_rate"));
}

// A two-state chain [[1 - a, a], [b, 1 - b]]: pi = (b, a) / (a + b), lambda_2 = 1 - a - b.
TEST(Diffusion, NonCausalLayerReportsItsStationaryDistribution) {
    const double a = 0.5, b = 0.3;
    Eigen::MatrixXd chain(2, 2);
    chain << 1 - a, a, b, 1 - b;
    AttentionSample s = testing::sample_of({chain});
    s.special_tokens = {{"[CLS]", 0}, {"[SEP]", 1}};
    const DiffusionResult r = analyze_diffusion(s);
    const DiffusionLayer& layer = r.layers[0];
    EXPECT_FALSE(layer.causal);
    ASSERT_TRUE(layer.stationary && layer.mixing_rate);
    EXPECT_NEAR(layer.stationary->distribution[0], b / (a + b), 1e-12);
    EXPECT_NEAR(layer.stationary->distribution[1], a / (a + b), 1e-12);
    ASSERT_EQ(layer.stationary->special_tokens.size(), 2u);
    EXPECT_EQ(layer.stationary->special_tokens[1].first.name, "[SEP]");
    EXPECT_NEAR(layer.stationary->special_tokens[1].second, a / (a + b), 1e-12);
    EXPECT_NEAR(*layer.mixing_rate, 1 - a - b, 1e-12);
    // A^k -> 1 pi^T: the mass on token 0 tends to pi_0; the baseline is uniform attention's 1/T
    EXPECT_NEAR(layer.all_rows.power_mass.back().mass, b / (a + b), 1e-6);
    for (const PowerMass& p : layer.all_rows.power_mass) EXPECT_DOUBLE_EQ(p.baseline, 0.5);
    const nlohmann::json j = r.to_json()["layers"][0];
    EXPECT_NE(j["graph"].get<std::string>().find("not a DAG"), std::string::npos);
    EXPECT_EQ(j["stationary"]["special_tokens"][0]["token"], "[CLS]");
    EXPECT_EQ(j["corrected"]["rows"], "all");
    EXPECT_EQ(j["faithful"]["baseline_kind"], "uniform bidirectional attention, 1/T");
}

TEST(Diffusion, UniformBidirectionalAttentionHasNoExcessAndUniformStationaryMass) {
    const int T = 12;
    AttentionSample s = testing::sample_of({Eigen::MatrixXd::Constant(T, T, 1.0 / T)});
    s.special_tokens = {{"[CLS]", 0}, {"[SEP]", T - 1}};
    const DiffusionLayer layer = analyze_diffusion(s).layers[0];
    for (const DiffusionView* view : {&layer.all_rows, &layer.from_row1}) {
        for (const PowerMass& p : view->power_mass) {
            EXPECT_NEAR(p.mass, 1.0 / T, 1e-14);
            EXPECT_NEAR(p.excess, 0.0, 1e-14);
        }
        EXPECT_NEAR(view->depth_mass - view->depth_baseline, 0.0, 1e-14);
        EXPECT_NEAR(view->lazy_depth_mass - view->lazy_depth_baseline, 0.0, 1e-14);
    }
    for (const auto& [token, mass] : layer.stationary->special_tokens) EXPECT_NEAR(mass, 1.0 / T, 1e-12) << token.name;
    EXPECT_NEAR(*layer.mixing_rate, 0.0, 1e-12);  // rank one: A^k = A from k = 1
}

TEST(Diffusion, SpecialTokenOutsideTheSampleIsRejected) {
    AttentionSample s = testing::sample_of({Eigen::MatrixXd::Constant(4, 4, 0.25)});
    s.special_tokens = {{"[SEP]", 4}};
    EXPECT_THROW(analyze_diffusion(s), Error);
}

TEST(Diffusion, RejectsAttentionThatIsNotRowStochastic) {
    Eigen::MatrixXd a = uniform_causal_attention(5);
    a(3, 0) += 0.2;
    EXPECT_THROW(analyze_diffusion(testing::sample_of({a})), Error);
}

// ---- the numpy oracle ----

bool python_has_numpy() { return std::system("/usr/bin/python3 -c 'import numpy' > /dev/null 2>&1") == 0; }

TEST(DiffusionOracle, MatchesNumpyMatrixPowers) {
    if (!python_has_numpy()) GTEST_SKIP() << "/usr/bin/python3 with numpy is not available; oracle skipped";
    Rng rng(2024);
    const int T = 24;
    const std::vector<Eigen::MatrixXd> layers = {testing::random_causal(T, rng, 0.0), testing::random_causal(T, rng, 2.0),
                                                 uniform_causal_attention(T), testing::random_dense(T, rng)};
    const std::vector<int> powers = {1, 2, 4, 8, 16};

    const std::filesystem::path dir = std::filesystem::path(SINKLAB_BINARY_DIR) / "tests" / "analysis_oracle";
    std::filesystem::create_directories(dir);
    const std::filesystem::path in = dir / "diffusion_in.bin", out = dir / "diffusion_out.json";
    {
        std::ofstream f(in, std::ios::binary);
        f << nlohmann::json{{"tokens", T}, {"layers", layers.size()}, {"powers", powers}}.dump() << "\n";
        for (const Eigen::MatrixXd& a : layers) {
            const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm = a;
            f.write(reinterpret_cast<const char*>(rm.data()), static_cast<std::streamsize>(sizeof(double) * rm.size()));
        }
    }
    const std::string command = "/usr/bin/python3 " + std::string(SINKLAB_SOURCE_DIR) +
                                "/tests/oracle/analysis_diffusion.py " + in.string() + " " + out.string();
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    std::ifstream f(out);
    const nlohmann::json oracle = nlohmann::json::parse(f);

    DiffusionOptions options;
    options.powers = powers;
    const DiffusionResult r = analyze_diffusion(testing::sample_of(layers), options);
    ASSERT_EQ(oracle["layers"].size(), r.layers.size());
    for (size_t l = 0; l < r.layers.size(); ++l) {
        const nlohmann::json& o = oracle["layers"][l];
        const DiffusionLayer& layer = r.layers[l];
        for (size_t i = 0; i < powers.size(); ++i) {
            EXPECT_NEAR(layer.all_rows.power_mass[i].mass, o["power_mass"][i].get<double>(), 1e-10) << "layer " << l;
            EXPECT_NEAR(layer.from_row1.power_mass[i].mass, o["power_mass_from_row1"][i].get<double>(), 1e-10);
            EXPECT_NEAR(layer.all_rows.power_mass[i].baseline, o["baseline"][i].get<double>(), 1e-10);
            EXPECT_NEAR(layer.all_rows.power_mass[i].excess, o["excess"][i].get<double>(), 1e-10);
            for (int j = 0; j < T; ++j)
                EXPECT_NEAR(layer.all_rows.routing[i].column_sums[j], o["column_sums"][i][j].get<double>(), 1e-10)
                    << "layer " << l << " k=" << powers[i] << " column " << j;
        }
        EXPECT_NEAR(layer.all_rows.depth_mass, o["depth_mass"].get<double>(), 1e-10) << "layer " << l;
        EXPECT_NEAR(layer.all_rows.lazy_depth_mass, o["lazy_depth_mass"].get<double>(), 1e-10) << "layer " << l;
        EXPECT_EQ(o.contains("stationary"), layer.stationary.has_value()) << "layer " << l;
        if (layer.stationary) {
            for (int j = 0; j < T; ++j)
                EXPECT_NEAR(layer.stationary->distribution[j], o["stationary"][j].get<double>(), 1e-10) << "pi_" << j;
            EXPECT_NEAR(*layer.mixing_rate, o["second_modulus"].get<double>(), 1e-10) << "|lambda_2|";
        }
    }
}

TEST(DiffusionAggregate, MeanAndStdOverSamples) {
    Rng rng(11);
    std::vector<nlohmann::json> samples;
    std::vector<double> s1;
    for (int n = 0; n < 3; ++n) {
        const DiffusionResult r = analyze_diffusion(testing::sample_of({testing::random_causal(8, rng, 1.0)}));
        s1.push_back(r.layers[0].all_rows.power_mass[0].mass);
        samples.push_back(r.to_json());
    }
    const nlohmann::json agg = aggregate_layers(samples);
    const nlohmann::json& m = agg["layers"][0]["faithful"]["power_mass"][0]["mass"];
    const double mean = (s1[0] + s1[1] + s1[2]) / 3.0;
    double var = 0.0;
    for (double v : s1) var += (v - mean) * (v - mean) / 3.0;
    EXPECT_NEAR(m["mean"].get<double>(), mean, 1e-15);
    EXPECT_NEAR(m["std"].get<double>(), std::sqrt(var), 1e-15);
    EXPECT_EQ(m["n"].get<int>(), 3);
    EXPECT_EQ(agg["layers"][0]["faithful"]["variant"], "faithful");
    EXPECT_EQ(agg["layers"][0]["faithful"]["power_mass"][0]["k"], 1);
}

}  // namespace
}  // namespace sinklab::analysis
