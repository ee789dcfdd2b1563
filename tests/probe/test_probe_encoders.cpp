// The probe on bidirectional models (encoders): alpha_k averages over all T queries, and the
// closed forms of DESIGN.md section 4 hold in their bidirectional version. A hand-built encoder
// whose heads attend only to token 1 gives Sink_1 = 100%; with one id repeated and no positions,
// every row is uniform over all T keys, so alpha_k = 1/T at every position k. An encoder's samples
// are framed by its special tokens, whose scores the probe reports apart. The intervention's loss
// is the masked-LM loss over a seeded 15% of the text tokens, checked against a direct forward.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../model/hf_test_support.h"
#include "model/hf_loader.h"
#include "probe/probe.h"
#include "probe/probe_model.h"
#include "probe_test_models.h"
#include "tokenizer/tokenizer.h"

namespace sinklab {
namespace {

constexpr int kT = 48;

TEST(ProbeEncoders, BidirectionalHeadsOnTokenOneGiveSinkOneHundredPercent) {
    auto model = test::token_one_sink_model(128, /*causal=*/false);
    const ProbeSamples samples = random_samples(model->config().vocab_size, kT, 4, std::nullopt, 3);
    for (AttentionKernel kernel : {AttentionKernel::materialised, AttentionKernel::blockwise}) {
        ProbeOptions options;
        options.kernel = kernel;
        options.positions = 0;  // every position of a bidirectional model
        const ProbeResult r = run_probe(*model, samples, options);
        EXPECT_EQ(r.alpha_convention, "bidirectional");
        EXPECT_EQ(r.positions, kT);
        EXPECT_DOUBLE_EQ(r.sink_percent[0], 100.0);
        for (const auto& layer : r.alpha[0])
            for (double a : layer) EXPECT_GT(a, 0.999);  // every one of the T queries, token 1 included
        for (int k = 2; k <= r.positions; ++k) EXPECT_DOUBLE_EQ(r.sink_percent[k - 1], 0.0) << "k = " << k;
        for (const auto& layer : r.entropy)
            for (double e : layer) EXPECT_LT(e, 1e-3);
    }
}

// Weights of every layer (materialised path) of one forward.
class WeightsObserver final : public TensorObserver {
public:
    void observe(Tap tap, int layer, const float* data, const Shape& shape) override {
        if (tap == Tap::attn_weights) weights.emplace_back(data, data + shape_numel(shape));
    }
    std::vector<std::vector<float>> weights;
};

TEST(ProbeEncoders, NoPositionsRepeatedTokenGivesUniformRowsOverAllKeys) {
    ModelConfig c = test::small_config(PositionKind::none);
    c.causal = false;
    auto model = test::random_model(c);
    const ProbeSamples samples = repeat_samples(5, c.vocab_size, kT, 2, std::nullopt);
    WeightsObserver observer;
    ForwardOptions forward;
    forward.training = false;
    forward.observer = &observer;
    model->forward(samples.tokens.data(), nullptr, 1, kT, forward);
    ASSERT_EQ(static_cast<int>(observer.weights.size()), c.n_layers);
    for (const auto& w : observer.weights)
        for (float x : w) ASSERT_NEAR(x, 1.0 / kT, 1e-6);  // every row uniform over all T keys

    ProbeOptions options;
    options.metrics = {Metric::sink, Metric::entropy};
    options.positions = 0;
    const ProbeResult r = run_probe(*model, samples, options);
    ASSERT_EQ(r.positions, kT);
    for (int k = 1; k <= kT; ++k)
        for (const auto& layer : r.alpha[k - 1])
            for (double a : layer) EXPECT_NEAR(a, 1.0 / kT, 1e-6) << "k = " << k;  // alpha_k = 1/T
    EXPECT_DOUBLE_EQ(r.sink_percent[0], 0.0);
    for (const auto& layer : r.entropy)
        for (double e : layer) EXPECT_NEAR(e, std::log(static_cast<double>(kT)), 1e-5);
}

TEST(ProbeEncoders, FramedSamplesReportTheirSpecialTokens) {
    auto model = load_model(test::fixture("hf-encoders/bert"));
    const int V = model->config().vocab_size;
    SampleFrame frame(4);  // [CLS]
    frame.last = 5;        // [SEP]
    const ProbeSamples samples = random_samples(V, 20, 3, frame, 9);
    for (int n = 0; n < 3; ++n) {
        EXPECT_EQ(samples.tokens[n * 20], 4);
        EXPECT_EQ(samples.tokens[n * 20 + 19], 5);
    }
    ProbeOptions options;
    options.positions = 3;
    const ProbeResult r = run_probe(*model, samples, options);
    ASSERT_EQ(r.special_tokens.size(), 2u);
    EXPECT_EQ(r.special_tokens[0].special.role, "cls");
    EXPECT_EQ(r.special_tokens[0].special.position, 1);
    EXPECT_EQ(r.special_tokens[1].special.role, "sep");
    EXPECT_EQ(r.special_tokens[1].special.position, 20);
    EXPECT_EQ(r.special_tokens[0].alpha, r.alpha[0]);  // [CLS] is position 1
    EXPECT_EQ(r.positions, 3);                          // alpha_k as asked; [SEP] still reported
    EXPECT_DOUBLE_EQ(r.special_tokens[0].sink_percent, r.sink_percent[0]);
}

TEST(ProbeEncoders, InterventionLossIsTheSeededMaskedLmLoss) {
    const ProbeModel pm = load_probe_model(test::fixture("hf-encoders/bert"));
    ASSERT_TRUE(pm.tokenizer && pm.mask_id);
    EXPECT_EQ(*pm.cls_id, 4);
    EXPECT_EQ(*pm.sep_id, 5);
    std::string text;
    for (int i = 0; i < 30; ++i) text += "The quick brown fox jumps over the lazy dog in New York and Paris. ";
    const int T = 24, N = 3;
    ProbeSamples samples = make_probe_samples(InputSpec::parse("natural"), text, "text", pm.tokenizer.get(),
                                              pm.model->config().vocab_size, T, N, sample_frame(pm, BosMode::automatic), 7);
    EXPECT_TRUE(samples.targets.empty());  // an encoder has no next-token targets
    mask_for_masked_lm(samples, *pm.mask_id, kMaskedLmRate, 7);
    ASSERT_EQ(samples.loss_tokens.size(), samples.tokens.size());
    const int masked_per_sample = static_cast<int>(std::lround(0.15 * (T - 2)));
    for (int n = 0; n < N; ++n) {
        int masked = 0;
        for (int t = 0; t < T; ++t) {
            const size_t at = static_cast<size_t>(n) * T + t;
            if (samples.targets[at] >= 0) {
                ++masked;
                EXPECT_TRUE(t > 0 && t < T - 1) << "the frame's tokens are never masked";
                EXPECT_EQ(samples.loss_tokens[at], 6);
                EXPECT_EQ(samples.targets[at], samples.tokens[at]);
            } else {
                EXPECT_EQ(samples.loss_tokens[at], samples.tokens[at]);
            }
        }
        EXPECT_EQ(masked, masked_per_sample);
    }
    // the same seed masks the same positions
    ProbeSamples again = samples;
    mask_for_masked_lm(again, *pm.mask_id, kMaskedLmRate, 7);
    EXPECT_EQ(again.targets, samples.targets);

    ProbeOptions options;
    options.intervention = InterventionSpec{InterventionMode::zero, 0, {3, 17}};
    const ProbeResult r = run_probe(*pm.model, samples, options);
    ASSERT_TRUE(r.intervention);
    EXPECT_EQ(r.intervention->loss, "masked_lm");
    // the clean loss is the mean cross-entropy over the masked positions of a plain forward
    const double direct = pm.model->forward(samples.loss_tokens.data(), samples.targets.data(), N, T,
                                            ForwardOptions{false});
    EXPECT_NEAR(r.intervention->loss_clean, direct, 1e-6 * std::abs(direct));
    EXPECT_NE(r.intervention->loss_intervened, r.intervention->loss_clean);
}

}  // namespace
}  // namespace sinklab
