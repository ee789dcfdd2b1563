#pragma once
// Blockwise attention for inference: the same output as the reference kernel (attention.h) without
// ever storing a T x T matrix. A strip of query rows at a time meets the keys those rows see; while
// it computes the output the kernel accumulates the statistics of the weights that the sink metrics
// need (DESIGN.md section 4): how much weight each key column receives in total, and the entropy of
// each query row. Memory: one (query_block, T) strip per thread, linear in T (docs/probe.md,
// "Attention paths and memory").
//
// Each row of a strip goes through the reference softmax's own operations in its order (row
// maximum m, e_j = exp(s_j - m), their float sum, w_j = e_j / sum), so the weights are the
// reference's; the output, column sums and entropies differ from the materialised path's only by
// the summation order of the products.
#include "attention/attention.h"

namespace sinklab {

// Where the kernel writes. `out` is required; a null statistic is not computed.
struct BlockwiseAttentionOutputs {
    float* out = nullptr;          // (B, T, NH * HS), like attention_forward's out
    float* column_sums = nullptr;  // (B, NH, T): sum over queries i of w_ij, the weight key j receives
    float* row_entropy = nullptr;  // (B, NH, T): -sum_j w_ij ln w_ij of query row i, in nats
};

struct BlockwiseAttentionOptions {
    float softcap = 0.0f;  // scores become softcap * tanh(s / softcap) before the softmax (Gemma 2); 0 = off
    int query_block = 64;  // query rows per strip
};

// The designs the blockwise kernel computes: softmax attention without a slot column or value
// bias (the gate of gated attention and the sink token are the model's, so those designs qualify).
bool blockwise_attention_supports(const AttentionSpec& spec);

// Throws for a design it does not support (naming it) and for an additive score-bias table, whose
// (NH, T, T) size is what this kernel exists to avoid.
void blockwise_attention_forward(const BlockwiseAttentionOutputs& outputs, const AttentionInputs& in,
                                 const AttentionDims& dims, const AttentionSpec& spec, const AttentionMask& mask,
                                 const BlockwiseAttentionOptions& options = {});

}  // namespace sinklab
