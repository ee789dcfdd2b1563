// The intervention, the maps and the JSON/table output (the metric accumulators themselves are
// tested in tests/metrics).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "probe/attention_maps.h"
#include "probe/probe.h"
#include "probe/probe_report.h"
#include "probe_test_models.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;

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
