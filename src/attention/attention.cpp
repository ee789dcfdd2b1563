#include "attention/attention.h"

#include <cblas.h>

#include <cmath>
#include <cstring>
#include <vector>

#include <omp.h>

#include "core/error.h"

namespace sinklab {

float attention_scale(const AttentionSpec& spec, int HS) {
    return spec.scale > 0.0f ? spec.scale : 1.0f / std::sqrt(static_cast<float>(HS));
}

namespace {

// Normalised softmax over the visible keys of one row, in place on `row` (length T); entries
// outside [lo, hi] become 0. Max-subtracted, accumulated in float.
void softmax_row(float* row, int T, int lo, int hi) {
    float maxv = -INFINITY;
    for (int j = lo; j <= hi; ++j) maxv = row[j] > maxv ? row[j] : maxv;
    float sum = 0.0f;
    for (int j = lo; j <= hi; ++j) {
        float e = std::exp(row[j] - maxv);
        row[j] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j < lo; ++j) row[j] = 0.0f;
    for (int j = lo; j <= hi; ++j) row[j] *= inv;
    for (int j = hi + 1; j < T; ++j) row[j] = 0.0f;
}

}  // namespace

void attention_forward(float* out, float* weights, const AttentionInputs& in, const AttentionDims& d,
                       const AttentionSpec& spec, const AttentionMask& mask) {
    SINKLAB_ASSERT(d.NH % d.NKV == 0);
    const int T = d.T, HS = d.HS, group = d.NH / d.NKV;
    const long qs = d.qkv_stride(), os = d.out_stride();
    const float scale = attention_scale(spec, HS);
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < d.B; ++b) {
        for (int h = 0; h < d.NH; ++h) {
            const int kvh = h / group;
            const float* q = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(h) * HS;
            const float* k = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(d.NH + kvh) * HS;
            const float* v = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(d.NH + d.NKV + kvh) * HS;
            float* w = weights + (static_cast<long>(b) * d.NH + h) * T * T;  // (T, T)
            // scores: w = scale * q k^T   (T, T)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, q, qs, k, qs, 0.0f, w, T);
            const float* bias = in.score_bias ? in.score_bias + static_cast<long>(h) * T * T : nullptr;
            for (int i = 0; i < T; ++i) {
                float* row = w + static_cast<long>(i) * T;
                const int lo = mask.lo(i), hi = mask.hi(i, T);
                if (bias)
                    for (int j = lo; j <= hi; ++j) row[j] += bias[static_cast<long>(i) * T + j];
                softmax_row(row, T, lo, hi);
            }
            // out_h = w v   (T, HS)
            float* o = out + static_cast<long>(b) * T * os + static_cast<long>(h) * HS;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, w, T, v, qs, 0.0f, o, os);
        }
    }
}

void attention_backward(float* dqkv, const float* dout, const AttentionInputs& in, const float* weights,
                        const AttentionDims& d, const AttentionSpec& spec, const AttentionMask& mask) {
    const int T = d.T, HS = d.HS, group = d.NH / d.NKV;
    const long qs = d.qkv_stride(), os = d.out_stride();
    const float scale = attention_scale(spec, HS);
    // Parallel over (batch, kv head): the query heads of one group all write that group's dk, dv.
    #pragma omp parallel
    {
        std::vector<float> dw(static_cast<size_t>(T) * T);  // (T, T) scratch: dL/dweights, then dL/dscores
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < d.B; ++b) {
            for (int kvh = 0; kvh < d.NKV; ++kvh) {
                const long base = static_cast<long>(b) * T * qs;
                const float* k = in.qkv + base + static_cast<long>(d.NH + kvh) * HS;
                const float* v = in.qkv + base + static_cast<long>(d.NH + d.NKV + kvh) * HS;
                float* dk = dqkv + base + static_cast<long>(d.NH + kvh) * HS;
                float* dv = dqkv + base + static_cast<long>(d.NH + d.NKV + kvh) * HS;
                for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
                    const float* q = in.qkv + base + static_cast<long>(h) * HS;
                    float* dq = dqkv + base + static_cast<long>(h) * HS;
                    const float* w = weights + (static_cast<long>(b) * d.NH + h) * T * T;
                    const float* o_grad = dout + static_cast<long>(b) * T * os + static_cast<long>(h) * HS;
                    // in the forward pass this was: out = w v
                    // dv += w^T dout ; dw = dout v^T
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, w, T, o_grad, os, 1.0f, dv,
                                qs);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, 1.0f, o_grad, os, v, qs, 0.0f,
                                dw.data(), T);
                    // softmax: ds_ij = w_ij (dw_ij - sum_k w_ik dw_ik), visible entries only
                    for (int i = 0; i < T; ++i) {
                        const float* wr = w + static_cast<long>(i) * T;
                        float* g = dw.data() + static_cast<long>(i) * T;
                        const int lo = mask.lo(i), hi = mask.hi(i, T);
                        float dot = 0.0f;
                        for (int j = lo; j <= hi; ++j) dot += wr[j] * g[j];
                        for (int j = 0; j < lo; ++j) g[j] = 0.0f;
                        for (int j = lo; j <= hi; ++j) g[j] = wr[j] * (g[j] - dot);
                        for (int j = hi + 1; j < T; ++j) g[j] = 0.0f;
                    }
                    // scores = scale q k^T: dq += scale ds k ; dk += scale ds^T q
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, scale, dw.data(), T, k, qs, 1.0f,
                                dq, qs);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, scale, dw.data(), T, q, qs, 1.0f,
                                dk, qs);
                }
            }
        }
    }
}

}  // namespace sinklab
