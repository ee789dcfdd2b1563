#include "ops/matmul.h"

#include <cblas.h>

namespace sinklab {

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int C, int OC) {
    if (bias) {
        #pragma omp parallel for schedule(static)
        for (int n = 0; n < N; ++n) {
            float* row = out + static_cast<long>(n) * OC;
            for (int o = 0; o < OC; ++o) row[o] = bias[o];
        }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C, bias ? 1.0f : 0.0f, out,
                OC);
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC) {
    // in the forward pass this was: out = inp @ weight^T + bias
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    if (dweight)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
        // Column sums in double, a block of columns per task walking the rows in order: contiguous
        // loads that vectorise, and the same sum whatever the thread count.
        constexpr int kBlock = 64;
        const int blocks = (OC + kBlock - 1) / kBlock;
        #pragma omp parallel for schedule(static)
        for (int b = 0; b < blocks; ++b) {
            const int o0 = b * kBlock, width = OC - o0 < kBlock ? OC - o0 : kBlock;
            double sum[kBlock] = {};
            for (int n = 0; n < N; ++n) {
                const float* row = dout + static_cast<long>(n) * OC + o0;
                #pragma omp simd
                for (int o = 0; o < width; ++o) sum[o] += row[o];
            }
            for (int o = 0; o < width; ++o) dbias[o0 + o] += static_cast<float>(sum[o]);
        }
    }
}

}  // namespace sinklab
