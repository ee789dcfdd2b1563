#pragma once
// ModelConfig: the blueprint of one transformer. One schema covers sinklab's own styles and the
// pretrained families (DESIGN.md section 3); the blocks read it and never test an architecture name.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/attention_spec.h"

namespace sinklab {

enum class NormKind { layernorm, rmsnorm };
enum class NormPlacement { pre, post };
enum class PositionKind { none, learned, sinusoidal, rope, alibi, relative };
enum class MlpKind { gelu, relu, swiglu, geglu };

struct ModelConfig {
    std::string style = "gpt2";  // gpt2 | llama: the family of defaults the config started from
    int vocab_size = 256;
    int d_model = 128;      // C
    int n_layers = 4;       // L
    int n_heads = 4;        // NH
    int n_kv_heads = 4;     // NKV
    int head_dim = 0;       // HS; 0 means d_model / n_heads
    int d_ff = 0;           // MLP hidden size; 0 means 4 C (gelu, relu) or the llama rule (swiglu)
    int max_seq_len = 1024; // positions the model can see (learned tables are this long)
    NormKind norm = NormKind::layernorm;
    NormPlacement norm_placement = NormPlacement::pre;
    PositionKind positions = PositionKind::learned;
    MlpKind mlp = MlpKind::gelu;
    bool linear_bias = true;  // biases on attention and MLP projections
    bool tied_embeddings = false;
    float norm_eps = 1e-5f;
    double rope_theta = 10000.0;
    AttentionSpec attention;
    int window = 0;  // sliding window (keys seen by a query, itself included); 0 = full causal
    int prefix = 0;  // prefix LM: the first `prefix` tokens are visible to every query
    float init_std = 0.02f;

    int hs() const { return head_dim > 0 ? head_dim : d_model / n_heads; }
    int ff() const;
    bool gated_mlp() const { return mlp == MlpKind::swiglu || mlp == MlpKind::geglu; }
    int qkv_width() const { return (n_heads + 2 * n_kv_heads) * hs(); }

    // Throws sinklab::Error("config", ...) naming the offending key.
    void validate() const;
    nlohmann::json to_json() const;
    // `source` names the file or flag the JSON came from, for error messages.
    static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
    // Defaults of a style ("gpt2": LayerNorm, learned positions, GELU, biases; "llama": RMSNorm,
    // RoPE, SwiGLU, no biases).
    static ModelConfig for_style(const std::string& style);
};

std::string to_string(NormKind v);
std::string to_string(NormPlacement v);
std::string to_string(PositionKind v);
std::string to_string(MlpKind v);
NormKind parse_norm(const std::string& s);
NormPlacement parse_norm_placement(const std::string& s);
PositionKind parse_positions(const std::string& s);
MlpKind parse_mlp(const std::string& s);

}  // namespace sinklab
