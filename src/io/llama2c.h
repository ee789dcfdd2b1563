#pragma once
// Reader for Andrej Karpathy's llama2.c checkpoints (the "legacy" / version-0 export of
// https://github.com/karpathy/llama2.c/blob/master/export.py, e.g. stories260K.bin): a header of 7
// int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
// means the classifier is not shared with the embedding), then float32 tensors in the order
//   token_embedding (V, D), rms_att (L, D), wq (L, D, D), wk (L, KVD, D), wv (L, KVD, D),
//   wo (L, D, D), rms_ffn (L, D), w1 (L, H, D), w2 (L, D, H), w3 (L, H, D), rms_final (D),
//   freq_cis_real (seq_len, HS/2), freq_cis_imag (seq_len, HS/2), [wcls (V, D) if not shared]
// with D = dim, H = hidden_dim, HS = D / n_heads, KVD = n_kv_heads * HS.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "core/tensor.h"

namespace sinklab {

struct Llama2cConfig {
    int64_t dim = 0;         // D
    int64_t hidden_dim = 0;  // H, of the SwiGLU MLP
    int64_t n_layers = 0;    // L
    int64_t n_heads = 0;     // NH
    int64_t n_kv_heads = 0;  // NKV
    int64_t vocab_size = 0;  // V (always positive here; see shared_classifier)
    int64_t seq_len = 0;     // the longest context the model was trained for
    bool shared_classifier = true;  // lm_head is the token embedding

    int64_t head_size() const { return dim / n_heads; }        // HS
    int64_t kv_dim() const { return n_kv_heads * head_size(); }  // KVD
};

struct Llama2cCheckpoint {
    Llama2cConfig config;
    // Hugging Face Llama names and layouts ([out, in] for projections):
    //   model.embed_tokens.weight (V, D), model.norm.weight (D), lm_head.weight (V, D) (a copy of
    //   the embedding when shared), and for each layer i, model.layers.{i}.:
    //   input_layernorm.weight (D), self_attn.{q,k,v,o}_proj.weight ((D|KVD), D) / (D, D),
    //   post_attention_layernorm.weight (D), mlp.gate_proj.weight (H, D) (w1),
    //   mlp.up_proj.weight (H, D) (w3), mlp.down_proj.weight (D, H) (w2).
    // q_proj and k_proj rows are permuted for Hugging Face's rotate_half RoPE (see llama2c.cpp).
    // The stored RoPE tables are checked for size and dropped: RoPE is recomputed from positions.
    std::map<std::string, Tensor> tensors;
};

// Throws sinklab::Error("llama2c", "<path>: ...") for a truncated or oversized file, an absurd or
// inconsistent header, or a version-1+ export (which starts with the magic "ak42").
Llama2cCheckpoint load_llama2c(const std::filesystem::path& path);

}  // namespace sinklab
