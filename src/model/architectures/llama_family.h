#pragma once
// The decoder layout most families share with Llama: config keys (hidden_size, num_key_value_heads,
// rms_norm_eps, rope_theta, ...) and tensor names (model.embed_tokens, model.layers.{i}.self_attn.
// q_proj, ..., model.norm, lm_head). Each family's file starts from these and states its
// differences: which norms sit where and what they are called, fused projections, extras.
#include <string>

#include "model/architectures/hf_config.h"
#include "model/architectures/weight_loader.h"
#include "model/config.h"

namespace sinklab {

// A llama-style ModelConfig from the shared keys: sizes (head_dim defaults to hidden / heads),
// rms_norm_eps, RoPE (rope_theta, rope_scaling, partial_rotary_factor), attention_bias (q, k, v
// and o), sliding_window, tie_word_embeddings (defaulting to `tied_default`, which differs by
// family), initializer_range, and the gated MLP of hidden_act.
ModelConfig read_llama_family_config(const HfConfig& hf, bool tied_default);

// The gated MLP of an activation name: silu -> SwiGLU, the tanh GELUs -> GeGLU.
MlpKind gated_mlp_of(const HfConfig& hf, const char* key, const std::string& activation);

// Where the family keeps each norm, under model.layers.{i}. (null: the family has no such norm;
// the config's norm_placement decides which exist).
struct LlamaFamilyLayout {
    const char* attn_norm = "input_layernorm";
    const char* attn_out_norm = nullptr;
    const char* mlp_norm = "post_attention_layernorm";
    const char* mlp_out_norm = nullptr;
    bool fused_qkv = false;      // self_attn.qkv_proj holds [q; k; v] rows (Phi-3)
    bool fused_gate_up = false;  // mlp.gate_up_proj holds [gate; up] rows (Phi-3)
    bool dense_mlp = true;       // false: no mlp.*_proj tensors; layer_extras loads the family's MLP
    // The family's own tensors of layer l (gpt-oss: attention sinks and experts), after the shared ones.
    void (*layer_extras)(WeightLoader& loader, int layer) = nullptr;
};

void load_llama_family_weights(WeightLoader& loader, const LlamaFamilyLayout& layout);

}  // namespace sinklab
