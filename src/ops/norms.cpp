#include "ops/norms.h"

#include <cmath>
#include <cstring>
#include <vector>

#include <omp.h>

namespace sinklab {

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps) {
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
        const float* x = inp + static_cast<long>(n) * C;
        float* y = out + static_cast<long>(n) * C;
        float m = 0.0f;
        #pragma omp simd reduction(+ : m)
        for (int c = 0; c < C; ++c) m += x[c];
        m /= C;
        float v = 0.0f;
        #pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; ++c) {
            float d = x[c] - m;
            v += d * d;
        }
        v /= C;
        float s = 1.0f / std::sqrt(v + eps);
        #pragma omp simd
        for (int c = 0; c < C; ++c) {
            float normed = (x[c] - m) * s;
            y[c] = normed * (weight ? weight[c] : 1.0f) + (bias ? bias[c] : 0.0f);
        }
        mean[n] = m;
        rstd[n] = s;
    }
}

// Per-thread partial sums for the parameter gradients, reduced in a fixed order so that results
// are bitwise reproducible for a given thread count (exact resume depends on it).
static void reduce_partials(float* target, const std::vector<float>& partials, int threads, int C) {
    for (int c = 0; c < C; ++c) {
        float sum = 0.0f;
        for (int t = 0; t < threads; ++t) sum += partials[static_cast<size_t>(t) * C + c];
        target[c] += sum;
    }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C) {
    // in the forward pass this was: y = (x - mean) * rstd * weight + bias
    const int threads = omp_get_max_threads();
    std::vector<float> dw_part(dweight ? static_cast<size_t>(threads) * C : 0, 0.0f);
    std::vector<float> db_part(dbias ? static_cast<size_t>(threads) * C : 0, 0.0f);
    #pragma omp parallel num_threads(threads)
    {
        const int tid = omp_get_thread_num();
        float* dw = dweight ? dw_part.data() + static_cast<size_t>(tid) * C : nullptr;
        float* db = dbias ? db_part.data() + static_cast<size_t>(tid) * C : nullptr;
        #pragma omp for schedule(static)
        for (int n = 0; n < N; ++n) {
            const float* x = inp + static_cast<long>(n) * C;
            const float* g = dout + static_cast<long>(n) * C;
            float* dx = dinp + static_cast<long>(n) * C;
            const float m = mean[n], s = rstd[n];
            float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
            #pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
            for (int c = 0; c < C; ++c) {
                float normed = (x[c] - m) * s;
                float dnorm = weight ? weight[c] * g[c] : g[c];
                dnorm_mean += dnorm;
                dnorm_norm_mean += dnorm * normed;
            }
            dnorm_mean /= C;
            dnorm_norm_mean /= C;
            // one loop per output, each vectorised (`omp simd`: the buffers never overlap)
            if (db) {
                #pragma omp simd
                for (int c = 0; c < C; ++c) db[c] += g[c];
            }
            if (dw) {
                #pragma omp simd
                for (int c = 0; c < C; ++c) dw[c] += (x[c] - m) * s * g[c];
            }
            #pragma omp simd
            for (int c = 0; c < C; ++c) {
                float normed = (x[c] - m) * s;
                float dnorm = weight ? weight[c] * g[c] : g[c];
                dx[c] += (dnorm - dnorm_mean - normed * dnorm_norm_mean) * s;
            }
        }
    }
    if (dweight) reduce_partials(dweight, dw_part, threads, C);
    if (dbias) reduce_partials(dbias, db_part, threads, C);
}

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps,
                     float weight_offset) {
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
        const float* x = inp + static_cast<long>(n) * C;
        float* y = out + static_cast<long>(n) * C;
        float ss = 0.0f;
        #pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; ++c) ss += x[c] * x[c];
        float s = 1.0f / std::sqrt(ss / C + eps);
        #pragma omp simd
        for (int c = 0; c < C; ++c) y[c] = x[c] * s * (weight ? weight[c] + weight_offset : 1.0f);
        rstd[n] = s;
    }
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C, float weight_offset) {
    // in the forward pass this was: y = x * rstd * (weight + offset), rstd = 1 / sqrt(mean(x^2) + eps)
    const int threads = omp_get_max_threads();
    std::vector<float> dw_part(dweight ? static_cast<size_t>(threads) * C : 0, 0.0f);
    #pragma omp parallel num_threads(threads)
    {
        const int tid = omp_get_thread_num();
        float* dw = dweight ? dw_part.data() + static_cast<size_t>(tid) * C : nullptr;
        #pragma omp for schedule(static)
        for (int n = 0; n < N; ++n) {
            const float* x = inp + static_cast<long>(n) * C;
            const float* g = dout + static_cast<long>(n) * C;
            float* dx = dinp + static_cast<long>(n) * C;
            const float s = rstd[n];
            float dot = 0.0f;  // sum_c dnorm_c * x_c
            #pragma omp simd reduction(+ : dot)
            for (int c = 0; c < C; ++c) {
                float w = weight ? weight[c] + weight_offset : 1.0f;
                dot += g[c] * w * x[c];
            }
            if (dw) {
                #pragma omp simd
                for (int c = 0; c < C; ++c) dw[c] += g[c] * x[c] * s;
            }
            const float coeff = dot * s * s * s / C;
            #pragma omp simd
            for (int c = 0; c < C; ++c) {
                float w = weight ? weight[c] + weight_offset : 1.0f;
                dx[c] += g[c] * w * s - x[c] * coeff;
            }
        }
    }
    if (dweight) reduce_partials(dweight, dw_part, threads, C);
}

namespace {

// rows (N, width) <- the `width` floats at `column` of each of the N rows of x (stride floats apart).
void gather_columns(float* rows, const float* x, int N, long stride, long column, int width) {
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < N; ++t)
        std::memcpy(rows + static_cast<long>(t) * width, x + t * stride + column, width * sizeof(float));
}

// The inverse: rows back into their columns of x.
void scatter_columns(float* x, const float* rows, int N, long stride, long column, int width) {
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < N; ++t)
        std::memcpy(x + t * stride + column, rows + static_cast<long>(t) * width, width * sizeof(float));
}

}  // namespace

void qk_rmsnorm_forward(float* qkv, float* rstd, float* rows, const float* weight, int N, long stride, long column,
                        int width, int norm_width, float eps, float weight_offset) {
    gather_columns(rows, qkv, N, stride, column, width);
    rmsnorm_forward(rows, rstd, rows, weight, N * (width / norm_width), norm_width, eps, weight_offset);
    scatter_columns(qkv, rows, N, stride, column, width);
}

void qk_rmsnorm_backward(float* dqkv, float* dweight, const float* qkv_in, const float* weight, const float* rstd,
                         int N, long stride, long column, int width, int norm_width, float weight_offset) {
    const size_t n = static_cast<size_t>(N) * width;
    std::vector<float> dnormed(n), inp(n), dinp(n, 0.0f);  // (N, width) each
    gather_columns(dnormed.data(), dqkv, N, stride, column, width);
    gather_columns(inp.data(), qkv_in, N, stride, column, width);
    rmsnorm_backward(dinp.data(), dweight, dnormed.data(), inp.data(), weight, rstd, N * (width / norm_width),
                     norm_width, weight_offset);
    scatter_columns(dqkv, dinp.data(), N, stride, column, width);
}

}  // namespace sinklab
