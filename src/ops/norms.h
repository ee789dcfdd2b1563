#pragma once
// LayerNorm and RMSNorm over the last dimension C, one row per token.

namespace sinklab {

// out (N, C); mean, rstd (N) saved for backward. weight/bias may be null (non-parametric norm).
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C);

// out = inp / rms(inp) * (weight + weight_offset); rstd (N) saved for backward. weight_offset is 1
// for Gemma's (1 + w) convention, 0 otherwise.
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps,
                     float weight_offset = 0.0f);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C, float weight_offset = 0.0f);

}  // namespace sinklab
