#include "ops/matmul.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include <cblas.h>
#include <omp.h>

#include "ops/transpose.h"

namespace sinklab {

// A linear layer's products are thin: thousands of rows (tokens) against a few hundred columns.
// OpenBLAS's threaded driver splits such a product across threads that share packing buffers and
// wait for each other; on the tiny preset's shapes it reaches 100-205 GFLOP/s of a 210 peak, and
// varies from call to call. So sinklab splits the tokens itself: each thread makes single-threaded
// calls on its own rows (inside a parallel region OpenBLAS runs serially), 200-220 GFLOP/s on the
// same shapes with either of OpenBLAS's x86 kernels. The weight gradient sums over the tokens, so
// the first thread adds its rows into the gradient, the others into private buffers added to it in
// thread order: deterministic for a given thread count, as resume requires.
//
// OpenBLAS's Skylake-X family kernels also have a small-matrix path that skips packing, taken when
// M * N * K <= 100^3 (kernel/x86_64/sgemm_small_kernel_permit_skylakex.c). There the rows go in
// blocks small enough for it: a further 5-10% on d_model 128. Its transposed-B variant is slow, so
// the forward product takes the weight transposed once per call.
namespace {

constexpr long kSmallKernelLimit = 100L * 100L * 100L;

RowBlocking row_blocking = RowBlocking::automatic;

bool blas_has_small_matrix_kernel() {
    static const bool has = [] {
        std::string core = openblas_get_corename();
        std::transform(core.begin(), core.end(), core.begin(), [](unsigned char ch) { return std::tolower(ch); });
        return core == "skylakex" || core == "cooperlake" || core == "sapphirerapids";
    }();
    return has;
}

// Rows per call when N rows of a (cols x depth) product go through the small-matrix kernel: a
// block it accepts (a multiple of 8, its row unroll, so never 1-7). 0 where it does not apply, or
// where N is too few rows to repay the forward's weight transpose (generation feeds one row at a
// time): then each thread makes one call.
long small_kernel_rows(long N, long cols, long depth) {
    const bool small_blocks = row_blocking == RowBlocking::automatic ? blas_has_small_matrix_kernel()
                                                                     : row_blocking == RowBlocking::small_blocks;
    if (!small_blocks || N < 64) return 0;
    long rows = kSmallKernelLimit / (cols * depth);
    return rows - rows % 8;
}

// Threads for N rows: a thread gets at least kMinRowsPerThread of them, so that a short product
// (generation's few rows) stays one call, as OpenBLAS itself would run it.
constexpr int kMinRowsPerThread = 32;
int row_threads(int N) { return std::max(1, std::min(omp_get_max_threads(), N / kMinRowsPerThread)); }

// The calling thread's contiguous share [begin, end) of N rows, inside a parallel region.
struct RowShare {
    long begin, end;
};
RowShare thread_share(int N) {
    const int team = omp_get_num_threads(), tid = omp_get_thread_num();
    const long share = (static_cast<long>(N) + team - 1) / team;
    const long begin = std::min<long>(N, tid * share);
    return {begin, std::min<long>(N, begin + share)};
}

// Calls block(first_row, rows) over [0, N): each thread takes a contiguous share, in blocks of at
// most block_rows (0: the whole share at once).
template <class Block>
void for_row_blocks(int N, long block_rows, Block block) {
    #pragma omp parallel num_threads(row_threads(N))
    {
        const auto [begin, end] = thread_share(N);
        const long step = block_rows > 0 ? block_rows : std::max<long>(1, end - begin);
        for (long r = begin; r < end; r += step) block(r, static_cast<int>(std::min(step, end - r)));
    }
}

// The private buffers of the weight gradient stay allocated with their thread: above this many
// floats in all (64 MiB; a large vocabulary's head), OpenBLAS threads the product itself instead.
constexpr size_t kMaxPartialFloats = size_t{1} << 24;

// dweight (OC, C) += dout^T inp, a sum over the N rows. The first thread adds its share of the rows
// straight into dweight; each other thread sums its share into a private buffer, and those are
// added in thread order: deterministic for a given thread count, and into a zeroed dweight the
// same bits as adding every buffer to it.
void weight_gradient(float* dweight, const float* dout, const float* inp, int N, int C, int OC) {
    const int threads = row_threads(N);
    const size_t size = static_cast<size_t>(OC) * C;
    if (threads == 1 || size * (threads - 1) > kMaxPartialFloats) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
        return;
    }
    static thread_local std::vector<float> partial_buffer;
    partial_buffer.resize(size * (threads - 1));
    float* partials = partial_buffer.data();  // this thread's buffers, shared with the team below
    #pragma omp parallel num_threads(threads)
    {
        const int team = omp_get_num_threads(), tid = omp_get_thread_num();
        const auto [begin, end] = thread_share(N);
        const long rows = end - begin;
        float* part = tid == 0 ? dweight : partials + size * (tid - 1);
        if (rows > 0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, static_cast<int>(rows), 1.0f, dout + begin * OC,
                        OC, inp + begin * C, C, tid == 0 ? 1.0f : 0.0f, part, C);
        else if (tid > 0)
            std::fill(part, part + size, 0.0f);
        #pragma omp barrier
        #pragma omp for schedule(static)
        for (size_t i = 0; i < size; ++i) {
            float sum = dweight[i];
            for (int t = 1; t < team; ++t) sum += partials[size * (t - 1) + i];
            dweight[i] = sum;
        }
    }
}

}  // namespace

void set_row_blocking(RowBlocking blocking) { row_blocking = blocking; }

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int C, int OC,
                    const float* residual) {
    // the product accumulates onto what the rows start from: the bias, the residual, their sum
    const float beta = bias || residual ? 1.0f : 0.0f;
    auto start_rows = [&](float* o, long r, int rows) {
        if (residual && residual != out) std::copy(residual + r * OC, residual + (r + rows) * OC, o);
        if (bias && residual) {
            for (int i = 0; i < rows; ++i) {
                float* row = o + static_cast<long>(i) * OC;
                #pragma omp simd
                for (int j = 0; j < OC; ++j) row[j] += bias[j];
            }
        } else if (bias) {
            for (int i = 0; i < rows; ++i) std::copy(bias, bias + OC, o + static_cast<long>(i) * OC);
        }
    };
    if (N == 1) {
        // One row (a decoding step): a matrix-vector product reads the weight once, where sgemm first
        // packs all of it (OpenBLAS's incopy was half of a tiny-preset decoding step).
        start_rows(out, 0, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, C, 1.0f, weight, C, inp, 1, beta, out, 1);
        return;
    }
    const long block_rows = small_kernel_rows(N, OC, C);
    const bool small = block_rows > 0;
    // thread_local, so every access inside the parallel regions goes through this thread's pointer
    static thread_local std::vector<float> weight_t;
    if (small) {
        weight_t.resize(static_cast<size_t>(OC) * C);
        transpose_rows(weight_t.data(), weight, OC, C, C);  // at most 1e6 / 8 floats (small_kernel_rows)
    }
    const float* wt = weight_t.data();
    for_row_blocks(N, block_rows, [&](long r, int rows) {
        float* o = out + r * OC;
        start_rows(o, r, rows);
        if (small)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, OC, C, 1.0f, inp + r * C, C, wt, OC, beta, o,
                        OC);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, OC, C, 1.0f, inp + r * C, C, weight, C, beta, o,
                        OC);
    });
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC, GradWrite dinp_write) {
    // in the forward pass this was: out = inp @ weight^T + bias
    if (dinp) {
        const float beta = dinp_write == GradWrite::accumulate ? 1.0f : 0.0f;
        for_row_blocks(N, small_kernel_rows(N, C, OC), [&](long r, int rows) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, C, OC, 1.0f, dout + r * OC, OC, weight, C,
                        beta, dinp + r * C, C);
        });
    }
    if (dweight) weight_gradient(dweight, dout, inp, N, C, OC);
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
