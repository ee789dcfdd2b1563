#pragma once
// The small products of the blockwise kernel (a strip of query rows against a tile of keys): C (M x
// N) = alpha A B, or C += alpha A B, with B's rows contiguous and A read through two strides, so
// that A^T B needs no transposed copy. Tiles are a few dozen rows by a head or a tile wide and sit
// in L1/L2: OpenBLAS would pack both operands on every call, which costs as much as the product at
// these sizes (docs/performance.md, "Blockwise attention"). A register block of up to 6 rows by 64
// columns (24 vector accumulators) takes one row of B per step and broadcasts A's entries into it.
// Written with GCC's vector extensions, 16 floats wide: one AVX-512 register, or two AVX ones on a
// machine without AVX-512.
#include <cstring>

namespace sinklab::tile_products {

using v16 = float __attribute__((vector_size(64), aligned(4)));

inline v16 load(const float* p) {
    v16 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store(float* p, v16 v) { std::memcpy(p, &v, sizeof v); }

// C rows [0, MR) x columns [0, 16 NV) of the block at C: alpha sum_k A(m, k) B[k][:] (+ C).
template <int MR, int NV>
inline void block(int K, float alpha, const float* A, long a_row, long a_col, const float* B, long ldb, float* C,
                  long ldc, bool accumulate) {
    v16 c[MR][NV] = {};
    for (int k = 0; k < K; ++k) {
        v16 b[NV];
        #pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) b[v] = load(B + k * ldb + 16 * v);
        #pragma GCC unroll 12
        for (int m = 0; m < MR; ++m) {
            const float a = A[m * a_row + k * a_col];
            #pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) c[m][v] += a * b[v];
        }
    }
    #pragma GCC unroll 12
    for (int m = 0; m < MR; ++m)
        #pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            v16 r = c[m][v] * alpha;
            if (accumulate) r += load(C + m * ldc + 16 * v);
            store(C + m * ldc + 16 * v, r);
        }
}

// Rows [0, M) of a column block 16 NV wide, MR rows at a time, the last rows by a smaller block.
template <int MR, int NV>
inline void column_block(int M, int K, float alpha, const float* A, long a_row, long a_col, const float* B, long ldb,
                         float* C, long ldc, bool accumulate) {
    int m = 0;
    for (; m + MR <= M; m += MR)
        block<MR, NV>(K, alpha, A + m * a_row, a_row, a_col, B, ldb, C + m * ldc, ldc, accumulate);
    if (m == M) return;
    if constexpr (MR > 1) {
        const int rest = M - m;
        // the remainder in blocks of half, a quarter... of MR rows
        column_block<(MR + 1) / 2, NV>(rest, K, alpha, A + m * a_row, a_row, a_col, B, ldb, C + m * ldc, ldc,
                                       accumulate);
    }
}

// C (M x N, row stride ldc) = alpha A B, or += when `accumulate`; A(m, k) = A[m a_row + k a_col]
// (M x K), B (K x N) with rows of stride ldb.
inline void product(int M, int N, int K, float alpha, const float* A, long a_row, long a_col, const float* B, long ldb,
                    float* C, long ldc, bool accumulate) {
    int n = 0;
    for (; n + 64 <= N; n += 64) column_block<6, 4>(M, K, alpha, A, a_row, a_col, B + n, ldb, C + n, ldc, accumulate);
    if (n + 32 <= N) {
        column_block<12, 2>(M, K, alpha, A, a_row, a_col, B + n, ldb, C + n, ldc, accumulate);
        n += 32;
    }
    if (n + 16 <= N) {
        column_block<12, 1>(M, K, alpha, A, a_row, a_col, B + n, ldb, C + n, ldc, accumulate);
        n += 16;
    }
    if (n == N) return;
    // the last columns, fewer than 16
    for (int m = 0; m < M; ++m) {
        float* c = C + m * ldc;
        for (int j = n; j < N; ++j) {
            float sum = 0.0f;
            for (int k = 0; k < K; ++k) sum += A[m * a_row + k * a_col] * B[k * ldb + j];
            c[j] = alpha * sum + (accumulate ? c[j] : 0.0f);
        }
    }
}

}  // namespace sinklab::tile_products
