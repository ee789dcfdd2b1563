// The over-mixing test's exact cases: causality (a change never reaches earlier positions),
// identical inputs, a model whose heads attend only to token 1 (no mixing at all) and mask-first:1
// on it (uniform rows, closed form, and mixing again); the statistics and the perturbation sets.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "model/sink_interventions.h"
#include "perturb/over_mixing.h"
#include "perturb/perturbation.h"
#include "perturb_test_models.h"

namespace sinklab {
namespace {

std::vector<int32_t> random_tokens(int n, int vocab, uint64_t seed, int first = 0) {
    Rng rng(seed);
    std::vector<int32_t> ids(n);
    for (auto& id : ids) id = first + static_cast<int32_t>(rng.below(vocab - first));
    return ids;
}

// One perturbation of `window` at 0-indexed `position` by `token`.
PerturbationSet single(const std::vector<int32_t>& window, int position, int32_t token) {
    std::vector<int32_t> perturbed = window;
    perturbed[position] = token;
    return prompt_perturbation(window, perturbed, position, "test");
}

TEST(OverMixing, ChangesNeverReachEarlierPositions) {
    const int T = 40;
    for (const char* design : {"softmax", "sink_token", "kv_bias", "gated", "sigmoid"}) {
        for (PositionKind pe : {PositionKind::rope, PositionKind::learned}) {
            SCOPED_TRACE(std::string(design) + (pe == PositionKind::rope ? " rope" : " learned"));
            auto model = test::random_model(test::mixing_config(pe, design), 5);
            const std::vector<int32_t> window = random_tokens(T, 64, 3);
            for (int position : {T - 1, 17}) {
                const OverMixingResult r =
                    measure_over_mixing(*model, single(window, position, (window[position] + 1) % 64), {});
                for (int l = 0; l < r.layers; ++l) {
                    for (int t = 0; t < position; ++t)
                        ASSERT_EQ(r.residual_by_position[l][t], 0.0) << "layer " << l << " position " << t + 1;
                    EXPECT_GT(r.residual_by_position[l][position], 0.0) << "layer " << l;
                }
                if (position == T - 1) {  // nothing after the last token to measure
                    EXPECT_EQ(r.residual[0].count, 0);
                    EXPECT_TRUE(std::isnan(r.residual[0].mean));
                } else {
                    EXPECT_EQ(r.residual[0].count, T - 1 - position);
                    EXPECT_GT(r.residual.back().mean, 0.0);
                    EXPECT_EQ(r.head[0][0].count, T - 1 - position);
                }
            }
        }
    }
}

TEST(OverMixing, IdenticalInputsChangeNothing) {
    auto model = test::random_model(test::mixing_config(PositionKind::rope), 5);
    const std::vector<int32_t> window = random_tokens(32, 64, 4);
    const OverMixingResult r = measure_over_mixing(*model, prompt_perturbation(window, window, 5, "same"), {});
    for (int l = 0; l < r.layers; ++l) {
        EXPECT_EQ(r.residual[l].mean, 0.0);
        EXPECT_EQ(r.residual[l].p90, 0.0);
        EXPECT_EQ(r.residual[l].count, 32 - 6);
        EXPECT_EQ(r.heads_pooled[l].mean, 0.0);
        EXPECT_EQ(r.heads_pooled[l].p90, 0.0);
        for (double v : r.residual_by_position[l]) EXPECT_EQ(v, 0.0);
    }
}

TEST(OverMixing, HeadsThatAttendOnlyToTokenOneMixNothing) {
    auto model = test::first_token_only_model();
    const int T = 48;
    const std::vector<int32_t> window = random_tokens(T, 16, 6);
    for (int position : {1, 20, 46}) {
        const OverMixingResult r = measure_over_mixing(*model, single(window, position, (window[position] + 3) % 16), {});
        for (int l = 0; l < r.layers; ++l) {
            for (int t = 0; t < T; ++t) {
                if (t != position) {
                    ASSERT_EQ(r.residual_by_position[l][t], 0.0) << "layer " << l << " position " << t + 1;
                }
            }
            EXPECT_GT(r.residual_by_position[l][position], 0.1) << "layer " << l;
            EXPECT_EQ(r.residual[l].mean, 0.0);
            EXPECT_EQ(r.residual[l].p90, 0.0);
            for (int h = 0; h < r.heads; ++h) EXPECT_EQ(r.head[l][h].p90, 0.0) << "layer " << l << " head " << h;
        }
    }
    // With token 1 hidden (mask-first:1), the same heads average over the other tokens: the change spreads.
    const OverMixingResult masked = measure_over_mixing(*model, single(window, 20, (window[20] + 3) % 16),
                                                        {.first_keys = {.hidden = 1}});
    for (int l = 0; l < masked.layers; ++l) {
        EXPECT_GT(masked.residual[l].mean, 1e-3) << "layer " << l;
        EXPECT_GT(masked.heads_pooled[l].mean, 1e-3) << "layer " << l;
        for (int t = 0; t < 20; ++t) ASSERT_EQ(masked.residual_by_position[l][t], 0.0);
    }
}

// An encoder (every query sees every key): a change reaches the positions on both sides, each
// counted at its distance |d|; identical inputs still give exactly 0.
TEST(OverMixing, BidirectionalChangesReachBothSidesAtTheirDistance) {
    ModelConfig c = test::mixing_config(PositionKind::learned);
    c.causal = false;
    auto model = test::random_model(c, 5);
    const int T = 30, position = 11;
    const std::vector<int32_t> window = random_tokens(T, 64, 12);
    for (AttentionKernel kernel : {AttentionKernel::materialised, AttentionKernel::blockwise}) {
        const OverMixingResult r =
            measure_over_mixing(*model, single(window, position, (window[position] + 1) % 64), {.first_keys = {}, .kernel = kernel});
        EXPECT_EQ(r.distance_convention, "bidirectional");
        for (int l = 0; l < r.layers; ++l) {
            for (int t = 0; t < T; ++t) EXPECT_GT(r.residual_by_position[l][t], 0.0) << "layer " << l << " t " << t + 1;
            EXPECT_EQ(r.residual[l].count, T - 1);  // every other position
            EXPECT_EQ(r.heads_pooled[l].count, static_cast<long>(T - 1) * r.heads);
        }
        for (int d = 1; d < T; ++d)  // one position each side while both exist
            EXPECT_EQ(r.pairs_by_distance[d - 1], (position - d >= 0 ? 1 : 0) + (position + d < T ? 1 : 0)) << d;
        // the nearest neighbours on both sides, averaged: distance 1 pools positions 11 and 13
        EXPECT_NEAR(r.residual_by_distance[0][0],
                    (r.residual_by_position[0][position - 1] + r.residual_by_position[0][position + 1]) / 2, 1e-6);
        const OverMixingResult same = measure_over_mixing(*model, prompt_perturbation(window, window, 5, "same"),
                                                          {.first_keys = {}, .kernel = kernel});
        for (int l = 0; l < same.layers; ++l)
            for (double v : same.residual_by_position[l]) EXPECT_EQ(v, 0.0);
    }
}

TEST(OverMixing, EncoderHeadsThatAttendOnlyToTokenOneMixNothingOnEitherSide) {
    auto model = test::first_token_only_model(128, false);
    const int T = 48, position = 20;
    const std::vector<int32_t> window = random_tokens(T, 16, 6);
    const PerturbationSet set = single(window, position, (window[position] + 3) % 16);
    const OverMixingResult r = measure_over_mixing(*model, set, {});
    for (int l = 0; l < r.layers; ++l) {
        for (int t = 0; t < T; ++t)
            if (t != position) {
                ASSERT_EQ(r.residual_by_position[l][t], 0.0) << "layer " << l << " position " << t + 1;
            }
        EXPECT_EQ(r.residual[l].mean, 0.0);
        EXPECT_EQ(r.residual[l].count, T - 1);
        for (int h = 0; h < r.heads; ++h) EXPECT_EQ(r.head[l][h].p90, 0.0) << "layer " << l << " head " << h;
    }
    // token 1 hidden from the other queries: they average over every other token, both sides move
    const OverMixingResult masked = measure_over_mixing(*model, set, {.first_keys = {.hidden = 1}});
    for (int l = 0; l < masked.layers; ++l) {
        EXPECT_GT(masked.residual[l].mean, 1e-3) << "layer " << l;
        for (int t = 1; t < T; ++t)
            if (t != position) {
                EXPECT_GT(masked.residual_by_position[l][t], 0.0) << "layer " << l << " t " << t + 1;
            }
        // query 1 keeps its row, which reads token 1 only: it does not move
        EXPECT_EQ(masked.residual_by_position[l][0], 0.0);
    }
}

// The masked-LM loss rides along (PerturbationSet::loss): each condition scores the clean windows
// with its own edit, and drop-bos drops the loss input's first column with the windows'.
TEST(OverMixing, LossInputIsScoredPerConditionAndDroppedWithTheFirstToken) {
    ModelConfig c = test::mixing_config(PositionKind::learned);
    c.causal = false;
    auto model = test::random_model(c, 5);
    const int T = 16;
    std::vector<int32_t> window = random_tokens(T, 60, 3);
    window.front() = 62;
    window.back() = 63;
    PerturbationSet set = single(window, 5, (window[5] + 1) % 60);
    set.loss = "masked_lm";
    set.loss_tokens = window;
    set.loss_targets.assign(T, -1);
    for (int t : {3, 9}) {
        set.loss_targets[t] = window[t];
        set.loss_tokens[t] = 61;
    }
    const OverMixingResult clean = measure_over_mixing(*model, set, {});
    ForwardOptions forward;
    forward.training = false;
    const double expected = model->forward(set.loss_tokens.data(), set.loss_targets.data(), 1, T, forward);
    EXPECT_EQ(clean.loss, "masked_lm");
    EXPECT_EQ(clean.loss_value, expected);
    const OverMixingResult hidden = measure_over_mixing(*model, set, {.first_keys = {.hidden = 1}});
    EXPECT_NE(hidden.loss_value, clean.loss_value);
    const PerturbationSet dropped = drop_first_token(set, 62);
    ASSERT_EQ(dropped.loss_tokens.size(), static_cast<size_t>(T - 1));
    EXPECT_EQ(dropped.loss_tokens[2], 61);
    EXPECT_EQ(dropped.loss_targets[8], window[9]);
    EXPECT_EQ(dropped.loss, "masked_lm");
    set.loss_targets.pop_back();
    EXPECT_THROW(measure_over_mixing(*model, set, {}), Error);  // a loss input of another shape
    // no loss input: no loss
    EXPECT_TRUE(measure_over_mixing(*model, single(window, 5, 1), {}).loss.empty());
}

// Captures each layer's attention weights (materialised path).
class WeightsObserver final : public TensorObserver {
public:
    void observe(Tap tap, int layer, const float* data, const Shape& shape) override {
        if (tap != Tap::attn_weights) return;
        if (static_cast<int>(weights.size()) <= layer) weights.resize(layer + 1);
        weights[layer].assign(data, data + shape_numel(shape));
    }
    std::vector<std::vector<float>> weights;  // [layer] (B, NH, T, T)
};

std::vector<std::vector<float>> attention_weights(Transformer& model, const std::vector<int32_t>& tokens,
                                                  FirstKeyEdit edit) {
    WeightsObserver obs;
    ForwardOptions options;
    options.training = false;
    options.observer = &obs;
    options.logits = false;
    options.first_keys = edit;
    model.forward(tokens.data(), nullptr, 1, static_cast<int>(tokens.size()), options);
    return obs.weights;
}

TEST(OverMixing, MaskFirstOneMakesTheSinkHeadsUniform) {
    auto model = test::first_token_only_model();
    const int T = 40, NH = 2;
    const std::vector<int32_t> tokens = random_tokens(T, 16, 8);
    const auto clean = attention_weights(*model, tokens, {});
    const auto masked = attention_weights(*model, tokens, {.hidden = 1});
    for (int l = 0; l < 2; ++l)
        for (int h = 0; h < NH; ++h)
            for (int i = 0; i < T; ++i) {
                const float* row = clean[l].data() + (static_cast<long>(h) * T + i) * T;
                const float* mrow = masked[l].data() + (static_cast<long>(h) * T + i) * T;
                ASSERT_EQ(row[0], 1.0f) << "the model attends to token 1 only";
                // queries after token 1: uniform over keys 2..i+1, 1/i each; query 1 keeps its row
                for (int j = 0; j <= i; ++j) {
                    const double expected = i == 0 ? 1.0 : j == 0 ? 0.0 : 1.0 / i;
                    ASSERT_NEAR(mrow[j], expected, 1e-7) << "layer " << l << " head " << h << " row " << i + 1;
                }
            }
}

TEST(OverMixing, ScaleFirstOneIsTheIdentity) {
    auto model = test::random_model(test::mixing_config(PositionKind::rope), 5);
    const std::vector<int32_t> tokens = random_tokens(30, 64, 9);
    EXPECT_EQ(attention_weights(*model, tokens, {}), attention_weights(*model, tokens, {.factor = 1.0f}));
    const std::vector<int32_t> window = random_tokens(30, 64, 10);
    const PerturbationSet set = single(window, 7, (window[7] + 5) % 64);
    const OverMixingResult a = measure_over_mixing(*model, set, {});
    const OverMixingResult b = measure_over_mixing(*model, set, {.first_keys = {.factor = 1.0f}});
    EXPECT_EQ(a.residual_by_position, b.residual_by_position);
}

TEST(OverMixing, SummaryInterpolatesThePercentile) {
    std::vector<float> v;
    for (int i = 1; i <= 10; ++i) v.push_back(static_cast<float>(i));
    v.push_back(std::nanf(""));
    const ChangeSummary s = summarize_changes(v);
    EXPECT_EQ(s.count, 10);
    EXPECT_DOUBLE_EQ(s.mean, 5.5);
    EXPECT_NEAR(s.p90, 9.1, 1e-12);  // rank 0.9 * 9 = 8.1: 9 + 0.1 * (10 - 9)
    EXPECT_TRUE(std::isnan(summarize_changes({}).mean));
    EXPECT_EQ(summarize_changes({2.0f}).p90, 2.0);
}

TEST(Perturbations, RandomSetsAreSeededAndStayInRange) {
    const int T = 20, vocab = 30, bos = 29;
    std::vector<int32_t> windows;
    for (int w = 0; w < 5; ++w) {
        const std::vector<int32_t> body = random_tokens(T - 1, vocab - 1, 20 + w);
        windows.push_back(bos);
        windows.insert(windows.end(), body.begin(), body.end());
    }
    const PerturbationSet a = random_perturbations(windows, T, 17, 4, 2, vocab, {bos}, 7);
    const PerturbationSet b = random_perturbations(windows, T, 17, 4, 2, vocab, {bos}, 7);
    const PerturbationSet c = random_perturbations(windows, T, 17, 4, 2, vocab, {bos}, 8);
    ASSERT_EQ(a.perturbations.size(), 17u);
    EXPECT_EQ(a.window_count(), 5);
    bool differs = false;
    for (size_t k = 0; k < 17; ++k) {
        const Perturbation& p = a.perturbations[k];
        EXPECT_EQ(p.window, static_cast<int>(k / 4));
        EXPECT_GE(p.first, 2);
        EXPECT_LE(p.first, T - 2);
        ASSERT_EQ(p.replacement.size(), 1u);
        EXPECT_NE(p.replacement[0], a.windows[p.window * T + p.first]);
        EXPECT_NE(p.replacement[0], bos);
        EXPECT_EQ(p.first, b.perturbations[k].first);
        EXPECT_EQ(p.replacement, b.perturbations[k].replacement);
        differs |= p.first != c.perturbations[k].first || p.replacement != c.perturbations[k].replacement;
        for (size_t m = k / 4 * 4; m < k; ++m) EXPECT_NE(a.perturbations[m].first, p.first) << "one position twice";
    }
    EXPECT_TRUE(differs);
    a.validate(vocab);
    EXPECT_THROW(random_perturbations(windows, T, 20, 18, 2, vocab, {bos}, 7), Error);  // 17 positions per window
}

TEST(Perturbations, DropBosShiftsEveryPosition) {
    const std::vector<int32_t> window = {9, 1, 2, 3, 4, 5};
    std::vector<int32_t> perturbed = window;
    perturbed[3] = 7;
    const PerturbationSet set = prompt_perturbation(window, perturbed, 0, "p");
    const PerturbationSet dropped = drop_first_token(set, 9);
    EXPECT_EQ(dropped.T, 5);
    EXPECT_EQ(dropped.windows, std::vector<int32_t>({1, 2, 3, 4, 5}));
    EXPECT_EQ(dropped.perturbations[0].first, 2);
    EXPECT_THROW(drop_first_token(set, 8), Error);  // not a BOS window
    EXPECT_THROW(drop_first_token(single(window, 0, 3), 9), Error);  // BOS itself perturbed
    // a multi-token span: the first to the last differing token
    perturbed[5] = 0;
    const PerturbationSet span = prompt_perturbation(window, perturbed, 0, "p");
    EXPECT_EQ(span.perturbations[0].first, 3);
    EXPECT_EQ(span.perturbations[0].last(), 5);
    EXPECT_THROW(prompt_perturbation(window, {1, 2}, 0, "p"), Error);
}

TEST(SinkInterventions, ParseNamesAndRejects) {
    const std::vector<SinkInterventionKind> all = {SinkInterventionKind::mask_first, SinkInterventionKind::scale_first,
                                                   SinkInterventionKind::replace_first, SinkInterventionKind::mask_slot,
                                                   SinkInterventionKind::drop_bos};
    for (const char* text : {"mask-first:3", "scale-first:0.25", "replace-first:42", "mask-slot", "drop-bos"})
        EXPECT_EQ(SinkIntervention::parse(text, "--x", all).name(), text);
    EXPECT_EQ(SinkIntervention::parse("mask-first:2", "--x", all).first_key_edit(), (FirstKeyEdit{.hidden = 2}));
    EXPECT_EQ(SinkIntervention::parse("scale-first:0", "--x", all).first_key_edit(), (FirstKeyEdit{.hidden = 1}));
    EXPECT_EQ(SinkIntervention::parse("scale-first:2", "--x", all).first_key_edit(), (FirstKeyEdit{.factor = 2.0f}));
    for (const char* bad : {"mask-first:0", "mask-first", "mask-first:x", "scale-first:-1", "scale-first:inf",
                            "replace-first:-2", "mask-slot:1", "drop", ""})
        EXPECT_THROW(SinkIntervention::parse(bad, "--x", all), Error) << bad;
    EXPECT_THROW(SinkIntervention::parse("scale-first:2", "--without-sink", {SinkInterventionKind::mask_first}), Error);
}

TEST(SinkInterventions, MaskSlotKeepsEveryOtherWeight) {
    for (const char* design : {"kv_bias", "kv_bias_shared", "softmax1", "score_bias", "sink_token"}) {
        SCOPED_TRACE(design);
        auto model = test::random_model(test::mixing_config(PositionKind::rope, design), 5);
        auto bare = copy_without_slot(*model);
        EXPECT_EQ(bare->config().attention.name(), "softmax");
        for (const ParamInfo& p : bare->params())
            EXPECT_EQ(0, std::memcmp(bare->param_data() + p.offset, model->param(p.name), p.numel * sizeof(float)));
        if (std::string(design) != "softmax1") {  // its slot (score 0, value 0) has no parameters
            EXPECT_LT(bare->num_params(), model->num_params());
        }
    }
    auto plain = test::random_model(test::mixing_config(PositionKind::rope, "gated"), 5);
    EXPECT_THROW(copy_without_slot(*plain), Error);
}

}  // namespace
}  // namespace sinklab
