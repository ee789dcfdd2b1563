#pragma once
// The reference attention kernel: materialises the weights (B, NH, T, T), saves them for backward
// and for probes. Query, key and value heads are read from one fused projection buffer.
#include "attention/attention_spec.h"

namespace sinklab {

struct AttentionDims {
    int B = 0, T = 0;
    int NH = 0;   // query heads
    int NKV = 0;  // key/value heads; NH % NKV == 0, query head h reads kv head h / (NH / NKV)
    int HS = 0;   // head size
    // qkv rows are (NH + 2 NKV) * HS floats: q heads, then k heads, then v heads.
    long qkv_stride() const { return static_cast<long>(NH + 2 * NKV) * HS; }
    long out_stride() const { return static_cast<long>(NH) * HS; }
};

// Optional additive score bias (ALiBi, relative buckets): bias(h, i, j) from a table
// (NH, T, T) when given; null for none.
struct AttentionInputs {
    const float* qkv = nullptr;         // (B, T, (NH + 2 NKV) * HS)
    const float* score_bias = nullptr;  // (NH, T, T) or null
};

// out (B, T, NH * HS); weights (B, NH, T, T) receives the attention weights (zeros where masked).
void attention_forward(float* out, float* weights, const AttentionInputs& in, const AttentionDims& dims,
                       const AttentionSpec& spec, const AttentionMask& mask);

// Accumulates dqkv (B, T, (NH + 2 NKV) * HS) from dout (B, T, NH * HS).
void attention_backward(float* dqkv, const float* dout, const AttentionInputs& in, const float* weights,
                        const AttentionDims& dims, const AttentionSpec& spec, const AttentionMask& mask);

float attention_scale(const AttentionSpec& spec, int HS);

}  // namespace sinklab
