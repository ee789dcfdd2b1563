#include "model/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/rng.h"
#include "attention/blockwise_attention.h"
#include "attention/cached_attention.h"
#include "attention/output_gate.h"
#include "metrics/proxy.h"
#include "model/kv_cache.h"
#include "ops/activations.h"
#include "ops/cross_entropy.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/moe.h"
#include "ops/norms.h"
#include "ops/position_bias.h"

namespace sinklab {

struct Transformer::Layer {
    float* attn_norm_w = nullptr;
    float* attn_norm_b = nullptr;
    float* wqkv = nullptr;  // (QKV, C): wq, wk, wv stored back to back
    float* bqkv = nullptr;  // (QKV)
    float* q_norm_w = nullptr;  // (HS) per head, or (NH*HS) over the whole projection
    float* k_norm_w = nullptr;  // (HS) or (NKV*HS)
    float* attn_gate = nullptr;  // (G, C) gated designs: gate logits x W_g (attention/output_gate.h)
    float* wo = nullptr;    // (C, NH*HS)
    float* bo = nullptr;
    float* attn_out_norm_w = nullptr;  // sandwich / output placements
    float* attn_out_norm_b = nullptr;
    float* mlp_norm_w = nullptr;
    float* mlp_norm_b = nullptr;
    float* w_up = nullptr;  // (F, C), or (2F, C) gate then up for gated MLPs
    float* b_up = nullptr;
    float* w_down = nullptr;  // (C, F)
    float* b_down = nullptr;
    float* mlp_out_norm_w = nullptr;
    float* mlp_out_norm_b = nullptr;
    // mixture of experts
    float* router = nullptr;         // (E, C)
    float* router_bias = nullptr;    // (E)
    float* expert_b_up = nullptr;    // (E, up_width)
    float* expert_b_down = nullptr;  // (E, C)
    const Mxfp4Matrices* expert_w_up = nullptr;    // E x (up_width, C)
    const Mxfp4Matrices* expert_w_down = nullptr;  // E x (C, F)
};

namespace {

std::string layer_name(int l, const char* suffix) { return "layers." + std::to_string(l) + "." + suffix; }

// layers.{l}.attn.<name> of one of the design's tensors (attention_param_infos)
std::string design_tensor_name(int l, const AttentionParamInfo& info) {
    return layer_name(l, ("attn." + info.name).c_str());
}

}  // namespace

Transformer::Transformer(const ModelConfig& config) : config_(config) {
    config_.validate();
    attention_param_infos_ = attention_param_infos(config_.attention, config_.n_heads, config_.hs());
    params_ = param_table(config_);
    for (const auto& p : params_) num_params_ += p.numel;
    weights_ = Tensor({static_cast<int64_t>(num_params_)});
    quantized_infos_ = quantized_table(config_);
    for (const QuantizedInfo& q : quantized_infos_) quantized_.emplace_back(q.count, q.rows, q.cols);
    if (config_.positions == PositionKind::sinusoidal) {
        sinusoidal_ = Tensor({config_.position_rows(), config_.d_model});
        sinusoidal_positions(sinusoidal_.data(), config_.position_rows(), config_.d_model);
        sinusoidal_rows_ = config_.position_rows();
    }
}

std::vector<ParamInfo> Transformer::param_table(const ModelConfig& c) {
    const int C = c.d_model, F = c.ff(), HS = c.hs();
    std::vector<ParamInfo> params;
    size_t offset = 0;
    auto add = [&](std::string name, Shape shape, bool decay) {
        ParamInfo p;
        p.name = std::move(name);
        p.numel = static_cast<size_t>(shape_numel(shape));
        p.shape = std::move(shape);
        p.offset = offset;
        p.decay = decay;
        offset += p.numel;
        params.push_back(std::move(p));
    };
    const bool ln = c.norm == NormKind::layernorm;
    auto add_norm = [&](const std::string& prefix) {
        if (!c.norm_affine) return;
        add(prefix + ".weight", {C}, false);
        if (ln) add(prefix + ".bias", {C}, false);
    };
    // pre and post both have one norm per sub-layer: on its input (pre) or on the residual sum (post)
    const bool sublayer_norms = c.norms_sublayer_inputs() || c.norm_placement == NormPlacement::post;
    add("embed.tokens", {c.vocab_size, C}, false);
    if (c.positions == PositionKind::learned) add("embed.positions", {c.position_rows(), C}, false);
    if (c.type_vocab_size > 0) add("embed.token_types", {c.type_vocab_size, C}, false);
    if (c.embed_norm) add_norm("embed.norm");
    if (c.attention.uses_sink_token()) add("embed.sink_token", {C}, false);
    // T5 shares one bucket table by all layers (computed in its first layer and passed down)
    if (c.positions == PositionKind::relative) add("embed.relative_bias", {kRelativeBuckets, c.n_heads}, false);
    const std::vector<AttentionParamInfo> design_tensors = attention_param_infos(c.attention, c.n_heads, HS);
    for (int l = 0; l < c.n_layers; ++l) {
        if (sublayer_norms) add_norm(layer_name(l, "attn_norm"));
        // q, k, v back to back so that one GEMM computes all three
        add(layer_name(l, "attn.wq"), {c.n_heads * HS, C}, true);
        add(layer_name(l, "attn.wk"), {c.n_kv_heads * HS, C}, true);
        add(layer_name(l, "attn.wv"), {c.n_kv_heads * HS, C}, true);
        if (c.has_qkv_bias()) {
            add(layer_name(l, "attn.bq"), {c.n_heads * HS}, false);
            add(layer_name(l, "attn.bk"), {c.n_kv_heads * HS}, false);
            add(layer_name(l, "attn.bv"), {c.n_kv_heads * HS}, false);
        }
        if (c.qk_norm != QkNorm::none) {
            const bool per_head = c.qk_norm == QkNorm::per_head;
            add(layer_name(l, "attn.q_norm.weight"), {per_head ? HS : c.n_heads * HS}, false);
            add(layer_name(l, "attn.k_norm.weight"), {per_head ? HS : c.n_kv_heads * HS}, false);
        }
        for (const AttentionParamInfo& info : design_tensors)
            add(design_tensor_name(l, info), Shape(info.shape.begin(), info.shape.end()), false);
        if (c.attention.gate != GateKind::none)
            add(layer_name(l, "attn.w_gate"), {output_gate_width(c.attention.gate, c.n_heads, HS), C}, true);
        add(layer_name(l, "attn.wo"), {C, c.n_heads * HS}, true);
        if (c.has_out_bias()) add(layer_name(l, "attn.bo"), {C}, false);
        if (c.norms_sublayer_outputs()) add_norm(layer_name(l, "attn_out_norm"));
        if (sublayer_norms) add_norm(layer_name(l, "mlp_norm"));
        if (c.moe()) {
            // the experts' matrices are quantized (quantized_table); their biases are parameters
            add(layer_name(l, "mlp.router"), {c.moe_experts, C}, true);
            add(layer_name(l, "mlp.router_bias"), {c.moe_experts}, false);
            add(layer_name(l, "mlp.experts.b_up"), {c.moe_experts, c.up_width()}, false);
            add(layer_name(l, "mlp.experts.b_down"), {c.moe_experts, C}, false);
        } else {
            if (c.gated_mlp()) add(layer_name(l, "mlp.w_gate"), {F, C}, true);  // gate then up: one GEMM
            add(layer_name(l, "mlp.w_up"), {F, C}, true);
            if (c.linear_bias && !c.gated_mlp()) add(layer_name(l, "mlp.b_up"), {F}, false);
            add(layer_name(l, "mlp.w_down"), {C, F}, true);
            if (c.linear_bias) add(layer_name(l, "mlp.b_down"), {C}, false);
        }
        if (c.norms_sublayer_outputs()) add_norm(layer_name(l, "mlp_out_norm"));
    }
    if (c.head_transform) {
        add("head.transform.weight", {C, C}, true);
        add("head.transform.bias", {C}, false);
    }
    add_norm("final_norm");
    if (!c.tied_embeddings) add("lm_head", {c.vocab_size, C}, true);
    if (c.head_bias) add("head.bias", {c.vocab_size}, false);
    return params;
}

std::vector<QuantizedInfo> Transformer::quantized_table(const ModelConfig& c) {
    std::vector<QuantizedInfo> table;
    if (!c.moe()) return table;
    for (int l = 0; l < c.n_layers; ++l) {
        table.push_back({layer_name(l, "mlp.experts.w_up"), c.moe_experts, c.up_width(), c.d_model});
        table.push_back({layer_name(l, "mlp.experts.w_down"), c.moe_experts, c.d_model, c.ff()});
    }
    return table;
}

Mxfp4Matrices& Transformer::quantized(std::string_view name) {
    for (size_t i = 0; i < quantized_infos_.size(); ++i)
        if (quantized_infos_[i].name == name) return quantized_[i];
    fail("model", "the model has no quantized weight '{}'", name);
}

size_t Transformer::quantized_bytes() const {
    size_t bytes = 0;
    for (const Mxfp4Matrices& q : quantized_) bytes += q.bytes();
    return bytes;
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
    return gradients() + p->offset;
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
    v.q_norm_w = at("attn.q_norm.weight");
    v.k_norm_w = at("attn.k_norm.weight");
    v.attn_gate = at("attn.w_gate");
    v.wo = at("attn.wo");
    v.bo = at("attn.bo");
    v.attn_out_norm_w = at("attn_out_norm.weight");
    v.attn_out_norm_b = at("attn_out_norm.bias");
    v.mlp_norm_w = at("mlp_norm.weight");
    v.mlp_norm_b = at("mlp_norm.bias");
    v.w_up = config_.gated_mlp() ? at("mlp.w_gate") : at("mlp.w_up");
    v.b_up = at("mlp.b_up");
    v.w_down = at("mlp.w_down");
    v.b_down = at("mlp.b_down");
    v.mlp_out_norm_w = at("mlp_out_norm.weight");
    v.mlp_out_norm_b = at("mlp_out_norm.bias");
    if (config_.moe()) {
        v.router = at("mlp.router");
        v.router_bias = at("mlp.router_bias");
        v.expert_b_up = at("mlp.experts.b_up");
        v.expert_b_down = at("mlp.experts.b_down");
        v.expert_w_up = &quantized_[2 * l];  // quantized_table's order
        v.expert_w_down = &quantized_[2 * l + 1];
    }
    return v;
}

void Transformer::init_weights(uint64_t seed) {
    Rng rng(seed);
    const float residual_std = config_.init_std / std::sqrt(2.0f * config_.n_layers);
    for (const auto& p : params_) {
        float* w = weights_.data() + p.offset;
        const bool is_norm = p.name.find("norm.") != std::string::npos;
        const bool is_bias = (p.shape.size() == 1 && !is_norm) || p.name.find(".experts.b_") != std::string::npos;
        if (is_norm && p.name.ends_with(".weight")) {
            // the identity: weight + offset = 1
            for (size_t i = 0; i < p.numel; ++i) w[i] = 1.0f - config_.norm_weight_offset;
        } else if (is_norm || is_bias) {
            for (size_t i = 0; i < p.numel; ++i) w[i] = 0.0f;
        } else {
            const bool residual_out = p.name.ends_with("attn.wo") || p.name.ends_with("mlp.w_down");
            const float std = residual_out ? residual_std : config_.init_std;
            for (size_t i = 0; i < p.numel; ++i) w[i] = static_cast<float>(rng.normal()) * std;
        }
    }
    // The design's tensors by their own conventions (attention.h), from a stream of their own so
    // that the other weights of a seed are the same for every design.
    Rng design_rng(seed ^ 0xa77e5171ULL);
    for (int l = 0; l < config_.n_layers; ++l)
        for (const AttentionParamInfo& info : attention_param_infos_)
            init_attention_param(param(design_tensor_name(l, info)), info, design_rng, config_.init_std,
                                 config_.max_seq_len);
    // MXFP4 experts: uniform codes (E2M1 values of RMS 2.93) with the power-of-two scale nearest to
    // init_std / 2.93, from a stream of their own like the design's tensors
    Rng expert_rng(seed ^ 0xe4be27ULL);
    const int scale_exponent = static_cast<int>(std::lround(std::log2(config_.init_std / 2.926)));
    for (Mxfp4Matrices& q : quantized_)
        for (int m = 0; m < q.count(); ++m)
            for (int r = 0; r < q.rows(); ++r) {
                uint8_t* codes = q.row_blocks(m, r);
                for (int i = 0; i < q.blocks_per_row() * kMxfp4BlockBytes; ++i)
                    codes[i] = static_cast<uint8_t>(expert_rng.below(256));
                std::fill(q.row_scales(m, r), q.row_scales(m, r) + q.blocks_per_row(),
                          static_cast<uint8_t>(127 + scale_exponent));
            }
    if (config_.attention.uses_sink_token()) {
        // an embedding row, N(0, init_std) like the token embeddings
        float* sink = param("embed.sink_token");
        for (int ch = 0; ch < config_.d_model; ++ch)
            sink[ch] = static_cast<float>(design_rng.normal()) * config_.init_std;
    }
}

AttentionParams Transformer::attention_params(int l) {
    AttentionParams p;
    for (const AttentionParamInfo& info : attention_param_infos_) p.*info.value = param(design_tensor_name(l, info));
    return p;
}

AttentionParamGrads Transformer::attention_param_grads(int l) {
    AttentionParamGrads g;
    for (const AttentionParamInfo& info : attention_param_infos_) g.*info.grad = grad(design_tensor_name(l, info));
    return g;
}

ScoreBias Transformer::score_bias() {
    switch (config_.positions) {
        case PositionKind::alibi: return {ScoreBiasKind::alibi};
        case PositionKind::relative: return {ScoreBiasKind::relative, param("embed.relative_bias")};
        default: return {};
    }
}

AttentionMask Transformer::attention_mask(int l, int sink) const {
    AttentionMask mask{config_.window_of(l), config_.prefix > 0 ? config_.prefix + sink : 0, acts_.first_keys};
    mask.causal = config_.causal;
    mask.key_lengths = acts_.lengths.empty() ? nullptr : acts_.lengths.data();
    return mask;
}

float* Transformer::gradients() {
    if (grads_.empty()) grads_ = Tensor({static_cast<int64_t>(num_params_)});
    return grads_.data();
}

void Transformer::zero_grad() {
    gradients();
    grads_.zero();
}

void Transformer::ensure_activations(int B, int T, bool training, AttentionKernel kernel) {
    // T: the positions the blocks see (the sink token included)
    Activations& a = acts_;
    const int copies = training ? config_.n_layers : 1;
    // With one layer both modes keep one copy, but only training buffers hold dlogits.
    if (a.B == B && a.T == T && a.layer_copies == copies && a.kernel == kernel && (!training || !a.dlogits.empty()))
        return;
    const int64_t N = static_cast<int64_t>(B) * T, C = config_.d_model, F = config_.ff();
    const int64_t up_width = config_.up_width();
    const int64_t NH = config_.n_heads, HSO = NH * config_.hs();
    a = Activations{};
    a.B = B;
    a.T = T;
    a.layer_copies = copies;
    a.kernel = kernel;
    a.resid = Tensor({training ? copies + 1 : 2, N, C});
    a.norm1 = Tensor({copies, N, C});
    a.norm1_mean = Tensor({copies, N});
    a.norm1_rstd = Tensor({copies, N});
    a.qkv = Tensor({copies, N, config_.qkv_width()});
    if (kernel == AttentionKernel::materialised) {
        a.attw = Tensor({copies, B, NH, T, T});
        const AttentionSavedNeeds needs = attention_saved_needs(config_.attention);
        if (needs.slot_weights) a.slot_weights = Tensor({copies, B, NH, T});
        if (needs.row_sums) a.row_sums = Tensor({copies, B, NH, T});
        if (needs.scores) a.scores = Tensor({copies, B, NH, T, T});
    } else if (training) {
        const AttentionRowStatsNeeds needs = attention_row_stats_needs(config_.attention);
        if (needs.shift) a.row_shift = Tensor({copies, B, NH, T});
        if (needs.sum) a.row_sum = Tensor({copies, B, NH, T});
        if (needs.argmax) a.row_argmax.assign(static_cast<size_t>(copies) * B * NH * T, 0);
    } else {
        a.attn_stats = Tensor({3, B, NH, T});
    }
    if (config_.attention.gate != GateKind::none) {
        a.gate_logits = Tensor({copies, N, output_gate_width(config_.attention.gate, config_.n_heads, config_.hs())});
        a.gated = Tensor({copies, N, HSO});
    }
    if (config_.attention.uses_sink_token()) a.head_in = Tensor({static_cast<int64_t>(B) * (T - 1), C});
    if (config_.head_transform) a.head_act = Tensor({N, C});
    a.attout = Tensor({copies, N, HSO});
    a.mid = Tensor({copies, N, C});
    a.norm2 = Tensor({copies, N, C});
    a.norm2_mean = Tensor({copies, N});
    a.norm2_rstd = Tensor({copies, N});
    if (config_.moe()) {  // the experts keep their own scratch
        a.router_logits = Tensor({N, config_.moe_experts});
        a.routing = Tensor({N, config_.moe_experts});
    } else {
        a.mlp_pre = Tensor({copies, N, up_width});
        a.mlp_act = Tensor({copies, N, F});
    }
    a.scratch = Tensor({N, C});
    if (config_.norms_sublayer_outputs()) {
        a.out_norm = Tensor({N, C});
        a.out_norm_mean = Tensor({N});
        a.out_norm_rstd = Tensor({N});
    }
    if (config_.qk_norm != QkNorm::none) {
        a.qk_rows = Tensor({N * NH, config_.hs()});
        a.qk_rstd = Tensor({N * NH});
    }
    a.final_norm = Tensor({N, C});
    a.final_mean = Tensor({N});
    a.final_rstd = Tensor({N});
    a.dlogits = training ? Tensor({N, config_.vocab_size}) : Tensor();
    a.losses = Tensor({N});
}

const RopeTable& Transformer::rope_table(int last_position) {
    const ModelConfig& c = config_;
    const bool long_factors = c.rope_long_from > 0 && last_position >= c.rope_long_from;
    RopeTable& table = long_factors ? rope_long_ : rope_;
    if (last_position >= table.positions) {
        // Grown on demand (doubling): a long-context model would otherwise hold its whole table. The
        // angles are a formula, so positions beyond max_seq_len extrapolate (check_positions).
        const int rows = std::max(2 * (last_position + 1), 256);
        const std::vector<double>& given = long_factors ? c.rope_long_inv_freq : c.rope_inv_freq;
        table = RopeTable::build(given.empty() ? RopeTable::default_inv_freq(c.rope_dim(), c.rope_theta) : given, rows,
                                 c.rope_attention_factor);
    }
    return table;
}

AttentionSaved Transformer::Activations::saved_attention(int copy) {
    auto at = [&](Tensor& t) { return t.empty() ? nullptr : t.data() + copy * (t.numel() / layer_copies); };
    // Training keeps a copy per layer, zeroed when allocated, and only that layer's mask writes it.
    // Inference shares one copy among layers whose masks may differ (sliding and global windows).
    return {at(attw), at(slot_weights), at(row_sums), at(scores), training};
}

AttentionRowStats Transformer::Activations::row_stats(int copy) {
    auto at = [&](Tensor& t) { return t.empty() ? nullptr : t.data() + copy * (t.numel() / layer_copies); };
    const long rows = row_argmax.size() / layer_copies;
    return {at(row_shift), at(row_sum), row_argmax.empty() ? nullptr : row_argmax.data() + copy * rows};
}

namespace {

// Norm dispatch: the config chooses LayerNorm or RMSNorm (and their weights' convention); blocks
// call these two. Weights are null for non-parametric norms.
void norm_forward(const ModelConfig& c, float* out, float* mean, float* rstd, const float* inp, const float* w,
                  const float* b, int N) {
    if (c.norm == NormKind::layernorm)
        layernorm_forward(out, mean, rstd, inp, w, b, N, c.d_model, c.norm_eps);
    else
        rmsnorm_forward(out, rstd, inp, w, N, c.d_model, c.norm_eps, c.norm_weight_offset);
}

void norm_backward(const ModelConfig& c, float* dinp, float* dw, float* db, const float* dout, const float* inp,
                   const float* w, const float* mean, const float* rstd, int N) {
    if (c.norm == NormKind::layernorm)
        layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, c.d_model);
    else
        rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, c.d_model, c.norm_weight_offset);
}

// kind: the blocks' c.mlp, or the masked-LM head's c.head_transform (c gives swiglu_clamped's constants)
void mlp_activation_forward(const ModelConfig& c, MlpKind kind, float* act, const float* pre, int N, int F) {
    switch (kind) {
        case MlpKind::gelu: gelu_forward(act, pre, static_cast<long>(N) * F); break;
        case MlpKind::gelu_erf: gelu_erf_forward(act, pre, static_cast<long>(N) * F); break;
        case MlpKind::relu: relu_forward(act, pre, static_cast<long>(N) * F); break;
        case MlpKind::swiglu: glu_forward(act, pre, N, F, GateActivation::silu); break;
        case MlpKind::geglu: glu_forward(act, pre, N, F, GateActivation::gelu); break;
        case MlpKind::swiglu_clamped: clamped_swiglu_forward(act, pre, N, F, c.swiglu_limit, c.swiglu_alpha); break;
    }
}

// dpre = act'(pre) dact, written over dpre
void mlp_activation_backward(MlpKind kind, float* dpre, const float* pre, const float* dact, int N, int F) {
    const long n = static_cast<long>(N) * F;
    constexpr GradWrite write = GradWrite::overwrite;
    switch (kind) {
        case MlpKind::gelu: gelu_backward(dpre, pre, dact, n, write); break;
        case MlpKind::gelu_erf: gelu_erf_backward(dpre, pre, dact, n, write); break;
        case MlpKind::relu: relu_backward(dpre, pre, dact, n, write); break;
        case MlpKind::swiglu: glu_backward(dpre, pre, dact, N, F, GateActivation::silu, write); break;
        case MlpKind::geglu: glu_backward(dpre, pre, dact, N, F, GateActivation::gelu, write); break;
        case MlpKind::swiglu_clamped: SINKLAB_ASSERT(false);  // inference only (inference_only_features)
    }
}

}  // namespace

const float* Transformer::position_table() {
    // RoBERTa's positions start at row padding_idx + 1 (position_offset): position p reads row p + offset
    const long offset = static_cast<long>(config_.position_offset) * config_.d_model;
    if (config_.positions == PositionKind::learned) return param("embed.positions") + offset;
    if (config_.positions == PositionKind::sinusoidal) return sinusoidal_.data() + offset;
    return nullptr;
}

void Transformer::check_positions(int last_position) {
    const ModelConfig& c = config_;
    // RoBERTa's table starts its positions at row position_offset
    SINKLAB_CHECK(c.positions != PositionKind::learned || last_position + c.position_offset < c.position_rows(),
                  "model", "position {} is beyond the model's learned positions (max_seq_len {}): a learned table has no row "
                  "to extrapolate from",
                  last_position - (c.attention.uses_sink_token() ? 1 : 0), c.max_seq_len);
    if (c.positions == PositionKind::sinusoidal && last_position >= sinusoidal_rows_) {
        // the sinusoids are a formula: the table grows (doubling) to the positions asked for
        sinusoidal_rows_ = std::max(2 * (last_position + 1), c.position_rows());
        sinusoidal_ = Tensor({sinusoidal_rows_, c.d_model});
        sinusoidal_positions(sinusoidal_.data(), sinusoidal_rows_, c.d_model);
    }
}

void Transformer::embed(float* out, const int32_t* tokens, const int* positions, const int* token_types, int B, int T,
                        bool sink_token) {
    const ModelConfig& c = config_;
    const int N = B * T;
    // encoders normalise the sum: it is built in the scratch rows first
    float* sum = c.embed_norm ? acts_.scratch.data() : out;
    embedding_forward(sum, tokens, param("embed.tokens"), N, c.d_model, c.embed_scale);
    if (sink_token) sink_token_forward(sum, param("embed.sink_token"), B, T, c.d_model);
    if (const float* table = position_table()) position_add_forward(sum, table, positions, N, c.d_model);
    if (c.type_vocab_size > 0) {
        SINKLAB_CHECK(token_types, "model", "a model with token-type embeddings needs the rows' token types");
        position_add_forward(sum, param("embed.token_types"), token_types, N, c.d_model);  // rows of the type table
    }
    if (c.embed_norm) {
        const bool affine = find("embed.norm.weight") != nullptr, has_bias = find("embed.norm.bias") != nullptr;
        norm_forward(c, out, acts_.final_mean.data(), acts_.final_rstd.data(), sum,
                     affine ? param("embed.norm.weight") : nullptr, has_bias ? param("embed.norm.bias") : nullptr, N);
    }
}

Transformer::BlockBuffers Transformer::block_buffers(int l) {
    Activations& a = acts_;
    // Training keeps every layer's activations for backward (copy l; the residual stream's rows l
    // and l + 1); inference reuses copy 0, the residual stream alternating between its two rows.
    const int copy = a.training ? l : 0;
    const long N = static_cast<long>(a.B) * a.T;
    auto at = [&](Tensor& t) { return t.empty() ? nullptr : t.data() + copy * (t.numel() / a.layer_copies); };
    BlockBuffers buf;
    buf.x = a.resid.data() + (a.training ? l : l % 2) * N * config_.d_model;
    buf.out = a.resid.data() + (a.training ? l + 1 : (l + 1) % 2) * N * config_.d_model;
    buf.norm1 = at(a.norm1);
    buf.norm1_mean = at(a.norm1_mean);
    buf.norm1_rstd = at(a.norm1_rstd);
    buf.qkv = at(a.qkv);
    buf.attout = at(a.attout);
    buf.gate_logits = at(a.gate_logits);
    buf.gated = at(a.gated);
    buf.mid = at(a.mid);
    buf.norm2 = at(a.norm2);
    buf.norm2_mean = at(a.norm2_mean);
    buf.norm2_rstd = at(a.norm2_rstd);
    buf.mlp_pre = at(a.mlp_pre);
    buf.mlp_act = at(a.mlp_act);
    buf.saved = a.saved_attention(copy);
    if (a.training) buf.row_stats = a.row_stats(copy);
    return buf;
}

void Transformer::block_forward(int l, const BlockBuffers& buf, int N, const int* positions, const RopeTable* rope,
                                const AttendFn& attend, TensorObserver* obs) {
    const ModelConfig& c = config_;
    Activations& a = acts_;
    const Layer w = layer_view(weights_.data(), l);
    const int C = c.d_model, F = c.ff(), QKV = c.qkv_width(), HS = c.hs();
    const int up_width = c.up_width();
    const long NC = static_cast<long>(N) * C;

    const bool post = c.norm_placement == NormPlacement::post;

    // A sub-layer's projection joins the residual: out = residual + [norm'](in W^T + b); post-norm:
    // out = norm(residual + in W^T + b), the sum kept in pn.sum. Without a norm between the
    // projection and the sum, the product adds the residual itself.
    struct PostNorm {
        float *sum, *mean, *rstd;
        const float *w, *b;
    };
    // join_residual does the same with a projection already computed (the experts' output).
    const auto join_residual = [&](float* out, const float* proj, const float* residual, const float* out_norm_w,
                                   const float* out_norm_b, const PostNorm& pn) {
        if (c.norms_sublayer_outputs()) {
            norm_forward(c, a.out_norm.data(), a.out_norm_mean.data(), a.out_norm_rstd.data(), proj, out_norm_w,
                         out_norm_b, N);
            proj = a.out_norm.data();
        }
        if (post) {
            add_forward(pn.sum, residual, proj, NC);
            norm_forward(c, out, pn.mean, pn.rstd, pn.sum, pn.w, pn.b, N);
        } else {
            add_forward(out, residual, proj, NC);
        }
    };
    const auto project_into_residual = [&](float* out, const float* in, const float* weight, const float* bias, int K,
                                           const float* residual, const float* out_norm_w, const float* out_norm_b,
                                           const PostNorm& pn) {
        if (!post && !c.norms_sublayer_outputs()) {
            matmul_forward(out, in, weight, bias, N, K, C, residual);
            return;
        }
        float* proj = a.scratch.data();  // (N, C)
        matmul_forward(proj, in, weight, bias, N, K, C);
        join_residual(out, proj, residual, out_norm_w, out_norm_b, pn);
    };

    // attention sub-block: mid = x + [norm'] Wo gate(attn(rope(Wqkv [norm1](x)))); post: mid = norm1(x + ...)
    const float* attn_in = buf.x;
    if (c.norms_sublayer_inputs()) {
        norm_forward(c, buf.norm1, buf.norm1_mean, buf.norm1_rstd, buf.x, w.attn_norm_w, w.attn_norm_b, N);
        attn_in = buf.norm1;
    }
    matmul_forward(buf.qkv, attn_in, w.wqkv, w.bqkv, N, C, QKV);
    if (c.qk_norm != QkNorm::none) {
        // per head: each head's HS floats; full: all of a row's query (key) heads together
        const bool per_head = c.qk_norm == QkNorm::per_head;
        const int q_width = c.n_heads * HS, k_width = c.n_kv_heads * HS;
        qk_rmsnorm_forward(buf.qkv, a.qk_rstd.data(), a.qk_rows.data(), w.q_norm_w, N, QKV, 0, q_width,
                           per_head ? HS : q_width, c.norm_eps, c.norm_weight_offset);
        qk_rmsnorm_forward(buf.qkv, a.qk_rstd.data(), a.qk_rows.data(), w.k_norm_w, N, QKV, q_width, k_width,
                           per_head ? HS : k_width, c.norm_eps, c.norm_weight_offset);
    }
    if (rope) {
        rope_forward(buf.qkv, positions, N, c.n_heads, HS, QKV, *rope);
        rope_forward(buf.qkv + c.n_heads * HS, positions, N, c.n_kv_heads, HS, QKV, *rope);
    }
    if (obs) obs->observe(Tap::qkv, l, buf.qkv, {N, QKV});
    attend(l, buf);
    const float* heads = buf.attout;
    if (c.attention.gate != GateKind::none) {
        // Qwen3-Next / Qiu et al.: the gate reads the sub-layer's (normed) input, gates the heads before Wo
        const int G = output_gate_width(c.attention.gate, c.n_heads, HS);
        matmul_forward(buf.gate_logits, attn_in, w.attn_gate, nullptr, N, C, G);
        output_gate_forward(buf.gated, buf.attout, buf.gate_logits, N, c.n_heads, HS, c.attention.gate);
        heads = buf.gated;
    }
    if (obs) obs->observe(Tap::attn_out, l, heads, {N, c.n_heads * HS});
    project_into_residual(buf.mid, heads, w.wo, w.bo, c.n_heads * HS, buf.x, w.attn_out_norm_w, w.attn_out_norm_b,
                          {buf.norm1, buf.norm1_mean, buf.norm1_rstd, w.attn_norm_w, w.attn_norm_b});

    // MLP sub-block: out = mid + [norm'] W_down act(W_up [norm2](mid)); with a parallel residual
    // the MLP reads the block input instead, so out = x + attn + mlp; post: out = norm2(mid + mlp(mid)).
    const float* mlp_src = c.parallel_residual ? buf.x : buf.mid;
    const float* mlp_in = mlp_src;
    if (c.norms_sublayer_inputs()) {
        norm_forward(c, buf.norm2, buf.norm2_mean, buf.norm2_rstd, mlp_src, w.mlp_norm_w, w.mlp_norm_b, N);
        mlp_in = buf.norm2;
    }
    const PostNorm mlp_post{buf.norm2, buf.norm2_mean, buf.norm2_rstd, w.mlp_norm_w, w.mlp_norm_b};
    if (c.moe()) {
        // a mixture of experts instead of one MLP (ops/moe.h): its output joins the residual
        float* experts_out = a.scratch.data();  // (N, C)
        moe_forward({experts_out, a.router_logits.data(), a.routing.data()}, mlp_in,
                    {w.router, w.router_bias, w.expert_w_up, w.expert_b_up, w.expert_w_down, w.expert_b_down},
                    {N, C, F, c.moe_experts, c.moe_top_k, up_width},
                    [&](float* act, const float* pre, int n) { mlp_activation_forward(c, c.mlp, act, pre, n, F); });
        if (obs) obs->observe(Tap::router_logits, l, a.router_logits.data(), {N, c.moe_experts});
        if (obs) obs->observe(Tap::router_weights, l, a.routing.data(), {N, c.moe_experts});
        join_residual(buf.out, experts_out, buf.mid, w.mlp_out_norm_w, w.mlp_out_norm_b, mlp_post);
    } else {
        matmul_forward(buf.mlp_pre, mlp_in, w.w_up, w.b_up, N, C, up_width);
        mlp_activation_forward(c, c.mlp, buf.mlp_act, buf.mlp_pre, N, F);
        project_into_residual(buf.out, buf.mlp_act, w.w_down, w.b_down, F, buf.mid, w.mlp_out_norm_w,
                              w.mlp_out_norm_b, mlp_post);
    }
    if (obs) obs->intervene(Tap::block_out, l, buf.out, {N, C});
    if (obs) obs->observe(Tap::block_out, l, buf.out, {N, C});
}

void Transformer::head_forward(const float* last, int N, TensorObserver* obs) {
    const ModelConfig& c = config_;
    Activations& a = acts_;
    const ParamInfo* w = find("final_norm.weight");
    const ParamInfo* b = find("final_norm.bias");
    if (c.head_transform) {
        // the masked-LM head's transform (BERT's cls.predictions.transform): act(last W^T + b), whose
        // norm is the final norm below; the scratch rows hold the pre-activation
        matmul_forward(a.scratch.data(), last, param("head.transform.weight"), param("head.transform.bias"), N,
                       c.d_model, c.d_model);
        mlp_activation_forward(c, *c.head_transform, a.head_act.data(), a.scratch.data(), N, c.d_model);
        last = a.head_act.data();
    }
    norm_forward(c, a.final_norm.data(), a.final_mean.data(), a.final_rstd.data(), last,
                 w ? param("final_norm.weight") : nullptr, b ? param("final_norm.bias") : nullptr, N);
    if (a.logits.numel() != static_cast<int64_t>(N) * c.vocab_size) a.logits = Tensor({N, c.vocab_size});
    if (obs) obs->observe(Tap::final_norm, -1, a.final_norm.data(), {N, c.d_model});
    const float* head = c.tied_embeddings ? param("embed.tokens") : param("lm_head");
    float* logits = a.logits.data();
    matmul_forward(logits, a.final_norm.data(), head, c.head_bias ? param("head.bias") : nullptr, N, c.d_model,
                   c.vocab_size);
    if (c.final_logit_softcap > 0) softcap_forward(logits, static_cast<long>(N) * c.vocab_size, c.final_logit_softcap);
    if (obs) obs->observe(Tap::logits, -1, logits, {N, c.vocab_size});
}

void Transformer::set_positions_and_padding(const ForwardOptions& options, int B, int T, int sink) {
    const ModelConfig& c = config_;
    Activations& a = acts_;
    const int TS = T + sink, N = B * TS;
    a.token_types.clear();
    if (c.type_vocab_size > 0) {
        a.token_types.assign(N, 0);  // the sink rows have type 0
        if (options.token_types)
            for (int i = 0; i < B * T; ++i) {
                SINKLAB_CHECK(options.token_types[i] >= 0 && options.token_types[i] < c.type_vocab_size, "model",
                              "token type {} at position {} is outside the model's types 0..{}", options.token_types[i],
                              i, c.type_vocab_size - 1);
                a.token_types[static_cast<long>(i / T) * TS + sink + i % T] = options.token_types[i];
            }
    } else {
        SINKLAB_CHECK(!options.token_types, "model", "token types given to a model without token-type embeddings");
    }
    // Padding: its keys get weight 0 (the mask's key lengths).
    a.lengths.clear();
    if (options.lengths) {
        SINKLAB_CHECK(!sink && c.layer_windows.empty() && c.window == 0, "model",
                      "padded batches (lengths) are not supported with a sliding window or a sink token");
        for (int b = 0; b < B; ++b)
            SINKLAB_CHECK(options.lengths[b] >= 1 && options.lengths[b] <= T, "model",
                          "sequence {} has length {}; lengths must lie in 1..{}", b, options.lengths[b], T);
        a.lengths.assign(options.lengths, options.lengths + B);
    }
    a.positions.resize(N);
    for (int i = 0; i < N; ++i) a.positions[i] = i % TS;
    if (c.padding_id) {
        // RoBERTa (create_position_ids_from_input_ids): padding tokens read row padding_idx and do
        // not count; the position rows are read at position + position_offset = padding_idx + 1 + count
        for (int b = 0; b < B; ++b) {
            int counted = 0;
            for (int t = 0; t < TS; ++t) {
                const long i = static_cast<long>(b) * TS + t;
                a.positions[i] = a.tokens[i] == *c.padding_id ? *c.padding_id - c.position_offset : counted++;
            }
        }
    }
}

double Transformer::forward(const int32_t* tokens, const int32_t* targets, int B, int T,
                            const ForwardOptions& options) {
    const ModelConfig& c = config_;
    SINKLAB_CHECK(B > 0 && T > 0, "model", "empty batch (B={}, T={})", B, T);
    SINKLAB_CHECK(options.logits || !targets, "model", "a forward without logits has no loss: pass no targets");
    SINKLAB_CHECK(!options.training || !options.first_keys.active(), "model",
                  "attention interventions on the first keys are for inference (training = false)");
    options.first_keys.validate();
    // sink_token: every sequence runs as [sink, tokens], the sink at position 0 (StreamingLLM's
    // prepended token); the blocks see TS = T + 1 positions, the head and the loss the T tokens.
    const int sink = c.attention.uses_sink_token() ? 1 : 0, TS = T + sink;
    check_positions(TS - 1);
    ensure_activations(B, TS, options.training, resolve_attention_kernel(options.attention_kernel, TS));
    Activations& a = acts_;
    const int N = B * TS, C = c.d_model, HS = c.hs();
    a.training = options.training;
    a.sink = sink;
    a.first_keys = options.first_keys;
    for (int i = 0; i < B * T; ++i)
        SINKLAB_CHECK(tokens[i] >= 0 && tokens[i] < c.vocab_size, "model", "token id {} at position {} is outside the vocabulary (size {})",
                      tokens[i], i, c.vocab_size);
    // The sink rows hold token 0 as a placeholder: embed overwrites their embedding with the sink token.
    a.tokens.assign(N, 0);
    for (int b = 0; b < B; ++b)
        std::copy(tokens + static_cast<long>(b) * T, tokens + static_cast<long>(b + 1) * T,
                  a.tokens.begin() + static_cast<long>(b) * TS + sink);
    a.has_targets = targets != nullptr;
    if (targets) a.targets.assign(targets, targets + B * T);
    set_positions_and_padding(options, B, T, sink);
    a.rope = c.positions == PositionKind::rope ? &rope_table(TS - 1) : nullptr;
    TensorObserver* obs = options.observer;
    const AttentionDims dims{B, TS, c.n_heads, c.n_kv_heads, HS};

    // token (and absolute position) embeddings; the sink token first in every sequence
    embed(a.resid.data(), a.tokens.data(), a.positions.data(), a.token_types.empty() ? nullptr : a.token_types.data(), B,
          TS, sink);
    if (obs) obs->observe(Tap::embed, -1, a.resid.data(), {N, C});

    const ScoreBias bias = score_bias();
    const AttendFn attend = [&](int l, const BlockBuffers& buf) {
        const AttentionMask mask = attention_mask(l, sink);
        const AttentionInputs in{buf.qkv, bias};
        if (a.kernel == AttentionKernel::blockwise) {
            // Training keeps the row statistics for backward; inference taps the weights' statistics
            // for an observer (the first attention_columns keys' column sums).
            AttentionTaps taps;
            const long rows = static_cast<long>(B) * c.n_heads * TS;
            if (obs && !a.training) {
                taps.column_sums = a.attn_stats.data();  // (B, NH, columns)
                taps.columns = std::clamp(options.attention_columns, 1, TS);
                taps.row_entropy = a.attn_stats.data() + rows;  // (B, NH, TS)
                if (c.attention.has_slot()) taps.slot_weights = a.attn_stats.data() + 2 * rows;  // (B, NH, TS)
                taps.proxy = sink_metric_proxy(c.attention);
            }
            blockwise_attention_forward(buf.attout, buf.row_stats, taps, in, attention_params(l), dims, c.attention,
                                        mask);
            if (taps.slot_weights) obs->observe(Tap::attn_slot_weights, l, taps.slot_weights, {B, c.n_heads, TS});
            if (taps.column_sums) obs->observe(Tap::attn_column_sums, l, taps.column_sums, {B, c.n_heads, taps.columns});
            if (taps.row_entropy) obs->observe(Tap::attn_row_entropy, l, taps.row_entropy, {B, c.n_heads, TS});
            return;
        }
        const AttentionSaved& saved = buf.saved;  // (B, NH, TS, TS) weights and the rest
        attention_forward(buf.attout, saved, in, attention_params(l), dims, c.attention, mask);
        if (obs && saved.slot_weights) obs->observe(Tap::attn_slot_weights, l, saved.slot_weights, {B, c.n_heads, TS});
        if (obs) obs->observe(Tap::attn_weights, l, saved.weights, {B, c.n_heads, TS, TS});
    };

    for (int l = 0; l < c.n_layers; ++l) block_forward(l, block_buffers(l), N, a.positions.data(), a.rope, attend, obs);

    if (!options.logits) return 0.0;
    const float* last = a.resid.data() + static_cast<long>(a.training ? c.n_layers : c.n_layers % 2) * N * C;
    if (sink) {
        // the head reads the real tokens' rows only
        for (int b = 0; b < B; ++b)
            std::memcpy(a.head_in.data() + static_cast<long>(b) * T * C, last + (static_cast<long>(b) * TS + sink) * C,
                        sizeof(float) * T * C);
        last = a.head_in.data();
    }
    head_forward(last, B * T, obs);
    if (!targets) return 0.0;
    for (int i = 0; i < B * T; ++i)
        SINKLAB_CHECK(targets[i] < c.vocab_size, "model", "target id {} is outside the vocabulary", targets[i]);
    return cross_entropy_forward_backward(a.losses.data(), a.training ? a.dlogits.data() : nullptr, a.logits.data(),
                                          targets, B * T, c.vocab_size);
}

const float* Transformer::forward_step(const int32_t* tokens, const int* positions, int n, KVCache& cache,
                                       TensorObserver* obs) {
    const ModelConfig& c = config_;
    const AttentionSpec& spec = c.attention;
    SINKLAB_CHECK(n > 0, "model", "forward_step needs at least one token");
    SINKLAB_CHECK(c.causal, "model",
                  "this model is an encoder (bidirectional attention): it has no next-token steps over a KV cache");
    SINKLAB_CHECK(cache.layers() == c.n_layers && cache.row_width() == static_cast<long>(c.n_kv_heads) * c.hs(),
                  "model", "the KV cache was made for another model configuration");
    // sink_token: the first step of a cache puts the learned token first, at position 0, as every
    // training sequence had it; it stays in the cache as its row 0 and gives no logits.
    const int sink = spec.uses_sink_token() && cache.length() == 0 ? 1 : 0;
    const int rows = n + sink;  // the rows this step runs
    SINKLAB_CHECK(cache.length() + rows <= cache.capacity(), "model",
                  "the KV cache is full: it holds {} of {} tokens and {} more were given", cache.length(),
                  cache.capacity(), rows);
    SINKLAB_CHECK(c.prefix <= cache.length() + n, "model",
                  "a prefix-LM model needs its whole prefix ({} tokens) in the first step", c.prefix);
    ensure_activations(1, rows, false);  // before the tokens and positions: a new shape resets acts_
    Activations& a = acts_;
    a.tokens.assign(sink, 0);  // the sink row's placeholder token: embed writes the sink token over it
    a.positions.assign(sink, 0);
    for (int i = 0; i < n; ++i) {
        SINKLAB_CHECK(tokens[i] >= 0 && tokens[i] < c.vocab_size, "model",
                      "token id {} is outside the vocabulary (size {})", tokens[i], c.vocab_size);
        SINKLAB_CHECK(positions[i] >= (spec.uses_sink_token() ? 1 : 0), "model", "position {} is {}", positions[i],
                      spec.uses_sink_token() ? "below 1 (the sink token holds position 0)" : "negative");
        a.tokens.push_back(tokens[i]);
        a.positions.push_back(positions[i]);
    }
    // every key's position, the held rows' then the new ones': the keys are rotated and biased at them
    const std::vector<int>& key_positions = cache.key_positions_with(a.positions);
    const int last_position = *std::max_element(key_positions.begin(), key_positions.end());
    check_positions(last_position);
    a.training = false;
    a.has_targets = false;
    a.rope = c.positions == PositionKind::rope ? &rope_table(last_position) : nullptr;
    const int C = c.d_model, QKV = c.qkv_width(), HS = c.hs();
    const int first = cache.length(), keys = first + rows;
    if (step_weights_.numel() < static_cast<int64_t>(c.n_heads) * rows * keys)
        step_weights_ = Tensor({c.n_heads, rows, keys});
    if (spec.has_slot() && step_slot_weights_.numel() < static_cast<int64_t>(c.n_heads) * rows)
        step_slot_weights_ = Tensor({c.n_heads, rows});

    a.lengths.clear();
    embed(a.resid.data(), a.tokens.data(), a.positions.data(), nullptr, 1, rows, sink);
    if (obs) obs->observe(Tap::embed, -1, a.resid.data(), {rows, C});

    const long kv_width = cache.row_width();
    cache.reserve(rows);
    const ScoreBias bias = score_bias();
    const AttendFn attend = [&](int l, const BlockBuffers& buf) {
        // the queries rotated at their positions; this step's keys appended before RoPE with the
        // values, then attention over everything held, each key rotated at its row's position as the
        // kernel reads it (block_forward got no RoPE table, so that the keys stay unrotated)
        if (a.rope) rope_forward(buf.qkv, a.positions.data(), rows, c.n_heads, HS, QKV, *a.rope);
        const float* qkv = buf.qkv;
        for (int i = 0; i < rows; ++i) {
            const float* row = qkv + static_cast<long>(i) * QKV;
            std::memcpy(cache.key_row(l, first + i), row + c.n_heads * HS, kv_width * sizeof(float));
            std::memcpy(cache.value_row(l, first + i), row + c.n_heads * HS + kv_width, kv_width * sizeof(float));
        }
        const CachedLayerTiles tiles(cache, l, HS, key_positions.data(), a.rope);
        CachedAttentionInputs in{qkv, QKV, nullptr, nullptr, 0, bias, a.positions.data(), key_positions.data()};
        in.tiles = &tiles;
        const CachedAttentionOutputs out{buf.attout, static_cast<long>(c.n_heads) * HS, step_weights_.data(),
                                         spec.has_slot() ? step_slot_weights_.data() : nullptr};
        cached_attention_forward(out, in, attention_params(l),
                                 CachedAttentionDims{c.n_heads, c.n_kv_heads, HS, rows, keys, first}, spec,
                                 attention_mask(l, spec.uses_sink_token() ? 1 : 0));
        if (obs && out.slot_weights) obs->observe(Tap::attn_slot_weights, l, out.slot_weights, {1, c.n_heads, rows});
        if (obs) obs->observe(Tap::attn_weights, l, step_weights_.data(), {1, c.n_heads, rows, keys});
    };
    for (int l = 0; l < c.n_layers; ++l)
        block_forward(l, block_buffers(l), rows, a.positions.data(), nullptr, attend, obs);
    cache.commit(rows, a.positions.data());
    // the head reads the real tokens' rows
    head_forward(a.resid.data() + (static_cast<long>(c.n_layers % 2) * rows + sink) * C, n, obs);
    return a.logits.data();
}

void Transformer::ensure_gradient_buffers() {
    const long N = static_cast<long>(acts_.B) * acts_.T;
    if (dacts_.N == N) return;
    const ModelConfig& c = config_;
    const int64_t C = c.d_model, F = c.ff(), HSO = static_cast<int64_t>(c.n_heads) * c.hs();
    dacts_.N = N;
    dacts_.dresid = Tensor({N, C});
    if (c.norm_placement == NormPlacement::post) dacts_.dmid = Tensor({N, C});  // pre-norm sums in dresid
    dacts_.dnorm = Tensor({N, C});
    dacts_.dfinal = Tensor({N, C});
    dacts_.dact = Tensor({N, F});
    dacts_.dpre = Tensor({N, c.up_width()});
    dacts_.datt = Tensor({N, HSO});
    dacts_.dqkv = Tensor({N, c.qkv_width()});
    if (c.attention.gate != GateKind::none) {
        dacts_.dgated = Tensor({N, HSO});
        dacts_.dgate = Tensor({N, output_gate_width(c.attention.gate, c.n_heads, c.hs())});
    }
}

void Transformer::block_backward(int l, const BlockBuffers& buf, int N, const AttentionDims& dims,
                                 const ScoreBias& bias) {
    const ModelConfig& c = config_;
    const Activations& a = acts_;
    Gradients& g = dacts_;
    const Layer w = layer_view(weights_.data(), l);
    const Layer dw = layer_view(gradients(), l);
    const int C = c.d_model, F = c.ff(), QKV = c.qkv_width(), HS = c.hs(), HSO = c.n_heads * HS;
    const int up_width = c.up_width();
    const GateKind gate = c.attention.gate;
    const int G = gate != GateKind::none ? output_gate_width(gate, c.n_heads, HS) : 0;
    const bool post = c.norm_placement == NormPlacement::post;
    const long NC = static_cast<long>(N) * C;
    constexpr GradWrite overwrite = GradWrite::overwrite;

    // in the forward pass this was: out = mid + W_down act(W_up norm2(mid))
    //                         post: out = norm2(mid + W_down act(W_up mid)), the sum kept in norm2
    // Pre-norm: dL/dmid starts as dL/dout (the residual path) and is summed in place in dresid,
    // whose old value nothing reads after the MLP's own products.
    const float* dmlp_out = g.dresid.data();
    float* dmid = g.dresid.data();
    if (post) {
        g.dfinal.zero();
        norm_backward(c, g.dfinal.data(), dw.mlp_norm_w, dw.mlp_norm_b, g.dresid.data(), buf.norm2, w.mlp_norm_w,
                      buf.norm2_mean, buf.norm2_rstd, N);
        dmlp_out = g.dfinal.data();
        dmid = g.dmid.data();
        std::memcpy(dmid, dmlp_out, NC * sizeof(float));
    }
    matmul_backward(g.dact.data(), dw.w_down, dw.b_down, dmlp_out, buf.mlp_act, w.w_down, N, F, C, overwrite);
    mlp_activation_backward(c.mlp, g.dpre.data(), buf.mlp_pre, g.dact.data(), N, F);
    matmul_backward(g.dnorm.data(), dw.w_up, dw.b_up, g.dpre.data(), post ? buf.mid : buf.norm2, w.w_up, N, C,
                    up_width, overwrite);
    if (post)
        accumulate(dmid, g.dnorm.data(), NC);
    else
        norm_backward(c, dmid, dw.mlp_norm_w, dw.mlp_norm_b, g.dnorm.data(), buf.mid, w.mlp_norm_w, buf.norm2_mean,
                      buf.norm2_rstd, N);

    // in the forward pass this was: mid = x + Wo gate(attn(rope(Wqkv norm1(x))))
    //                         post: mid = norm1(x + Wo attn(rope(Wqkv x))), the sum kept in norm1
    // pre-norm: dL/dx likewise starts as dL/dmid, already in dresid
    const float* dattn_out = dmid;
    if (post) {
        g.dfinal.zero();
        norm_backward(c, g.dfinal.data(), dw.attn_norm_w, dw.attn_norm_b, dmid, buf.norm1, w.attn_norm_w,
                      buf.norm1_mean, buf.norm1_rstd, N);
        dattn_out = g.dfinal.data();
        std::memcpy(g.dresid.data(), dattn_out, NC * sizeof(float));
    }
    const float* attn_in = post ? buf.x : buf.norm1;
    if (G) {
        // heads = attout * sigmoid(gate_logits), gate_logits = attn_in W_g^T
        matmul_backward(g.dgated.data(), dw.wo, dw.bo, dattn_out, buf.gated, w.wo, N, HSO, C, overwrite);
        g.datt.zero();
        g.dgate.zero();
        output_gate_backward(g.datt.data(), g.dgate.data(), g.dgated.data(), buf.attout, buf.gate_logits, N,
                             c.n_heads, HS, gate);
    } else {
        matmul_backward(g.datt.data(), dw.wo, dw.bo, dattn_out, buf.attout, w.wo, N, HSO, C, overwrite);
    }
    AttentionParamGrads dparams = attention_param_grads(l);
    if (c.positions == PositionKind::relative) dparams.relative_table = grad("embed.relative_bias");
    const AttentionInputs in{buf.qkv, bias};
    const AttentionMask mask = attention_mask(l, a.sink);
    if (a.kernel == AttentionKernel::blockwise)
        blockwise_attention_backward(g.dqkv.data(), dparams, g.datt.data(), buf.attout, in, attention_params(l),
                                     buf.row_stats, dims, c.attention, mask, overwrite);
    else
        attention_backward(g.dqkv.data(), dparams, g.datt.data(), in, attention_params(l), buf.saved, dims,
                           c.attention, mask, overwrite);
    if (a.rope) {
        rope_backward(g.dqkv.data(), a.positions.data(), N, c.n_heads, HS, QKV, *a.rope);
        rope_backward(g.dqkv.data() + c.n_heads * HS, a.positions.data(), N, c.n_kv_heads, HS, QKV, *a.rope);
    }
    matmul_backward(g.dnorm.data(), dw.wqkv, dw.bqkv, g.dqkv.data(), attn_in, w.wqkv, N, C, QKV, overwrite);
    if (G) matmul_backward(g.dnorm.data(), dw.attn_gate, nullptr, g.dgate.data(), attn_in, w.attn_gate, N, C, G);
    if (post)
        accumulate(g.dresid.data(), g.dnorm.data(), NC);
    else
        norm_backward(c, g.dresid.data(), dw.attn_norm_w, dw.attn_norm_b, g.dnorm.data(), buf.x, w.attn_norm_w,
                      buf.norm1_mean, buf.norm1_rstd, N);
}

void Transformer::backward(const GradientsReady& ready) {
    const ModelConfig& c = config_;
    Activations& a = acts_;
    SINKLAB_CHECK(a.training && a.has_targets, "model", "backward() needs a training forward with targets first");
    const std::string untrainable = c.inference_only_features();
    SINKLAB_CHECK(untrainable.empty(), "model",
                  "this model uses {}, which the engine runs for inference but is not trainable yet", untrainable);
    ensure_gradient_buffers();
    Gradients& g = dacts_;
    // TS positions per sequence in the blocks (the sink token included), T real tokens in the head
    const int B = a.B, TS = a.T, sink = a.sink, T = TS - sink, N = B * TS, C = c.d_model;
    const AttentionDims dims{B, TS, c.n_heads, c.n_kv_heads, c.hs()};
    const ParamInfo* final_w = find("final_norm.weight");
    const ParamInfo* final_b = find("final_norm.bias");
    const ScoreBias bias = score_bias();

    // logits = final_norm @ head^T, over the B*T real tokens
    float* dhead = c.tied_embeddings ? grad("embed.tokens") : grad("lm_head");
    const float* head = c.tied_embeddings ? param("embed.tokens") : param("lm_head");
    g.dfinal.zero();
    matmul_backward(g.dfinal.data(), dhead, nullptr, a.dlogits.data(), a.final_norm.data(), head, B * T, C,
                    c.vocab_size);
    g.dresid.zero();
    const float* last = sink ? a.head_in.data() : a.resid.data() + static_cast<long>(c.n_layers) * N * C;
    float* dlast = sink ? g.dnorm.data() : g.dresid.data();
    if (sink) g.dnorm.zero();
    norm_backward(c, dlast, final_w ? grad("final_norm.weight") : nullptr, final_b ? grad("final_norm.bias") : nullptr,
                  g.dfinal.data(), last, final_w ? param("final_norm.weight") : nullptr, a.final_mean.data(),
                  a.final_rstd.data(), B * T);
    if (sink)  // the head read the real tokens' rows: the sink rows get no gradient from it
        for (int b = 0; b < B; ++b)
            std::memcpy(g.dresid.data() + (static_cast<long>(b) * TS + sink) * C, dlast + static_cast<long>(b) * T * C,
                        sizeof(float) * T * C);

    // [first, last) of each layer's parameters: a layer's names ("layers.l.") are contiguous in the buffer
    std::vector<size_t> layer_first(c.n_layers, num_params_), layer_last(c.n_layers, 0);
    if (ready) {
        for (const ParamInfo& p : params_) {
            if (!p.name.starts_with("layers.")) continue;
            const int l = std::stoi(p.name.substr(7));
            layer_first[l] = std::min(layer_first[l], p.offset);
            layer_last[l] = std::max(layer_last[l], p.offset + p.numel);
        }
        ready(layer_last[c.n_layers - 1], num_params_);  // the final norm and an untied head
    }
    for (int l = c.n_layers - 1; l >= 0; --l) {
        block_backward(l, block_buffers(l), N, dims, bias);
        if (ready) ready(layer_first[l], layer_last[l]);
    }
    // in the forward pass this was (embed): resid = wte[tokens] * scale, the sink token over row 0 of
    // each sequence, + the position rows
    if (c.positions == PositionKind::learned)
        position_add_backward(grad("embed.positions") + static_cast<long>(c.position_offset) * C, g.dresid.data(),
                              a.positions.data(), N, C);
    if (sink) sink_token_backward(grad("embed.sink_token"), g.dresid.data(), B, TS, C);
    embedding_backward(grad("embed.tokens"), g.dresid.data(), a.tokens.data(), N, C, c.embed_scale);
    if (ready) ready(0, layer_first[0]);  // the embeddings (a tied head's included)
}

const float* Transformer::attention_weights(int layer) const {
    SINKLAB_CHECK(acts_.training && layer >= 0 && layer < config_.n_layers, "model",
                  "attention weights of layer {} are not kept by the last forward", layer);
    SINKLAB_CHECK(acts_.kernel == AttentionKernel::materialised, "model",
                  "the last forward ran the blockwise attention kernel, which keeps no weights; ask for "
                  "AttentionKernel::materialised");
    return acts_.attw.data() + static_cast<long>(layer) * acts_.B * config_.n_heads * acts_.T * acts_.T;
}

const float* Transformer::hidden(int layer) const {
    SINKLAB_CHECK(acts_.training && layer >= 0 && layer <= config_.n_layers, "model",
                  "hidden state {} is not kept by the last forward", layer);
    return acts_.resid.data() + static_cast<long>(layer) * acts_.B * acts_.T * config_.d_model;
}

}  // namespace sinklab
