// The probe's two attention paths give the same numbers: every metric of the blockwise path
// (column statistics accumulated inside the kernel) within 1e-5 of the materialised path (read from
// the (B, NH, T, T) weights), at T = 512, for every attention design the blockwise kernel computes.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>
#include <vector>

#include "attention/blockwise_attention.h"
#include "core/error.h"
#include "probe/probe.h"
#include "probe_test_models.h"

namespace sinklab {
namespace {

using test::expect_close;

constexpr int kT = 512;
constexpr double kTol = 1e-5;

void expect_same_matrix(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b,
                        const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a[i].size(), b[i].size()) << what;
        for (size_t j = 0; j < a[i].size(); ++j) expect_close(a[i][j], b[i][j], kTol, what + fmt::format("[{}][{}]", i, j));
    }
}

void expect_same_entry(const ActivationEntry& a, const ActivationEntry& b, const std::string& what) {
    EXPECT_EQ(a.sample, b.sample) << what;
    EXPECT_EQ(a.position, b.position) << what;
    EXPECT_EQ(a.dim, b.dim) << what;
    expect_close(a.value, b.value, kTol, what);
}

void expect_same_results(const ProbeResult& blockwise, const ProbeResult& materialised) {
    ASSERT_EQ(blockwise.path, AttentionPath::blockwise);
    ASSERT_EQ(materialised.path, AttentionPath::materialised);
    const ProbeResult& a = blockwise;
    const ProbeResult& b = materialised;
    ASSERT_EQ(a.alpha.size(), b.alpha.size());
    for (size_t k = 0; k < a.alpha.size(); ++k) {
        expect_same_matrix(a.alpha[k], b.alpha[k], fmt::format("alpha_{}", k + 1));
        EXPECT_EQ(a.sink_percent[k], b.sink_percent[k]) << "Sink_" << k + 1;
    }
    expect_same_matrix(a.sink_percent_per_layer, b.sink_percent_per_layer, "sink_k_per_layer");
    expect_same_matrix(a.entropy, b.entropy, "entropy");
    ASSERT_EQ(a.activations.size(), b.activations.size());
    for (size_t l = 0; l < a.activations.size(); ++l) {
        const LayerActivations &x = a.activations[l], &y = b.activations[l];
        const std::string layer = fmt::format("layer {}", l);
        expect_close(x.median, y.median, kTol, layer + " median");
        ASSERT_EQ(x.top.size(), y.top.size());
        for (size_t i = 0; i < x.top.size(); ++i) expect_same_entry(x.top[i], y.top[i], layer + " top");
        EXPECT_EQ(x.massive_count, y.massive_count) << layer;
    }
    expect_same_matrix({a.hidden_norm_ratio}, {b.hidden_norm_ratio}, "hidden_norm_ratio");
    expect_same_matrix(a.key_norm_ratio, b.key_norm_ratio, "key_norm_ratio");
    expect_same_matrix(a.value_norm_ratio, b.value_norm_ratio, "value_norm_ratio");
    expect_same_matrix(a.cos_query_first_key, b.cos_query_first_key, "cos_query_first_key");
    expect_same_matrix(a.cos_query_other_keys, b.cos_query_other_keys, "cos_query_other_keys");
    ASSERT_TRUE(a.intervention && b.intervention);
    expect_close(a.intervention->loss_clean, b.intervention->loss_clean, kTol, "loss");
    expect_close(a.intervention->loss_intervened, b.intervention->loss_intervened, kTol, "loss with the intervention");
}

// Both paths on random ids cut into windows as natural text is, so that the losses (of the next ids)
// of an intervention are compared as well.
void expect_paths_agree(Transformer& model) {
    const ProbeSamples ids = random_samples(model.config().vocab_size, 2 * (kT + 1), 1, std::nullopt, 11);
    const ProbeSamples samples = natural_samples(ids.tokens, kT, 2, std::nullopt, "random ids");
    ProbeOptions options;
    options.intervention = InterventionSpec{InterventionMode::mean, 1, {0, 3, 17}};
    options.path = AttentionPathChoice::blockwise;
    const ProbeResult blockwise = run_probe(model, samples, options);
    options.path = AttentionPathChoice::materialised;
    const ProbeResult materialised = run_probe(model, samples, options);
    expect_same_results(blockwise, materialised);
}

TEST(ProbeBlockwise, EqualsMaterialisedForEachPositionKind) {
    for (PositionKind pe : {PositionKind::none, PositionKind::rope, PositionKind::learned, PositionKind::sinusoidal}) {
        SCOPED_TRACE(to_string(pe));
        auto model = test::random_model(test::small_config(pe));
        expect_paths_agree(*model);
    }
}

TEST(ProbeBlockwise, EqualsMaterialisedWithWindowPrefixAndSoftcap) {
    ModelConfig c = test::small_config(PositionKind::rope);
    c.window = 100;
    c.layer_windows = {100, 0, 37};  // local and global layers, as Gemma 2
    c.prefix = 24;
    {
        SCOPED_TRACE("windows and prefix");
        auto model = test::random_model(c);
        expect_paths_agree(*model);
    }
    c.attn_logit_softcap = 5.0f;
    {
        SCOPED_TRACE("logit soft-capping");
        auto model = test::random_model(c);
        expect_paths_agree(*model);
    }
}

// Every design the blockwise kernel computes is compared (sink_token and the gated designs are
// the model's around a softmax kernel); the others must fall back to the materialised path by
// themselves and refuse a forced blockwise path by name. Designs with a slot report Sink_*.
TEST(ProbeBlockwise, EveryAttentionDesignEqualsOrFallsBack) {
    std::vector<std::string> compared, fall_back;
    for (const std::string& name : AttentionSpec::known_names()) {
        SCOPED_TRACE(name);
        ModelConfig c = test::small_config(PositionKind::rope);
        c.attention = AttentionSpec::parse(name);
        const std::unique_ptr<Transformer> model = test::random_model(c);
        if (blockwise_attention_supports(c.attention)) {
            expect_paths_agree(*model);
            compared.push_back(name);
            continue;
        }
        EXPECT_EQ(choose_attention_path(c, AttentionPathChoice::automatic), AttentionPath::materialised);
        try {
            choose_attention_path(c, AttentionPathChoice::blockwise);
            ADD_FAILURE() << "blockwise accepted for " << name;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
        }
        // the automatic path probes it (the materialised weights read through the design's proxy)
        const ProbeSamples samples = random_samples(c.vocab_size, 64, 2, std::nullopt, 5);
        const ProbeResult r = run_probe(*model, samples, ProbeOptions{});
        for (const auto& layer : r.alpha[0])
            for (double a : layer) EXPECT_TRUE(a >= 0.0 && a <= 1.0 + 1e-6) << "alpha_1 " << a;
        EXPECT_EQ(r.sink_star.has_value(), c.attention.has_slot());
        for (const auto& layer : r.alpha_star)
            for (double a : layer) EXPECT_TRUE(a >= 0.0 && a <= 1.0 + 1e-6) << "alpha_* " << a;
        fall_back.push_back(name);
    }
    EXPECT_FALSE(compared.empty());
    std::string note = "compared blockwise = materialised:";
    for (const auto& n : compared) note += " " + n;
    note += "\nmaterialised only (the kernel computes softmax designs):";
    for (const auto& n : fall_back) note += " " + n;
    RecordProperty("designs", note);
    std::printf("%s\n", note.c_str());
}

}  // namespace
}  // namespace sinklab
