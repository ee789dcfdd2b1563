// The probe on gpt-oss's learned sinks (tests/fixtures/gpt_oss, sliding layers 0 and 2 over 8 keys,
// full layers 1 and 3) against the attention rows of the fixture's independent PyTorch reference
// ([token columns..., sink], see tests/fixtures/PROVENANCE.md): alpha_1 and alpha_* per layer and
// head are the means of the reference's token-1 and sink columns over the queries, Sink_1 and Sink_*
// per layer the share of heads above eps, and layer_groups pools the sliding and the full layers
// apart. Tolerance: 1e-5 on the means (the fixture's rows match within 1e-4 per entry, most far
// closer); eps lies midway between two reference values at least 1e-3 apart, so no count can flip.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "../model/hf_test_support.h"
#include "model/hf_loader.h"
#include "probe/probe.h"
#include "probe_test_models.h"

namespace sinklab {
namespace {

constexpr double kTol = 1e-5;

TEST(ProbeGptOss, LearnedSinksAndTokenOneMatchTheReferenceWithSlidingAndFullLayersApart) {
    const auto model = load_model(test::fixture("gpt_oss"));
    const test::FixtureReference ref =
        test::read_fixture_reference(SafetensorsFile(test::fixture("gpt_oss/reference.safetensors")));
    const ModelConfig& c = model->config();
    const int L = c.n_layers, H = c.n_heads, T = static_cast<int>(ref.input_ids.size());
    ASSERT_EQ(ref.attentions.numel(), static_cast<size_t>(L) * H * T * (T + 1));

    // the reference's alpha_1 and alpha_*: column 0 and column T (the sink) averaged over the T queries
    std::vector<std::vector<double>> alpha_1(L, std::vector<double>(H)), alpha_star(L, std::vector<double>(H));
    std::vector<double> all;
    for (int l = 0; l < L; ++l)
        for (int h = 0; h < H; ++h) {
            double first = 0.0, sink = 0.0;
            for (int t = 0; t < T; ++t) {
                const float* row = ref.attentions.data() + ((static_cast<size_t>(l) * H + h) * T + t) * (T + 1);
                first += row[0];
                sink += row[T];
            }
            alpha_1[l][h] = first / T;
            alpha_star[l][h] = sink / T;
            all.push_back(alpha_1[l][h]);
            all.push_back(alpha_star[l][h]);
        }
    std::sort(all.begin(), all.end());
    const size_t mid = all.size() / 2;
    ASSERT_GT(all[mid] - all[mid - 1], 1e-3) << "no clear eps between the reference's values";
    ProbeOptions options;
    options.metrics = {Metric::sink};
    options.positions = 1;
    options.eps = static_cast<float>((all[mid - 1] + all[mid]) / 2);

    ProbeSamples samples;
    samples.N = 1;
    samples.T = T;
    samples.tokens = ref.input_ids;
    samples.description = "the fixture's input_ids";
    const ProbeResult r = run_probe(*model, samples, options);

    EXPECT_EQ(r.layer_windows, (std::vector<int>{8, 0, 8, 0}));
    ASSERT_TRUE(r.sink_star.has_value());
    std::vector<double> sink_1(L), sink_star(L);
    for (int l = 0; l < L; ++l) {
        int above_1 = 0, above_star = 0;
        for (int h = 0; h < H; ++h) {
            EXPECT_NEAR(r.alpha[0][l][h], alpha_1[l][h], kTol) << "alpha_1 of layer " << l << " head " << h;
            EXPECT_NEAR(r.alpha_star[l][h], alpha_star[l][h], kTol) << "alpha_* of layer " << l << " head " << h;
            above_1 += alpha_1[l][h] > options.eps;
            above_star += alpha_star[l][h] > options.eps;
        }
        sink_1[l] = 100.0 * above_1 / H;
        sink_star[l] = 100.0 * above_star / H;
        EXPECT_DOUBLE_EQ(r.sink_percent_per_layer[l][0], sink_1[l]) << "Sink_1 of layer " << l;
        EXPECT_DOUBLE_EQ(r.sink_star_per_layer[l], sink_star[l]) << "Sink_* of layer " << l;
    }

    ASSERT_EQ(r.layer_groups.size(), 2u);
    const LayerGroup& sliding = r.layer_groups[0];
    const LayerGroup& full = r.layer_groups[1];
    EXPECT_EQ(sliding.window, 8);
    EXPECT_EQ(sliding.layers, (std::vector<int>{0, 2}));
    EXPECT_EQ(full.window, 0);
    EXPECT_EQ(full.layers, (std::vector<int>{1, 3}));
    for (const LayerGroup* g : {&sliding, &full}) {
        const int a = g->layers[0], b = g->layers[1];
        double mean_1 = 0.0, mean_star = 0.0;
        for (int h = 0; h < H; ++h) {
            mean_1 += (alpha_1[a][h] + alpha_1[b][h]) / (2.0 * H);
            mean_star += (alpha_star[a][h] + alpha_star[b][h]) / (2.0 * H);
        }
        EXPECT_NEAR(g->alpha_1, mean_1, kTol) << "alpha_1 of the layers of window " << g->window;
        EXPECT_NEAR(*g->alpha_star, mean_star, kTol) << "alpha_* of the layers of window " << g->window;
        EXPECT_DOUBLE_EQ(g->sink_1, (sink_1[a] + sink_1[b]) / 2) << "Sink_1 of the layers of window " << g->window;
        EXPECT_DOUBLE_EQ(*g->sink_star, (sink_star[a] + sink_star[b]) / 2)
            << "Sink_* of the layers of window " << g->window;
    }
}

TEST(ProbeGptOss, ModelsWhoseLayersShareOneWindowHaveNoLayerGroups) {
    ModelConfig c = test::small_config(PositionKind::rope);
    c.window = 4;
    const auto model = test::random_model(c);
    ProbeSamples samples = random_samples(c.vocab_size, 12, 2, std::nullopt, 5);
    ProbeOptions options;
    options.metrics = {Metric::sink};
    const ProbeResult r = run_probe(*model, samples, options);
    EXPECT_EQ(r.layer_windows, (std::vector<int>{4, 4, 4}));
    EXPECT_TRUE(r.layer_groups.empty());
}

}  // namespace
}  // namespace sinklab
