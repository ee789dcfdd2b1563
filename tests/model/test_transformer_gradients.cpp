// The backward of the configuration fields added for pretrained families that stay trainable
// (scaled embeddings, Gemma's 1 + w norms, non-parametric norms, partial and rescaled RoPE with
// longrope's second table, per-layer windows, per-projection biases, exact GELU), checked against
// central finite differences of the loss; and the fields without a backward refuse to train.
//
// Finite differences run on the float32 model, so they carry rounding noise of about
// 1e-7 / h: each tensor's gradient is compared on its largest entries and a few random ones, with
// an error relative to the tensor's largest gradient entry.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "model/transformer.h"
#include "ops/rope.h"

namespace sinklab {
namespace {

constexpr double kStep = 1e-3;
constexpr double kRelTol = 2e-2;

struct Batch {
    int B = 2, T = 8;
    std::vector<int32_t> tokens, targets;
};

Batch random_batch(int vocab, uint64_t seed) {
    Batch b;
    Rng rng(seed);
    for (int i = 0; i < b.B * b.T; ++i) b.tokens.push_back(static_cast<int32_t>(rng.below(vocab)));
    for (int i = 0; i < b.B * b.T; ++i) b.targets.push_back(static_cast<int32_t>(rng.below(vocab)));
    return b;
}

void randomize(Transformer& model, uint64_t seed) {
    model.init_weights(seed);
    Rng rng(seed + 7);
    for (const auto& p : model.params())
        if (p.shape.size() == 1)
            for (size_t i = 0; i < p.numel; ++i) model.param_data()[p.offset + i] += 0.3f * rng.normal();
}

// Two layers of two heads of 8, vocabulary 11, weights far from their init (std 0.3).
ModelConfig small_config(const std::string& style, int kv_heads) {
    ModelConfig c = ModelConfig::for_style(style);
    c.vocab_size = 11;
    c.d_model = 16;
    c.n_layers = 2;
    c.n_heads = 2;
    c.n_kv_heads = kv_heads;
    c.max_seq_len = 16;
    c.init_std = 0.3f;
    return c;
}

void expect_gradients_match_finite_differences(const ModelConfig& config,
                                              AttentionKernel kernel = AttentionKernel::automatic) {
    Transformer model(config);
    randomize(model, 21);
    const Batch b = random_batch(config.vocab_size, 22);
    model.zero_grad();
    ForwardOptions training;
    training.attention_kernel = kernel;
    model.forward(b.tokens.data(), b.targets.data(), b.B, b.T, training);
    model.backward();
    const std::vector<float> grads(model.grad_data(), model.grad_data() + model.num_params());

    Rng pick(23);
    for (const ParamInfo& p : model.params()) {
        const float* g = grads.data() + p.offset;
        std::vector<size_t> order(p.numel);
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return std::abs(g[x]) > std::abs(g[y]); });
        const double scale = std::abs(g[order[0]]);
        ASSERT_GT(scale, 0.0) << p.name << " has no gradient";
        std::vector<size_t> checked(order.begin(), order.begin() + std::min<size_t>(3, p.numel));
        for (int r = 0; r < 3; ++r) checked.push_back(pick.below(p.numel));
        for (size_t i : checked) {
            float& w = model.param_data()[p.offset + i];
            const float saved = w;
            w = static_cast<float>(saved + kStep);
            const double up = model.forward(b.tokens.data(), b.targets.data(), b.B, b.T, ForwardOptions{false});
            w = static_cast<float>(saved - kStep);
            const double down = model.forward(b.tokens.data(), b.targets.data(), b.B, b.T, ForwardOptions{false});
            w = saved;
            const double numeric = (up - down) / (2 * kStep);
            EXPECT_LE(std::abs(numeric - g[i]), kRelTol * scale)
                << p.name << "[" << i << "]: backward " << g[i] << ", finite differences " << numeric
                << " (largest gradient of the tensor " << scale << ")";
        }
    }
}

TEST(TransformerGradients, GemmaStyleNormsScaledEmbeddingsPartialRopeAndWindows) {
    ModelConfig c = small_config("llama", 1);
    c.norm_weight_offset = 1.0f;
    c.embed_scale = 2.5f;
    c.rotary_dim = 4;  // of a head of 8
    c.rope_inv_freq = {0.9, 0.05};
    c.rope_attention_factor = 1.2;
    c.layer_windows = {3, 0};
    c.qkv_bias = true;  // q/k/v biases without any other (Qwen2's layout)
    expect_gradients_match_finite_differences(c);
}

TEST(TransformerGradients, NonParametricNormsExactGeluLongRopeAndOutputBiasOnly) {
    ModelConfig c = small_config("gpt2", 2);
    c.positions = PositionKind::rope;
    c.norm_affine = false;
    c.mlp = MlpKind::gelu_erf;
    c.qkv_bias = false;
    c.out_bias = true;
    c.rope_inv_freq = RopeTable::default_inv_freq(8, 10000.0);
    c.rope_long_inv_freq = {0.5, 0.2, 0.01, 0.001};
    c.rope_long_from = 4;  // the batch's positions reach 7: the long table is the one in use
    expect_gradients_match_finite_differences(c);
}

// Attention logit soft-capping (Gemma 2) is part of the attention design: it trains, with a
// relative bias and a window, on both attention kernels.
TEST(TransformerGradients, AttentionLogitSoftcapTrains) {
    ModelConfig c = small_config("llama", 1);
    c.positions = PositionKind::relative;
    c.attention.softcap = 1.5f;
    c.layer_windows = {3, 0};
    for (AttentionKernel kernel : {AttentionKernel::materialised, AttentionKernel::blockwise}) {
        SCOPED_TRACE(attention_kernel_name(kernel));
        expect_gradients_match_finite_differences(c, kernel);
    }
}

TEST(TransformerGradients, InferenceOnlyFeaturesRefuseToTrain) {
    ModelConfig c = ModelConfig::for_style("llama");
    c.vocab_size = 11;
    c.d_model = 16;
    c.n_layers = 1;
    c.n_heads = 2;
    c.n_kv_heads = 2;
    c.max_seq_len = 16;
    c.norm_placement = NormPlacement::sandwich;
    c.final_logit_softcap = 5.0f;
    Transformer model(c);
    model.init_weights(1);
    const Batch b = random_batch(c.vocab_size, 2);
    model.forward(b.tokens.data(), b.targets.data(), b.B, b.T);
    try {
        model.backward();
        FAIL() << "backward ran";
    } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("norm_placement sandwich, final_logit_softcap"), std::string::npos) << message;
        EXPECT_NE(message.find("not trainable yet"), std::string::npos) << message;
    }
}

}  // namespace
}  // namespace sinklab
