#include "model/architectures/llama_family.h"

#include <fmt/format.h>

#include "core/error.h"
#include "model/architectures/rope_scaling.h"

namespace sinklab {

MlpKind gated_mlp_of(const HfConfig& hf, const char* key, const std::string& activation) {
    if (activation == "silu" || activation == "swish") return MlpKind::swiglu;
    if (activation == "gelu_pytorch_tanh" || activation == "gelu_new" || activation == "gelu_fast")
        return MlpKind::geglu;
    hf.fail(key, fmt::format("is '{}'; sinklab's gated MLPs use silu or the tanh GELU (gelu_pytorch_tanh)",
                             activation));
}

ModelConfig read_llama_family_config(const HfConfig& hf, bool tied_default) {
    ModelConfig c = ModelConfig::for_style("llama");
    c.vocab_size = hf.positive_int("vocab_size");
    c.d_model = hf.positive_int("hidden_size");
    c.n_layers = hf.positive_int("num_hidden_layers");
    c.n_heads = hf.positive_int("num_attention_heads");
    c.n_kv_heads = hf.positive_int("num_key_value_heads", c.n_heads);
    if (c.n_heads % c.n_kv_heads != 0)
        hf.fail("num_key_value_heads", fmt::format("({}) must divide num_attention_heads ({})", c.n_kv_heads, c.n_heads));
    if (hf.has("head_dim")) {
        c.head_dim = hf.positive_int("head_dim");
    } else if (c.d_model % c.n_heads != 0) {
        hf.fail("num_attention_heads", fmt::format("({}) must divide hidden_size ({}) when head_dim is not given",
                                                   c.n_heads, c.d_model));
    }
    c.d_ff = hf.positive_int("intermediate_size");
    c.max_seq_len = hf.positive_int("max_position_embeddings", 2048);
    c.norm_eps = static_cast<float>(hf.positive_number("rms_norm_eps", 1e-6));
    c.mlp = gated_mlp_of(hf, "hidden_act", hf.string("hidden_act", "silu"));
    const bool attention_bias = hf.boolean("attention_bias", false);
    c.qkv_bias = attention_bias;
    c.out_bias = attention_bias;
    c.linear_bias = false;
    if (hf.boolean("mlp_bias", false))
        hf.fail("mlp_bias", "is true; sinklab's gated MLPs have no gate or up biases");
    c.window = hf.positive_int("sliding_window", 0);
    c.tied_embeddings = hf.boolean("tie_word_embeddings", tied_default);
    c.init_std = static_cast<float>(hf.positive_number("initializer_range", 0.02));
    read_rope_settings(hf, c);
    return c;
}

void load_llama_family_weights(WeightLoader& loader, const LlamaFamilyLayout& layout) {
    const ModelConfig& c = loader.config();
    auto hf = [](int l, const std::string& suffix) { return fmt::format("model.layers.{}.{}", l, suffix); };
    auto own = [](int l, const std::string& suffix) { return fmt::format("layers.{}.{}", l, suffix); };
    // A norm of the config's placement, named by the family; non-parametric norms have no tensor.
    auto norm = [&](int l, const char* hf_name, const char* own_name) {
        if (!c.norm_affine) return;
        SINKLAB_ASSERT(hf_name != nullptr);
        loader.copy(hf(l, std::string(hf_name) + ".weight"), own(l, std::string(own_name) + ".weight"));
    };

    loader.copy("model.embed_tokens.weight", "embed.tokens");
    for (int l = 0; l < c.n_layers; ++l) {
        if (c.norms_sublayer_inputs()) norm(l, layout.attn_norm, "attn_norm");
        if (layout.fused_qkv) {
            loader.split_rows(hf(l, "self_attn.qkv_proj.weight"), {own(l, "attn.wq"), own(l, "attn.wk"), own(l, "attn.wv")});
        } else {
            loader.copy(hf(l, "self_attn.q_proj.weight"), own(l, "attn.wq"));
            loader.copy(hf(l, "self_attn.k_proj.weight"), own(l, "attn.wk"));
            loader.copy(hf(l, "self_attn.v_proj.weight"), own(l, "attn.wv"));
        }
        if (c.has_qkv_bias()) {
            loader.copy(hf(l, "self_attn.q_proj.bias"), own(l, "attn.bq"));
            loader.copy(hf(l, "self_attn.k_proj.bias"), own(l, "attn.bk"));
            loader.copy(hf(l, "self_attn.v_proj.bias"), own(l, "attn.bv"));
        }
        if (c.qk_norm != QkNorm::none) {
            loader.copy(hf(l, "self_attn.q_norm.weight"), own(l, "attn.q_norm.weight"));
            loader.copy(hf(l, "self_attn.k_norm.weight"), own(l, "attn.k_norm.weight"));
        }
        loader.copy(hf(l, "self_attn.o_proj.weight"), own(l, "attn.wo"));
        if (c.has_out_bias()) loader.copy(hf(l, "self_attn.o_proj.bias"), own(l, "attn.bo"));
        if (c.norms_sublayer_outputs()) norm(l, layout.attn_out_norm, "attn_out_norm");
        if (c.norms_sublayer_inputs()) norm(l, layout.mlp_norm, "mlp_norm");
        if (layout.dense_mlp) {
            if (layout.fused_gate_up) {
                loader.split_rows(hf(l, "mlp.gate_up_proj.weight"), {own(l, "mlp.w_gate"), own(l, "mlp.w_up")});
            } else {
                loader.copy(hf(l, "mlp.gate_proj.weight"), own(l, "mlp.w_gate"));
                loader.copy(hf(l, "mlp.up_proj.weight"), own(l, "mlp.w_up"));
            }
            loader.copy(hf(l, "mlp.down_proj.weight"), own(l, "mlp.w_down"));
        }
        if (c.norms_sublayer_outputs()) norm(l, layout.mlp_out_norm, "mlp_out_norm");
        // rotary tables some older checkpoints carry; RoPE is recomputed from positions
        loader.skip_if_present(hf(l, "self_attn.rotary_emb.inv_freq"));
        if (layout.layer_extras) layout.layer_extras(loader, l);
    }
    if (c.norm_affine) loader.copy("model.norm.weight", "final_norm.weight");
    if (c.tied_embeddings)
        loader.skip_if_present("lm_head.weight");  // a saved copy of the embedding
    else
        loader.copy("lm_head.weight", "lm_head");
}

}  // namespace sinklab
