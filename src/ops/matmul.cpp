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
        #pragma omp parallel for schedule(static)
        for (int o = 0; o < OC; ++o) {
            double sum = 0.0;
            for (int n = 0; n < N; ++n) sum += dout[static_cast<long>(n) * OC + o];
            dbias[o] += static_cast<float>(sum);
        }
    }
}

}  // namespace sinklab
