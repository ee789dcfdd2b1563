#pragma once
// Output gate of gated attention (Qiu et al. 2025, qiuzh20/gated_attention; Qwen3-Next; see
// research/variants.md b4): Y' = attention(Q, K, V) * sigmoid(X W_g), X the block's normed input.
// The model computes gate_logits = X W_g; this op applies them. Elementwise: one logit per output
// entry (N, NH * HS); headwise: one per head (N, NH), shared by the head's HS entries.
#include "attention/attention_spec.h"

namespace sinklab {

// Gate logits per token: NH * HS (elementwise) or NH (headwise).
int output_gate_width(GateKind kind, int NH, int HS);

// out (N, NH * HS) = attn (N, NH * HS) * sigmoid(gate_logits); out may alias attn.
void output_gate_forward(float* out, const float* attn, const float* gate_logits, int N, int NH, int HS,
                         GateKind kind);

// Accumulates dattn (N, NH * HS) and dgate_logits (N, output_gate_width); either may be null.
void output_gate_backward(float* dattn, float* dgate_logits, const float* dout, const float* attn,
                          const float* gate_logits, int N, int NH, int HS, GateKind kind);

}  // namespace sinklab
