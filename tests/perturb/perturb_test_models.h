#pragma once
// Models for the over-mixing tests: random ones, and a hand-built one whose heads attend only to
// token 1 while every block writes into the residual stream.
#include <algorithm>
#include <memory>
#include <string>

#include "../probe/probe_test_models.h"
#include "core/rng.h"
#include "model/transformer.h"

namespace sinklab::test {

// The probe's small random models (d 32, 3 layers, 4 query heads sharing 2 kv heads, weights
// N(0, 0.3): rows far from uniform) with `design`.
inline ModelConfig mixing_config(PositionKind positions, const std::string& design = "softmax") {
    ModelConfig c = small_config(positions, 256);
    c.attention = AttentionSpec::parse(design);
    return c;
}

// Every head of every layer attends only to token 1, and every block writes into the stream:
// dim 0 of the residual stream is position 1's mark (learned position row 0) and dim 1 is 1 for
// every token; each query reads dim 1 and each key dim 0 (q_h[0] = a x[1], k_h[0] = a x[0], the
// other q and k rows zero), so key 1 scores a^2 / 2 times the product of the normed marks and every
// other key exactly 0. Values, output projections and the MLPs are random but write only into dims
// 2.. (their rows 0 and 1 are zero), so the marks stay where they are at every layer. Tokens
// differ in dims 2.., so a perturbation changes what its position holds. The blocks' writes shrink
// the normed marks; a = 40 keeps key 1's score so far above the others' 0 that its weight is exactly
// 1 in float in every row (OverMixing.MaskFirstOneMakesTheSinkHeadsUniform checks it).
// causal false: the same model attending both ways (an encoder's mask), where token 1's own row, too,
// reads token 1 only.
inline std::unique_ptr<Transformer> first_token_only_model(int max_seq_len = 128, bool causal = true) {
    auto model = zeroed_tiny_llama(max_seq_len, causal);
    const ModelConfig& c = model->config();
    Rng rng(99);
    const int C = c.d_model, HS = c.hs();
    for (const ParamInfo& p : model->params()) {
        float* w = model->param(p.name);
        if (p.name.ends_with("norm.weight")) {
            std::fill_n(w, p.numel, 1.0f);
        } else if (p.name.ends_with("attn.wv") || p.name.ends_with("mlp.w_gate") || p.name.ends_with("mlp.w_up") ||
                   p.name == "lm_head") {
            for (size_t i = 0; i < p.numel; ++i) w[i] = static_cast<float>(0.5 * rng.normal());
        } else if (p.name.ends_with("attn.wo") || p.name.ends_with("mlp.w_down")) {
            // (C, in): rows 0 and 1 stay zero
            const long in = static_cast<long>(p.numel) / C;
            for (long i = 2 * in; i < static_cast<long>(p.numel); ++i) w[i] = static_cast<float>(0.3 * rng.normal());
        }
    }
    float* tokens = model->param("embed.tokens");
    for (int v = 0; v < c.vocab_size; ++v) {
        tokens[v * C + 1] = 1.0f;
        for (int ch = 2; ch < C; ++ch) tokens[v * C + ch] = static_cast<float>(0.5 * rng.normal());
    }
    model->param("embed.positions")[0] = 1.0f;
    const float a = 40.0f;
    for (int l = 0; l < c.n_layers; ++l) {
        float* wq = model->param("layers." + std::to_string(l) + ".attn.wq");  // (NH * HS, C)
        float* wk = model->param("layers." + std::to_string(l) + ".attn.wk");  // (NKV * HS, C)
        for (int h = 0; h < c.n_heads; ++h) {
            wq[(h * HS) * C + 1] = a;
            wk[(h * HS) * C + 0] = a;
        }
    }
    return model;
}

}  // namespace sinklab::test
