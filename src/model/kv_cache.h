#pragma once
// The KV cache of one sequence, for generation: every layer's keys (after RoPE) and values of the
// tokens seen so far, so that a new token attends to them instead of recomputing the prefix
// (Transformer::forward_step). Inference only.
//
// Each held token keeps the position it was rotated with. Positions are the caller's: generation
// passes absolute positions 0, 1, 2, ...; a streaming policy that evicts tokens can pass its own
// (re-indexed) positions for new tokens without the cache assuming anything about them.
#include <vector>

#include "attention/attention_spec.h"
#include "core/tensor.h"
#include "model/config.h"

namespace sinklab {

class KVCache {
public:
    // Room for `capacity` tokens of a model with this configuration.
    KVCache(const ModelConfig& config, int capacity);

    int capacity() const { return capacity_; }
    int length() const { return length_; }  // tokens held
    int layers() const { return layers_; }
    long row_width() const { return row_width_; }  // NKV * HS floats per token and layer
    const std::vector<int>& positions() const { return positions_; }  // (length)
    void clear();

    // Rows [0, capacity) of one layer, (capacity, NKV * HS); rows below length() are held tokens.
    float* keys(int layer);
    float* values(int layer);
    const float* keys(int layer) const;
    const float* values(int layer) const;

    // Marks `n` more rows as held (their keys and values already written at [length, length + n)
    // in every layer) with their positions.
    void commit(int n, const int* positions);

private:
    int layers_, capacity_;
    long row_width_;
    int length_ = 0;
    Tensor keys_, values_;  // (L, capacity, NKV * HS)
    std::vector<int> positions_;
};

// Softmax attention of query rows over key/value rows that may outnumber them (the KV cache), for
// inference: no backward. Query row i sits at key index first_query + i and sees the key indices
// mask.lo(first_query + i) .. mask.hi(first_query + i, n_keys); with an empty cache (first_query 0,
// n_keys = n_queries) this is the model's usual causal attention.
struct CachedAttentionDims {
    int NH = 0, NKV = 0, HS = 0;  // query head h reads kv head h / (NH / NKV)
    int n_queries = 0;
    int n_keys = 0;
    int first_query = 0;
};

struct CachedAttentionInputs {
    const float* q = nullptr;  // (n_queries, q_stride), NH heads of HS floats at the start of each row
    long q_stride = 0;
    const float* k = nullptr;  // (n_keys, kv_stride), NKV heads of HS floats at the start of each row
    const float* v = nullptr;  // (n_keys, kv_stride)
    long kv_stride = 0;
    float scale = 0.0f;    // score scale
    float softcap = 0.0f;  // scores become softcap * tanh(s / softcap) before the softmax; 0 = off
};

// out (n_queries, out_stride): NH heads of HS floats per row; weights (NH, n_queries, n_keys), zero
// where masked.
void cached_attention_forward(float* out, long out_stride, float* weights, const CachedAttentionInputs& in,
                              const CachedAttentionDims& dims, const AttentionMask& mask);

}  // namespace sinklab
