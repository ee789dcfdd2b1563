#pragma once
// Elementwise activations of the MLP, and the residual add.

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

// out = a + b
void add_forward(float* out, const float* a, const float* b, long n);
// dst += src
void accumulate(float* dst, const float* src, long n);

}  // namespace sinklab
