#pragma once
// Blockwise attention: every design of AttentionSpec, forward and backward, without a T x T matrix
// (the scheme of FlashAttention, Dao et al. 2022, on the CPU). A strip of query rows meets the keys
// it sees one tile at a time. Normalised designs keep running sums per row: softmax and softpick a
// running maximum m as well, rescaling what they have summed when m grows; unnormalised designs
// just add. Each row ends with its normaliser Z, and the forward keeps only per-row statistics
// (m, the sum S; softpick the argmax) for backward, which recomputes the scores tile by tile
// (docs/attention-designs.md, "Blockwise kernel"). Memory: linear in T.
//
// The slot, value bias, sink logit, gates (the model's), windows, prefixes, soft-capping and the
// positional biases all run inside, with the gradients of the slot parameters, the sigmoid bias
// and the relative-bias table accumulated in the backward. The statistics that sink metrics need
// (the slot's weight, each row's entropy, the weight each of the first keys receives) are taps of
// the same forward, read through the design's proxy as metrics' attention_weight_stats reads
// materialised weights.
#include <cstdint>

#include "attention/attention.h"
#include "attention/proxy_kind.h"

namespace sinklab {

// What the forward keeps for backward, one value per query row: (B, NH, T) each.
struct AttentionRowStats {
    float* shift = nullptr;     // m: softmax and softpick, the row's largest score (slot included)
    float* sum = nullptr;       // S: the sum the normaliser Z = N(S) reads (normalised designs), in units of e^m
    int32_t* argmax = nullptr;  // softpick: the key whose score is m (kSlotArgmax: the slot)
};
inline constexpr int32_t kSlotArgmax = -1;

struct AttentionRowStatsNeeds {
    bool shift = false, sum = false, argmax = false;
};
AttentionRowStatsNeeds attention_row_stats_needs(const AttentionSpec& spec);

// Statistics of the weights computed as the forward streams by; a null buffer is not computed.
// Column sums and entropies read the token columns through `proxy` (each row rescaled by
// 1 / (sum + 1e-8) of its weights or of their absolute values; metrics/proxy.h says which design
// is read how), as metrics' attention_weight_stats reads materialised weights.
struct AttentionTaps {
    float* slot_weights = nullptr;  // (B, NH, T): the slot column's weight (designs with a slot)
    float* column_sums = nullptr;   // (B, NH, columns): key j's weight summed over the queries, j < columns
    int columns = 0;                // the first keys whose column sums are wanted (a probe's positions)
    float* row_entropy = nullptr;   // (B, NH, T): -sum_j w_ij ln w_ij over the token columns, nats
    ProxyKind proxy = ProxyKind::none;
};

// Query rows per strip and keys per tile (tests use odd sizes). The defaults were measured
// (bench/attention_kernel, docs/performance.md): a strip of 96 rows (16 register blocks of 6) against
// tiles of 128 keys keeps a tile's scores (48 KiB) and its keys in L2 and reads each tile of keys
// once per 96 queries.
struct BlockwiseTiles {
    int query_rows = 96;
    int key_columns = 128;
};

// out (B, T, NH * HS); `stats` as attention_row_stats_needs asks (all null for inference); taps.
void blockwise_attention_forward(float* out, const AttentionRowStats& stats, const AttentionTaps& taps,
                                 const AttentionInputs& in, const AttentionParams& params, const AttentionDims& dims,
                                 const AttentionSpec& spec, const AttentionMask& mask, const BlockwiseTiles& tiles = {});

// Accumulates dqkv (or writes it, GradWrite::overwrite) and dparams from dout (B, T, NH * HS), given
// the forward's output `out` and its row statistics.
void blockwise_attention_backward(float* dqkv, const AttentionParamGrads& dparams, const float* dout, const float* out,
                                  const AttentionInputs& in, const AttentionParams& params,
                                  const AttentionRowStats& stats, const AttentionDims& dims, const AttentionSpec& spec,
                                  const AttentionMask& mask, GradWrite dqkv_write = GradWrite::accumulate,
                                  const BlockwiseTiles& tiles = {});

}  // namespace sinklab
