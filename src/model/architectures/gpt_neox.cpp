// GPT-NeoX (Pythia): LayerNorm, partial rotary positions (rotary_pct of each head), exact GELU,
// biases, and a parallel residual x + attn(ln1(x)) + mlp(ln2(x)). The fused query_key_value
// projection is laid out per head, [NH, 3, HS] rows: q, k and v of head 0, then of head 1, ...
#include <algorithm>

#include "core/error.h"
#include "model/architectures/architecture.h"
#include "model/architectures/rope_scaling.h"

namespace sinklab {

namespace {

ModelConfig read_config(const HfConfig& hf) {
    ModelConfig c = ModelConfig::for_style("gpt2");
    c.positions = PositionKind::rope;
    c.vocab_size = hf.positive_int("vocab_size");
    c.d_model = hf.positive_int("hidden_size");
    c.n_layers = hf.positive_int("num_hidden_layers");
    c.n_heads = hf.positive_int("num_attention_heads");
    c.n_kv_heads = c.n_heads;
    if (c.d_model % c.n_heads != 0)
        hf.fail("num_attention_heads", fmt::format("({}) must divide hidden_size ({})", c.n_heads, c.d_model));
    c.d_ff = hf.positive_int("intermediate_size");
    c.max_seq_len = hf.positive_int("max_position_embeddings");
    c.norm_eps = static_cast<float>(hf.positive_number("layer_norm_eps", 1e-5));
    const std::string act = hf.string("hidden_act", "gelu");
    if (act == "gelu")
        c.mlp = MlpKind::gelu_erf;
    else if (act == "gelu_new" || act == "gelu_fast" || act == "gelu_pytorch_tanh")
        c.mlp = MlpKind::gelu;
    else
        hf.fail("hidden_act", "is '" + act + "' (supported: gelu, gelu_new, gelu_fast, gelu_pytorch_tanh)");
    // The MLP always has biases; attention_bias covers query_key_value and dense.
    c.linear_bias = true;
    c.qkv_bias = c.out_bias = hf.boolean("attention_bias", true);
    c.parallel_residual = hf.boolean("use_parallel_residual", true);
    c.tied_embeddings = hf.boolean("tie_word_embeddings", false);
    c.init_std = static_cast<float>(hf.positive_number("initializer_range", 0.02));
    // Older configs name the base and the rotated fraction differently.
    read_rope_settings(hf, c, hf.has("rope_theta") ? "rope_theta" : "rotary_emb_base",
                       hf.has("partial_rotary_factor") ? "partial_rotary_factor" : "rotary_pct");
    return c;
}

// Per-head interleaved rows [h0: q k v | h1: q k v | ...] (NH * 3 * HS, cols) into sinklab's
// [all q | all k | all v] order.
Tensor deinterleave_heads(const Tensor& fused, int NH, int HS) {
    const int64_t cols = fused.ndim() == 2 ? fused.dim(1) : 1;
    Tensor out(fused.shape());
    for (int h = 0; h < NH; ++h)
        for (int part = 0; part < 3; ++part)
            for (int r = 0; r < HS; ++r) {
                const int64_t src = (static_cast<int64_t>(h) * 3 + part) * HS + r;
                const int64_t dst = (static_cast<int64_t>(part) * NH + h) * HS + r;
                std::copy_n(fused.data() + src * cols, cols, out.data() + dst * cols);
            }
    return out;
}

// Splits [all q | all k | all v] rows into the three parameters.
void set_split(WeightLoader& loader, const Tensor& qkv, const std::string& prefix, const char* kind) {
    const int64_t third = qkv.numel() / 3;
    int part = 0;
    for (const char* x : {"q", "k", "v"}) {
        Tensor piece(qkv.ndim() == 2 ? Shape{qkv.dim(0) / 3, qkv.dim(1)} : Shape{qkv.dim(0) / 3});
        std::copy_n(qkv.data() + part++ * third, third, piece.data());
        loader.set(prefix + kind + x, piece);
    }
}

void load_weights(WeightLoader& loader) {
    const ModelConfig& c = loader.config();
    const int C = c.d_model, NH = c.n_heads, HS = c.hs();
    loader.copy("gpt_neox.embed_in.weight", "embed.tokens");
    for (int l = 0; l < c.n_layers; ++l) {
        const std::string hf = fmt::format("gpt_neox.layers.{}.", l), own = fmt::format("layers.{}.", l);
        loader.copy(hf + "input_layernorm.weight", own + "attn_norm.weight");
        loader.copy(hf + "input_layernorm.bias", own + "attn_norm.bias");
        const Tensor w = loader.take(hf + "attention.query_key_value.weight", {3L * NH * HS, C});
        set_split(loader, deinterleave_heads(w, NH, HS), own, "attn.w");
        if (c.has_qkv_bias()) {
            const Tensor b = loader.take(hf + "attention.query_key_value.bias", {3L * NH * HS});
            set_split(loader, deinterleave_heads(b, NH, HS), own, "attn.b");
        }
        loader.copy(hf + "attention.dense.weight", own + "attn.wo");
        if (c.has_out_bias()) loader.copy(hf + "attention.dense.bias", own + "attn.bo");
        loader.copy(hf + "post_attention_layernorm.weight", own + "mlp_norm.weight");
        loader.copy(hf + "post_attention_layernorm.bias", own + "mlp_norm.bias");
        loader.copy(hf + "mlp.dense_h_to_4h.weight", own + "mlp.w_up");
        loader.copy(hf + "mlp.dense_h_to_4h.bias", own + "mlp.b_up");
        loader.copy(hf + "mlp.dense_4h_to_h.weight", own + "mlp.w_down");
        loader.copy(hf + "mlp.dense_4h_to_h.bias", own + "mlp.b_down");
        // buffers of older checkpoints: causal masks and rotary tables
        for (const char* buffer : {"attention.bias", "attention.masked_bias", "attention.rotary_emb.inv_freq"})
            loader.skip_if_present(hf + buffer);
    }
    loader.copy("gpt_neox.final_layer_norm.weight", "final_norm.weight");
    loader.copy("gpt_neox.final_layer_norm.bias", "final_norm.bias");
    if (c.tied_embeddings)
        loader.skip_if_present("embed_out.weight");
    else
        loader.copy("embed_out.weight", "lm_head");
}

}  // namespace

const Architecture& gpt_neox_architecture() {
    static const Architecture architecture{"gpt_neox", read_config, load_weights};
    return architecture;
}

}  // namespace sinklab
