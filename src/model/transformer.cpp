#include "model/transformer.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/rng.h"
#include "ops/activations.h"
#include "ops/cross_entropy.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/norms.h"

namespace sinklab {

struct Transformer::Layer {
    float* attn_norm_w = nullptr;
    float* attn_norm_b = nullptr;
    float* wqkv = nullptr;  // (QKV, C): wq, wk, wv stored back to back
    float* bqkv = nullptr;  // (QKV)
    float* wo = nullptr;    // (C, NH*HS)
    float* bo = nullptr;
    float* mlp_norm_w = nullptr;
    float* mlp_norm_b = nullptr;
    float* w_up = nullptr;  // (F, C), or (2F, C) gate then up for gated MLPs
    float* b_up = nullptr;
    float* w_down = nullptr;  // (C, F)
    float* b_down = nullptr;
};

namespace {

std::string layer_name(int l, const char* suffix) { return "layers." + std::to_string(l) + "." + suffix; }

}  // namespace

Transformer::Transformer(const ModelConfig& config) : config_(config) {
    config_.validate();
    SINKLAB_CHECK(config_.norm_placement == NormPlacement::pre, "model",
                  "norm_placement '{}' is not supported by the engine yet", to_string(config_.norm_placement));
    SINKLAB_CHECK(config_.positions == PositionKind::none || config_.positions == PositionKind::learned ||
                      config_.positions == PositionKind::sinusoidal || config_.positions == PositionKind::rope,
                  "model", "positions '{}' are not supported by the engine yet", to_string(config_.positions));
    build_param_table();
    weights_ = Tensor({static_cast<int64_t>(num_params_)});
    grads_ = Tensor({static_cast<int64_t>(num_params_)});
    if (config_.positions == PositionKind::rope)
        rope_ = RopeTable::build(RopeTable::default_inv_freq(config_.hs(), config_.rope_theta), config_.max_seq_len);
    if (config_.positions == PositionKind::sinusoidal) {
        sinusoidal_ = Tensor({config_.max_seq_len, config_.d_model});
        sinusoidal_positions(sinusoidal_.data(), config_.max_seq_len, config_.d_model);
    }
}

void Transformer::build_param_table() {
    const ModelConfig& c = config_;
    const int C = c.d_model, F = c.ff(), HS = c.hs();
    auto add = [&](std::string name, Shape shape, bool decay) {
        ParamInfo p;
        p.name = std::move(name);
        p.numel = static_cast<size_t>(shape_numel(shape));
        p.shape = std::move(shape);
        p.offset = num_params_;
        p.decay = decay;
        num_params_ += p.numel;
        params_.push_back(std::move(p));
    };
    add("embed.tokens", {c.vocab_size, C}, false);
    if (c.positions == PositionKind::learned) add("embed.positions", {c.max_seq_len, C}, false);
    const bool ln = c.norm == NormKind::layernorm;
    for (int l = 0; l < c.n_layers; ++l) {
        add(layer_name(l, "attn_norm.weight"), {C}, false);
        if (ln) add(layer_name(l, "attn_norm.bias"), {C}, false);
        // q, k, v back to back so that one GEMM computes all three
        add(layer_name(l, "attn.wq"), {c.n_heads * HS, C}, true);
        add(layer_name(l, "attn.wk"), {c.n_kv_heads * HS, C}, true);
        add(layer_name(l, "attn.wv"), {c.n_kv_heads * HS, C}, true);
        if (c.linear_bias) {
            add(layer_name(l, "attn.bq"), {c.n_heads * HS}, false);
            add(layer_name(l, "attn.bk"), {c.n_kv_heads * HS}, false);
            add(layer_name(l, "attn.bv"), {c.n_kv_heads * HS}, false);
        }
        add(layer_name(l, "attn.wo"), {C, c.n_heads * HS}, true);
        if (c.linear_bias) add(layer_name(l, "attn.bo"), {C}, false);
        add(layer_name(l, "mlp_norm.weight"), {C}, false);
        if (ln) add(layer_name(l, "mlp_norm.bias"), {C}, false);
        if (c.gated_mlp()) add(layer_name(l, "mlp.w_gate"), {F, C}, true);  // gate then up: one GEMM
        add(layer_name(l, "mlp.w_up"), {F, C}, true);
        if (c.linear_bias && !c.gated_mlp()) add(layer_name(l, "mlp.b_up"), {F}, false);
        add(layer_name(l, "mlp.w_down"), {C, F}, true);
        if (c.linear_bias) add(layer_name(l, "mlp.b_down"), {C}, false);
    }
    add("final_norm.weight", {C}, false);
    if (ln) add("final_norm.bias", {C}, false);
    if (!c.tied_embeddings) add("lm_head", {c.vocab_size, C}, true);
}

const ParamInfo* Transformer::find(std::string_view name) const {
    for (const auto& p : params_)
        if (p.name == name) return &p;
    return nullptr;
}

float* Transformer::param(std::string_view name) {
    const ParamInfo* p = find(name);
    if (!p) fail("model", "the model has no parameter '{}'", name);
    return weights_.data() + p->offset;
}

float* Transformer::grad(std::string_view name) {
    const ParamInfo* p = find(name);
    if (!p) fail("model", "the model has no parameter '{}'", name);
    return grads_.data() + p->offset;
}

Transformer::Layer Transformer::layer_view(float* base, int l) const {
    auto at = [&](const char* suffix) -> float* {
        const ParamInfo* p = find(layer_name(l, suffix));
        return p ? base + p->offset : nullptr;
    };
    Layer v;
    v.attn_norm_w = at("attn_norm.weight");
    v.attn_norm_b = at("attn_norm.bias");
    v.wqkv = at("attn.wq");
    v.bqkv = at("attn.bq");
    v.wo = at("attn.wo");
    v.bo = at("attn.bo");
    v.mlp_norm_w = at("mlp_norm.weight");
    v.mlp_norm_b = at("mlp_norm.bias");
    v.w_up = config_.gated_mlp() ? at("mlp.w_gate") : at("mlp.w_up");
    v.b_up = at("mlp.b_up");
    v.w_down = at("mlp.w_down");
    v.b_down = at("mlp.b_down");
    return v;
}

void Transformer::init_weights(uint64_t seed) {
    Rng rng(seed);
    const float residual_std = config_.init_std / std::sqrt(2.0f * config_.n_layers);
    for (const auto& p : params_) {
        float* w = weights_.data() + p.offset;
        const bool is_norm = p.name.find("norm.") != std::string::npos;
        const bool is_bias = p.shape.size() == 1 && !is_norm;
        if (is_norm && p.name.ends_with(".weight")) {
            for (size_t i = 0; i < p.numel; ++i) w[i] = 1.0f;
        } else if (is_norm || is_bias) {
            for (size_t i = 0; i < p.numel; ++i) w[i] = 0.0f;
        } else {
            const bool residual_out = p.name.ends_with("attn.wo") || p.name.ends_with("mlp.w_down");
            const float std = residual_out ? residual_std : config_.init_std;
            for (size_t i = 0; i < p.numel; ++i) w[i] = static_cast<float>(rng.normal()) * std;
        }
    }
}

void Transformer::zero_grad() { grads_.zero(); }

void Transformer::ensure_activations(int B, int T, bool training) {
    Activations& a = acts_;
    const int slots = training ? config_.n_layers : 1;
    // With one layer both modes keep one slot, but only training buffers hold dlogits.
    if (a.B == B && a.T == T && a.slots == slots && (!training || !a.dlogits.empty())) return;
    const int64_t N = static_cast<int64_t>(B) * T, C = config_.d_model, F = config_.ff();
    const int64_t up_width = config_.gated_mlp() ? 2 * F : F;
    const int64_t NH = config_.n_heads, HSO = NH * config_.hs();
    a = Activations{};
    a.B = B;
    a.T = T;
    a.slots = slots;
    a.resid = Tensor({training ? slots + 1 : 2, N, C});
    a.norm1 = Tensor({slots, N, C});
    a.norm1_mean = Tensor({slots, N});
    a.norm1_rstd = Tensor({slots, N});
    a.qkv = Tensor({slots, N, config_.qkv_width()});
    a.attw = Tensor({slots, B, NH, T, T});
    a.attout = Tensor({slots, N, HSO});
    a.mid = Tensor({slots, N, C});
    a.norm2 = Tensor({slots, N, C});
    a.norm2_mean = Tensor({slots, N});
    a.norm2_rstd = Tensor({slots, N});
    a.mlp_pre = Tensor({slots, N, up_width});
    a.mlp_act = Tensor({slots, N, F});
    a.scratch = Tensor({N, C});
    a.final_norm = Tensor({N, C});
    a.final_mean = Tensor({N});
    a.final_rstd = Tensor({N});
    a.logits = Tensor({N, config_.vocab_size});
    a.dlogits = training ? Tensor({N, config_.vocab_size}) : Tensor();
    a.losses = Tensor({N});
}

namespace {

// Norm dispatch: the config chooses LayerNorm or RMSNorm; blocks call these two.
void norm_forward(const ModelConfig& c, float* out, float* mean, float* rstd, const float* inp, const float* w,
                  const float* b, int N) {
    if (c.norm == NormKind::layernorm)
        layernorm_forward(out, mean, rstd, inp, w, b, N, c.d_model, c.norm_eps);
    else
        rmsnorm_forward(out, rstd, inp, w, N, c.d_model, c.norm_eps);
}

void norm_backward(const ModelConfig& c, float* dinp, float* dw, float* db, const float* dout, const float* inp,
                   const float* w, const float* mean, const float* rstd, int N) {
    if (c.norm == NormKind::layernorm)
        layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, c.d_model);
    else
        rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, c.d_model);
}

}  // namespace

double Transformer::forward(const int32_t* tokens, const int32_t* targets, int B, int T,
                            const ForwardOptions& options) {
    const ModelConfig& c = config_;
    SINKLAB_CHECK(B > 0 && T > 0, "model", "empty batch (B={}, T={})", B, T);
    if (c.positions == PositionKind::learned || c.positions == PositionKind::sinusoidal ||
        c.positions == PositionKind::rope)
        SINKLAB_CHECK(T <= c.max_seq_len, "model", "sequence length {} exceeds the model's max_seq_len {}", T,
                      c.max_seq_len);
    ensure_activations(B, T, options.training);
    Activations& a = acts_;
    const int N = B * T, C = c.d_model, F = c.ff(), QKV = c.qkv_width(), HS = c.hs();
    const int up_width = c.gated_mlp() ? 2 * F : F;
    a.training = options.training;
    a.tokens.assign(tokens, tokens + N);
    for (int i = 0; i < N; ++i)
        SINKLAB_CHECK(tokens[i] >= 0 && tokens[i] < c.vocab_size, "model", "token id {} at position {} is outside the vocabulary (size {})",
                      tokens[i], i, c.vocab_size);
    a.has_targets = targets != nullptr;
    if (targets) a.targets.assign(targets, targets + N);
    a.positions.resize(N);
    for (int i = 0; i < N; ++i) a.positions[i] = i % T;
    TensorObserver* obs = options.observer;
    const AttentionDims dims{B, T, c.n_heads, c.n_kv_heads, HS};
    const AttentionMask mask{c.window, c.prefix};

    // token (and absolute position) embeddings
    const float* wpe = c.positions == PositionKind::learned      ? param("embed.positions")
                       : c.positions == PositionKind::sinusoidal ? sinusoidal_.data()
                                                                 : nullptr;
    embedding_forward(a.resid.data(), tokens, param("embed.tokens"), wpe, B, T, C);
    if (obs) obs->observe("embed", -1, a.resid.data(), {N, C});

    for (int l = 0; l < c.n_layers; ++l) {
        const int s = a.training ? l : 0;
        const Layer w = layer_view(weights_.data(), l);
        float* x = a.resid.data() + static_cast<long>(a.training ? l : l % 2) * N * C;
        float* out = a.resid.data() + static_cast<long>(a.training ? l + 1 : (l + 1) % 2) * N * C;
        float* n1 = a.norm1.data() + static_cast<long>(s) * N * C;
        float* qkv = a.qkv.data() + static_cast<long>(s) * N * QKV;
        float* attw = a.attw.data() + static_cast<long>(s) * B * c.n_heads * T * T;
        float* attout = a.attout.data() + static_cast<long>(s) * N * c.n_heads * HS;
        float* mid = a.mid.data() + static_cast<long>(s) * N * C;
        float* n2 = a.norm2.data() + static_cast<long>(s) * N * C;
        float* pre = a.mlp_pre.data() + static_cast<long>(s) * N * up_width;
        float* act = a.mlp_act.data() + static_cast<long>(s) * N * F;

        // attention sub-block: mid = x + Wo attn(rope(Wqkv norm1(x)))
        norm_forward(c, n1, a.norm1_mean.data() + s * N, a.norm1_rstd.data() + s * N, x, w.attn_norm_w,
                     w.attn_norm_b, N);
        matmul_forward(qkv, n1, w.wqkv, w.bqkv, N, C, QKV);
        if (c.positions == PositionKind::rope) {
            rope_forward(qkv, a.positions.data(), N, c.n_heads, HS, QKV, rope_);
            rope_forward(qkv + c.n_heads * HS, a.positions.data(), N, c.n_kv_heads, HS, QKV, rope_);
        }
        if (obs) obs->observe("qkv", l, qkv, {N, QKV});
        attention_forward(attout, attw, AttentionInputs{qkv, nullptr}, dims, c.attention, mask);
        if (obs) obs->observe("attn_weights", l, attw, {B, c.n_heads, T, T});
        matmul_forward(a.scratch.data(), attout, w.wo, w.bo, N, c.n_heads * HS, C);
        add_forward(mid, x, a.scratch.data(), static_cast<long>(N) * C);

        // MLP sub-block: out = mid + W_down act(W_up norm2(mid))
        norm_forward(c, n2, a.norm2_mean.data() + s * N, a.norm2_rstd.data() + s * N, mid, w.mlp_norm_w,
                     w.mlp_norm_b, N);
        matmul_forward(pre, n2, w.w_up, w.b_up, N, C, up_width);
        switch (c.mlp) {
            case MlpKind::gelu: gelu_forward(act, pre, static_cast<long>(N) * F); break;
            case MlpKind::relu: relu_forward(act, pre, static_cast<long>(N) * F); break;
            case MlpKind::swiglu: glu_forward(act, pre, N, F, GateActivation::silu); break;
            case MlpKind::geglu: glu_forward(act, pre, N, F, GateActivation::gelu); break;
        }
        matmul_forward(a.scratch.data(), act, w.w_down, w.b_down, N, F, C);
        add_forward(out, mid, a.scratch.data(), static_cast<long>(N) * C);
        if (obs) obs->observe("block_out", l, out, {N, C});
    }

    const float* last = a.resid.data() + static_cast<long>(a.training ? c.n_layers : c.n_layers % 2) * N * C;
    norm_forward(c, a.final_norm.data(), a.final_mean.data(), a.final_rstd.data(), last, param("final_norm.weight"),
                 find("final_norm.bias") ? param("final_norm.bias") : nullptr, N);
    if (obs) obs->observe("final_norm", -1, a.final_norm.data(), {N, C});
    const float* head = c.tied_embeddings ? param("embed.tokens") : param("lm_head");
    matmul_forward(a.logits.data(), a.final_norm.data(), head, nullptr, N, C, c.vocab_size);
    if (obs) obs->observe("logits", -1, a.logits.data(), {N, c.vocab_size});
    if (!targets) return 0.0;
    for (int i = 0; i < N; ++i)
        SINKLAB_CHECK(targets[i] < c.vocab_size, "model", "target id {} is outside the vocabulary", targets[i]);
    return cross_entropy_forward_backward(a.losses.data(), a.training ? a.dlogits.data() : nullptr, a.logits.data(),
                                          targets, N, c.vocab_size);
}

void Transformer::ensure_gradient_buffers() {
    const long N = static_cast<long>(acts_.B) * acts_.T;
    if (dacts_.N == N) return;
    const int64_t C = config_.d_model, F = config_.ff();
    dacts_.N = N;
    dacts_.dresid = Tensor({N, C});
    dacts_.dmid = Tensor({N, C});
    dacts_.dnorm = Tensor({N, C});
    dacts_.dfinal = Tensor({N, C});
    dacts_.dact = Tensor({N, F});
    dacts_.dpre = Tensor({N, config_.gated_mlp() ? 2 * F : F});
    dacts_.datt = Tensor({N, static_cast<int64_t>(config_.n_heads) * config_.hs()});
    dacts_.dqkv = Tensor({N, config_.qkv_width()});
}

void Transformer::backward() {
    const ModelConfig& c = config_;
    Activations& a = acts_;
    SINKLAB_CHECK(a.training && a.has_targets, "model", "backward() needs a training forward with targets first");
    ensure_gradient_buffers();
    Gradients& g = dacts_;
    const int B = a.B, T = a.T, N = B * T, C = c.d_model, F = c.ff(), QKV = c.qkv_width(), HS = c.hs();
    const int up_width = c.gated_mlp() ? 2 * F : F;
    const AttentionDims dims{B, T, c.n_heads, c.n_kv_heads, HS};
    const AttentionMask mask{c.window, c.prefix};
    const long NC = static_cast<long>(N) * C;

    // logits = final_norm @ head^T
    float* dhead = c.tied_embeddings ? grad("embed.tokens") : grad("lm_head");
    const float* head = c.tied_embeddings ? param("embed.tokens") : param("lm_head");
    g.dfinal.zero();
    matmul_backward(g.dfinal.data(), dhead, nullptr, a.dlogits.data(), a.final_norm.data(), head, N, C, c.vocab_size);
    g.dresid.zero();
    const float* last = a.resid.data() + static_cast<long>(c.n_layers) * NC;
    norm_backward(c, g.dresid.data(), grad("final_norm.weight"),
                  find("final_norm.bias") ? grad("final_norm.bias") : nullptr, g.dfinal.data(), last,
                  param("final_norm.weight"), a.final_mean.data(), a.final_rstd.data(), N);

    for (int l = c.n_layers - 1; l >= 0; --l) {
        const Layer w = layer_view(weights_.data(), l);
        const Layer dw = layer_view(grads_.data(), l);
        const float* x = a.resid.data() + static_cast<long>(l) * NC;
        const float* n1 = a.norm1.data() + static_cast<long>(l) * NC;
        const float* qkv = a.qkv.data() + static_cast<long>(l) * N * QKV;
        const float* attw = a.attw.data() + static_cast<long>(l) * B * c.n_heads * T * T;
        const float* attout = a.attout.data() + static_cast<long>(l) * N * c.n_heads * HS;
        const float* mid = a.mid.data() + static_cast<long>(l) * NC;
        const float* n2 = a.norm2.data() + static_cast<long>(l) * NC;
        const float* pre = a.mlp_pre.data() + static_cast<long>(l) * N * up_width;
        const float* act = a.mlp_act.data() + static_cast<long>(l) * N * F;

        // in the forward pass this was: out = mid + W_down act(W_up norm2(mid))
        std::memcpy(g.dmid.data(), g.dresid.data(), NC * sizeof(float));
        g.dact.zero();
        matmul_backward(g.dact.data(), dw.w_down, dw.b_down, g.dresid.data(), act, w.w_down, N, F, C);
        g.dpre.zero();
        switch (c.mlp) {
            case MlpKind::gelu: gelu_backward(g.dpre.data(), pre, g.dact.data(), static_cast<long>(N) * F); break;
            case MlpKind::relu: relu_backward(g.dpre.data(), pre, g.dact.data(), static_cast<long>(N) * F); break;
            case MlpKind::swiglu: glu_backward(g.dpre.data(), pre, g.dact.data(), N, F, GateActivation::silu); break;
            case MlpKind::geglu: glu_backward(g.dpre.data(), pre, g.dact.data(), N, F, GateActivation::gelu); break;
        }
        g.dnorm.zero();
        matmul_backward(g.dnorm.data(), dw.w_up, dw.b_up, g.dpre.data(), n2, w.w_up, N, C, up_width);
        norm_backward(c, g.dmid.data(), dw.mlp_norm_w, dw.mlp_norm_b, g.dnorm.data(), mid, w.mlp_norm_w,
                      a.norm2_mean.data() + static_cast<long>(l) * N, a.norm2_rstd.data() + static_cast<long>(l) * N,
                      N);

        // in the forward pass this was: mid = x + Wo attn(rope(Wqkv norm1(x)))
        std::memcpy(g.dresid.data(), g.dmid.data(), NC * sizeof(float));
        g.datt.zero();
        matmul_backward(g.datt.data(), dw.wo, dw.bo, g.dmid.data(), attout, w.wo, N, c.n_heads * HS, C);
        g.dqkv.zero();
        attention_backward(g.dqkv.data(), g.datt.data(), AttentionInputs{qkv, nullptr}, attw, dims, c.attention,
                           mask);
        if (c.positions == PositionKind::rope) {
            rope_backward(g.dqkv.data(), a.positions.data(), N, c.n_heads, HS, QKV, rope_);
            rope_backward(g.dqkv.data() + c.n_heads * HS, a.positions.data(), N, c.n_kv_heads, HS, QKV, rope_);
        }
        g.dnorm.zero();
        matmul_backward(g.dnorm.data(), dw.wqkv, dw.bqkv, g.dqkv.data(), n1, w.wqkv, N, C, QKV);
        norm_backward(c, g.dresid.data(), dw.attn_norm_w, dw.attn_norm_b, g.dnorm.data(), x, w.attn_norm_w,
                      a.norm1_mean.data() + static_cast<long>(l) * N, a.norm1_rstd.data() + static_cast<long>(l) * N,
                      N);
    }
    embedding_backward(grad("embed.tokens"),
                       c.positions == PositionKind::learned ? grad("embed.positions") : nullptr, g.dresid.data(),
                       a.tokens.data(), B, T, C);
}

const float* Transformer::attention_weights(int layer) const {
    SINKLAB_CHECK(acts_.training && layer >= 0 && layer < config_.n_layers, "model",
                  "attention weights of layer {} are not kept by the last forward", layer);
    return acts_.attw.data() + static_cast<long>(layer) * acts_.B * config_.n_heads * acts_.T * acts_.T;
}

const float* Transformer::hidden(int layer) const {
    SINKLAB_CHECK(acts_.training && layer >= 0 && layer <= config_.n_layers, "model",
                  "hidden state {} is not kept by the last forward", layer);
    return acts_.resid.data() + static_cast<long>(layer) * acts_.B * acts_.T * config_.d_model;
}

}  // namespace sinklab
