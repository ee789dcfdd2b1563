#pragma once
// Elementwise activations of the MLP, soft-capping, and the residual add.

#include "ops/grad_write.h"

namespace sinklab {

// GELU, tanh approximation (GPT-2's "gelu_new"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
void gelu_forward(float* out, const float* inp, long n);
void gelu_backward(float* dinp, const float* inp, const float* dout, long n,
                   GradWrite write = GradWrite::accumulate);

// GELU, exact: 0.5 x (1 + erf(x / sqrt(2))) (PyTorch's default, GPT-NeoX's "gelu").
void gelu_erf_forward(float* out, const float* inp, long n);
void gelu_erf_backward(float* dinp, const float* inp, const float* dout, long n,
                       GradWrite write = GradWrite::accumulate);

void relu_forward(float* out, const float* inp, long n);
void relu_backward(float* dinp, const float* inp, const float* dout, long n,
                   GradWrite write = GradWrite::accumulate);

// Gated MLPs: out (N, F) = act(gate) * up, where gate_up (N, 2F) holds gate then up in each row
// (the output of one fused projection). SwiGLU: act = silu; GeGLU: act = gelu (tanh).
enum class GateActivation { silu, gelu };
void glu_forward(float* out, const float* gate_up, int N, int F, GateActivation act);
// dgate_up (N, 2F), accumulated unless `write` says otherwise.
void glu_backward(float* dgate_up, const float* gate_up, const float* dout, int N, int F, GateActivation act,
                  GradWrite write = GradWrite::accumulate);

// Soft-capping (Gemma 2's final logits): x = cap tanh(x / cap), in place.
void softcap_forward(float* x, long n, float cap);
// in the forward pass this was: y = cap tanh(x / cap), so dy/dx = 1 - (y / cap)^2. dx holds dL/dy
// on entry and dL/dx on return (in place, like the forward); y is the forward's output.
void softcap_backward(float* dx, const float* y, long n, float cap);

// gpt-oss's clamped SwiGLU (openai/gpt-oss gpt_oss/torch/model.py `swiglu`): with gate clamped to
// at most `limit` and up to [-limit, limit], out = gate sigmoid(alpha gate) (up + 1); gate_up as for
// glu_forward. Inference only.
void clamped_swiglu_forward(float* out, const float* gate_up, int N, int F, float limit, float alpha);

// out = a + b
void add_forward(float* out, const float* a, const float* b, long n);
// dst += src
void accumulate(float* dst, const float* src, long n);

}  // namespace sinklab
