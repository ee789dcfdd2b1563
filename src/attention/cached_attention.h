#pragma once
// Cached attention: a few new query rows (decoding, a prompt chunk) against key and value rows that
// may outnumber them, a KV cache. Every design of AttentionSpec runs here through the same row
// arithmetic as the materialised kernel (attention/row_arithmetic.h): each query row's scores are
// computed over its visible keys, turned into weights by the design's row function, and mixed
// with the values, the slot's value and the value bias. Inference only: no backward.
//
// Positions are data: each key and each query carries the position its positional score bias
// (ALiBi, relative buckets) is computed from, so a cache that evicts tokens or re-indexes them
// (StreamingLLM) passes its own. The weight each key receives can be summed as the kernel runs (a
// cache policy that keeps the most attended tokens reads it).
#include "attention/attention.h"

namespace sinklab {

// Query row i sits at key index first_query + i and sees the key indices mask.lo(first_query + i)
// .. mask.hi(first_query + i, n_keys); with an empty cache (first_query 0, n_keys = n_queries) this
// is a sequence's usual causal attention.
struct CachedAttentionDims {
    int NH = 0, NKV = 0, HS = 0;  // query head h reads kv head h / (NH / NKV)
    int n_queries = 0;
    int n_keys = 0;
    int first_query = 0;
};

// Key and value rows that are not plain floats in memory: a cache that holds its keys before RoPE,
// or quantized (model/kv_cache.h), hands the kernel kCachedTileRows rows of one kv head at a time,
// rotated and dequantized into the kernel's scratch, so the kernel never needs a whole-cache copy.
class KeyValueTiles {
public:
    virtual ~KeyValueTiles() = default;
    // The keys (values) of kv head `head` for rows [j0, j1), j1 - j0 <= kCachedTileRows: the first
    // row, with `stride` floats between rows; either in the cache or written into scratch (HS per row).
    virtual const float* keys(int head, int j0, int j1, float* scratch, long& stride) const = 0;
    virtual const float* values(int head, int j0, int j1, float* scratch, long& stride) const = 0;
};
inline constexpr int kCachedTileRows = 64;

struct CachedAttentionInputs {
    const float* q = nullptr;  // (n_queries, q_stride), NH heads of HS floats at the start of each row
    long q_stride = 0;
    const float* k = nullptr;  // (n_keys, kv_stride), NKV heads of HS floats at the start of each row
    const float* v = nullptr;  // (n_keys, kv_stride)
    long kv_stride = 0;
    ScoreBias bias;
    const int* query_positions = nullptr;  // (n_queries) positions of the score bias; null: first_query + i
    const int* key_positions = nullptr;    // (n_keys); null: the key index
    const KeyValueTiles* tiles = nullptr;  // given: the keys and values are read through it (k, v unused)
};

struct CachedAttentionOutputs {
    float* out = nullptr;  // (n_queries, out_stride): NH heads of HS floats per row
    long out_stride = 0;
    float* weights = nullptr;        // (NH, n_queries, n_keys) token weights, zero where masked; null: not kept
    float* slot_weights = nullptr;   // (NH, n_queries) the slot column's weight (designs with a slot)
    float* key_attention = nullptr;  // (NH, n_keys): += the weight each key receives from these queries
};

void cached_attention_forward(const CachedAttentionOutputs& outputs, const CachedAttentionInputs& in,
                              const AttentionParams& params, const CachedAttentionDims& dims,
                              const AttentionSpec& spec, const AttentionMask& mask);

}  // namespace sinklab
