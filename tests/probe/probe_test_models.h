#pragma once
// Small models for the probe's tests: random ones whose weights are large enough that attention is
// far from uniform, and a hand-built one whose heads look only at token 1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "probe/probe.h"

namespace sinklab::test {

// Llama style (RMSNorm, SwiGLU, no biases) with `positions`; gpt2 style for learned positions.
// d 32, 3 layers, 4 query heads sharing 2 kv heads.
inline ModelConfig small_config(PositionKind positions, int max_seq_len = 1024) {
    ModelConfig c = ModelConfig::for_style(positions == PositionKind::learned ? "gpt2" : "llama");
    c.positions = positions;
    c.vocab_size = 64;
    c.d_model = 32;
    c.n_layers = 3;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.max_seq_len = max_seq_len;
    // N(0, 0.3) weights give scores of order 1-10: rows far from uniform, some close to one-hot
    c.init_std = 0.3f;
    return c;
}

inline std::unique_ptr<Transformer> random_model(const ModelConfig& c, uint64_t seed = 7) {
    auto model = std::make_unique<Transformer>(c);
    model->init_weights(seed);
    return model;
}

// The hand-built models' start: a 2-layer, 2-head llama with learned positions, 16 tokens, d 8 and
// every parameter 0, for a test to set the few weights its closed form needs. causal false: a
// bidirectional encoder.
inline std::unique_ptr<Transformer> zeroed_tiny_llama(int max_seq_len, bool causal = true) {
    ModelConfig c = ModelConfig::for_style("llama");
    c.causal = causal;
    c.positions = PositionKind::learned;
    c.vocab_size = 16;
    c.d_model = 8;
    c.n_layers = 2;
    c.n_heads = 2;
    c.n_kv_heads = 2;
    c.max_seq_len = max_seq_len;
    auto model = std::make_unique<Transformer>(c);
    std::fill(model->param_data(), model->param_data() + model->num_params(), 0.0f);
    return model;
}

// Every head of every layer puts (almost) all its weight on token 1: position 1's embedding has a
// feature (dim 0) that every key reads and every query matches, no other position has it, and the
// blocks write nothing back (zero output projections), so each layer sees the same residual stream.
// causal false: a bidirectional encoder, whose every query (token 1's own included) sees token 1.
inline std::unique_ptr<Transformer> token_one_sink_model(int max_seq_len = 128, bool causal = true) {
    auto model = zeroed_tiny_llama(max_seq_len, causal);
    const ModelConfig& c = model->config();
    for (const ParamInfo& p : model->params())
        if (p.name.ends_with("norm.weight")) std::fill_n(model->param(p.name), p.numel, 1.0f);
    const int C = c.d_model, HS = c.hs();
    float* tokens = model->param("embed.tokens");
    for (int v = 0; v < c.vocab_size; ++v) tokens[v * C + 1] = 1.0f;  // dim 1: every token
    model->param("embed.positions")[0] = 1.0f;                          // dim 0: position 1 only
    const float a = 4.0f;  // score of key 1: a^2 * |x_t|[1] * |x_1|[0] * scale, about 45 after RMSNorm
    for (int l = 0; l < c.n_layers; ++l) {
        float* wq = model->param("layers." + std::to_string(l) + ".attn.wq");  // (NH * HS, C)
        float* wk = model->param("layers." + std::to_string(l) + ".attn.wk");  // (NKV * HS, C)
        for (int h = 0; h < c.n_heads; ++h) {
            wq[(h * HS) * C + 1] = a;  // q_h[0] = a x[1]
            wk[(h * HS) * C + 0] = a;  // k_h[0] = a x[0]
        }
    }
    return model;
}

// Relative comparison for numbers of any scale: |a - b| <= tol * max(1, |b|).
inline void expect_close(double a, double b, double tol, const std::string& what) {
    EXPECT_LE(std::abs(a - b), tol * std::max(1.0, std::abs(b))) << what << ": " << a << " vs " << b;
}

}  // namespace sinklab::test
