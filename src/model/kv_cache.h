#pragma once
// The KV cache of one sequence, for generation: every layer's keys (after RoPE) and values of the
// tokens seen so far, so that a new token attends to them instead of recomputing the prefix
// (Transformer::forward_step); attention/cached_attention.h attends over it. Inference only.
//
// Each held token keeps the position it was rotated with. Positions are the caller's: generation
// passes absolute positions 0, 1, 2, ...; a streaming policy that evicts tokens can pass its own
// (re-indexed) positions for new tokens without the cache assuming anything about them.
#include <vector>

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

}  // namespace sinklab
