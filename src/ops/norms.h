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

// The q/k norm (OLMo2, Qwen3, Gemma 3): RMSNorm of the query or key heads inside qkv rows, in
// place. Each of the N rows of `stride` floats holds `width` floats of heads at `column`; they are
// normalised in vectors of `norm_width` floats (one head, HS, or all of a row's heads together,
// width). The heads are gathered into `rows` (N, width), which holds the normed heads afterwards,
// so that rmsnorm_forward runs on contiguous rows; rstd (N * width / norm_width) is saved.
void qk_rmsnorm_forward(float* qkv, float* rstd, float* rows, const float* weight, int N, long stride, long column,
                        int width, int norm_width, float eps, float weight_offset = 0.0f);
// in the forward pass this was: qkv[heads] = rmsnorm(qkv_in[heads]), in place. dqkv holds dL/d(normed
// heads) at those columns on entry and dL/d(qkv_in) there on return (the other columns untouched);
// qkv_in is qkv as it was before the forward. Accumulates dweight.
void qk_rmsnorm_backward(float* dqkv, float* dweight, const float* qkv_in, const float* weight, const float* rstd,
                         int N, long stride, long column, int width, int norm_width, float weight_offset = 0.0f);

}  // namespace sinklab
