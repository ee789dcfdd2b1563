#pragma once
// Linear layer: out = inp @ weight^T + bias, weights stored [OC, C] as in PyTorch's nn.Linear.
// A thin layer over cblas_sgemm (OpenBLAS, OpenMP build).

#include "ops/grad_write.h"

namespace sinklab {

// How a product's rows are split into OpenBLAS calls (matmul.cpp says why): `automatic` takes
// blocks for OpenBLAS's small-matrix kernel where this machine's OpenBLAS core has one, and one
// share per thread elsewhere; the others force a plan, so that tests and benchmarks can run each
// on any machine. Process-wide; not for use while products run.
enum class RowBlocking { automatic, per_thread, small_blocks };
void set_row_blocking(RowBlocking blocking);

// out (N, OC) = inp (N, C) @ weight (OC, C)^T + bias (OC) + residual (N, OC); bias and residual may
// be null. A residual added here costs no pass of its own: each block of rows starts from it while
// they are in cache. residual may be out itself.
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int C, int OC,
                    const float* residual = nullptr);

// Accumulates: dinp += dout @ weight (or dinp = dout @ weight, GradWrite::overwrite);
// dweight += dout^T @ inp; dbias += sum_rows(dout).
// dinp, dweight or dbias may be null when that gradient is not needed.
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC, GradWrite dinp_write = GradWrite::accumulate);

}  // namespace sinklab
