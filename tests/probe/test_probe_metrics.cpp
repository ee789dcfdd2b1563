// The metric accumulators on hand-made taps with known answers, the intervention, the maps and the
// JSON/table output.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "attention/blockwise_attention.h"
#include "attention/sink_scores.h"
#include "core/error.h"
#include "core/rng.h"
#include "probe/attention_maps.h"
#include "probe/probe.h"
#include "probe/probe_report.h"
#include "probe_test_models.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;

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

TEST(ProbeMetrics, SinkScoresFromColumnSumsMatchTheWeightsReader) {
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

TEST(ProbeMetrics, SlotScoresFromSlotSumsMatchTheWeightsReader) {
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

TEST(ProbeMetrics, MassiveActivationsAboveBothThresholds) {
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

TEST(ProbeMetrics, MassiveNeedsThousandTimesTheMedian) {
    // |h| = 150 > 100, but the median is 1: 150 < 1000 x 1, not massive
    std::vector<float> h(16, 1.0f);
    h[5] = 150.0f;
    MassiveActivationAccumulator acc(1, 4);
    acc.add(0, h.data(), 1, 4, 0);
    EXPECT_EQ(acc.layer(0).massive_count, 0);
    EXPECT_FLOAT_EQ(acc.layer(0).top[0].value, 150.0f);
}

TEST(ProbeMetrics, NormRatioOfTheFirstTokenAgainstTheRest) {
    // one sample, T = 3, one group of width 2: norms 6, 1, 3 -> 6 / 2
    const std::vector<float> x = {6, 0, 0, 1, 3, 0};
    NormRatioAccumulator acc(1, 1);
    acc.add(0, x.data(), 2, 2, 1, 3);
    EXPECT_DOUBLE_EQ(acc.ratio()[0][0], 3.0);
}

TEST(ProbeMetrics, GeometryOfQueriesAgainstTheFirstKeyAndTheRest) {
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

TEST(ProbeIntervention, MeanOverOneSampleChangesNothingAndZeroDoes) {
    auto model = test::random_model(test::small_config(PositionKind::rope));
    const ProbeSamples ids = random_samples(model->config().vocab_size, 200, 1, std::nullopt, 2);
    const ProbeSamples one = natural_samples(ids.tokens, 32, 1, std::nullopt, "ids");
    ProbeOptions options;
    options.intervention = InterventionSpec{InterventionMode::mean, 1, {0, 5, 9}};
    const ProbeResult mean = run_probe(*model, one, options);
    ASSERT_TRUE(mean.intervention);
    EXPECT_EQ(mean.intervention->dims_rule, "given");
    EXPECT_DOUBLE_EQ(mean.intervention->loss_intervened, mean.intervention->loss_clean);
    options.intervention->mode = InterventionMode::zero;
    const ProbeResult zero = run_probe(*model, one, options);
    EXPECT_DOUBLE_EQ(zero.intervention->loss_clean, mean.intervention->loss_clean);
    EXPECT_GT(std::abs(zero.intervention->loss_intervened - zero.intervention->loss_clean), 1e-4);
}

TEST(ProbeIntervention, AutomaticDimsAreTheMassiveOnes) {
    auto model = test::token_one_sink_model();
    model->param("embed.positions")[0] = 2000.0f;  // position 1, dim 0: massive in every layer
    const ProbeSamples ids = random_samples(model->config().vocab_size, 400, 1, std::nullopt, 2);
    const ProbeSamples samples = natural_samples(ids.tokens, 32, 4, std::nullopt, "ids");
    ProbeOptions options;
    options.metrics = {Metric::sink};
    options.intervention = InterventionSpec{InterventionMode::zero, 1, {}};
    const ProbeResult r = run_probe(*model, samples, options);
    EXPECT_TRUE(r.has(Metric::massive));  // automatic dims need it
    EXPECT_EQ(r.intervention->dims, std::vector<int>{0});
    EXPECT_EQ(r.intervention->dims_rule, "massive");
    EXPECT_EQ(r.activations[1].massive_positions, (std::map<int, long>{{1, 4}}));

    auto plain = test::random_model(test::small_config(PositionKind::rope));
    const ProbeSamples plain_samples = natural_samples(ids.tokens, 32, 2, std::nullopt, "ids");
    const ProbeResult top = run_probe(*plain, plain_samples, options);
    EXPECT_EQ(top.intervention->dims_rule, "top");  // nothing crosses 100: the top-3 entries' dims
    EXPECT_FALSE(top.intervention->dims.empty());
}

TEST(ProbeIntervention, NeedsNaturalInputAndAValidLayer) {
    auto model = test::random_model(test::small_config(PositionKind::rope));
    const ProbeSamples random = random_samples(model->config().vocab_size, 16, 2, std::nullopt, 2);
    ProbeOptions options;
    options.intervention = InterventionSpec{InterventionMode::zero, 0, {1}};
    EXPECT_THROW(run_probe(*model, random, options), Error);
    const ProbeSamples natural = natural_samples(random.tokens, 8, 2, std::nullopt, "ids");
    options.intervention->layer = 3;
    EXPECT_THROW(run_probe(*model, natural, options), Error);
    options.intervention->layer = 0;
    options.intervention->dims = {32};
    EXPECT_THROW(run_probe(*model, natural, options), Error);
}

fs::path scratch_dir(const std::string& name) {
    const fs::path dir = fs::path(SINKLAB_BINARY_DIR) / "probe_scratch" / (name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    return dir;
}

TEST(ProbeMaps, OneFilePerHeadAndLayerMean) {
    auto model = test::random_model(test::small_config(PositionKind::rope));
    const ProbeSamples s = random_samples(model->config().vocab_size, 40, 1, std::nullopt, 1);
    const fs::path dir = scratch_dir("maps");
    const auto files = write_attention_maps(*model, s.tokens.data(), 40, dir, AttentionMapOptions{});
    EXPECT_EQ(files.size(), 3u * (4 + 1));
    EXPECT_EQ(files.front(), "layer00_head00.png");
    EXPECT_EQ(files[4], "layer00_head-avg.png");
    for (const auto& f : files) EXPECT_TRUE(fs::is_regular_file(dir / f)) << f;
    fs::remove_all(dir);
}

TEST(ProbeMaps, LongSequencesArePooledAndSaySo) {
    ModelConfig c = test::small_config(PositionKind::none);
    c.n_layers = 1;
    c.n_heads = c.n_kv_heads = 1;
    auto model = test::random_model(c);
    const int T = 2100;  // pooled by ceil(2100 / 1024) = 3
    const ProbeSamples s = random_samples(c.vocab_size, T, 1, std::nullopt, 1);
    const fs::path dir = scratch_dir("maps_pooled");
    AttentionMapOptions options;
    options.scale = ScaleKind::log;
    const auto files = write_attention_maps(*model, s.tokens.data(), T, dir, options);
    EXPECT_EQ(files, (std::vector<std::string>{"layer00_head00_pool3.png", "layer00_head-avg_pool3.png"}));
    options.max_layer_bytes = 1e6;
    EXPECT_THROW(write_attention_maps(*model, s.tokens.data(), T, dir, options), Error);
    fs::remove_all(dir);
}

TEST(ProbeReport, JsonHasTheDocumentedKeys) {
    auto model = test::random_model(test::small_config(PositionKind::rope));
    const ProbeSamples s = random_samples(model->config().vocab_size, 24, 3, std::nullopt, 1);
    ProbeOptions options;
    options.positions = 4;
    const ProbeResult r = run_probe(*model, s, options);
    const nlohmann::json j = probe_result_json(r);
    EXPECT_EQ(j["schema"], kProbeSchema);
    ASSERT_EQ(j["alpha_1"].size(), 3u);
    EXPECT_EQ(j["alpha_1"][0].size(), 4u);
    EXPECT_EQ(j["sink_k"].size(), 4u);
    EXPECT_EQ(j["alpha_k"].size(), 4u);
    EXPECT_EQ(j["massive_activations"]["layers"].size(), 3u);
    EXPECT_EQ(j["massive_activations"]["layers"][0]["top"].size(), 3u);
    EXPECT_EQ(j["value_norm_ratio"][0].size(), 2u);  // kv heads
    EXPECT_EQ(j["cos_query_first_key"][2].size(), 4u);
    for (const char* key : {"alpha_1", "sink_k", "massive_activations", "entropy", "hidden_norm_ratio",
                            "key_norm_ratio", "value_norm_ratio", "cos_query_first_key", "cos_query_other_keys"}) {
        EXPECT_TRUE(j.contains(key)) << key;
        EXPECT_TRUE(j["definitions"].contains(key)) << key;
    }
    const std::string table = probe_table(r);
    EXPECT_NE(table.find("Sink_1 %"), std::string::npos);
    EXPECT_NE(table.find("top/median"), std::string::npos);
}

}  // namespace
}  // namespace sinklab
