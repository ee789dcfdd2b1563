#include "attention/blockwise_attention.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <omp.h>

#include "core/error.h"
#include "ops/vector_math.h"

namespace sinklab {

bool blockwise_attention_supports(const AttentionSpec& spec) {
    return spec.kind == AttentionKind::softmax && spec.normalised && !spec.has_slot() && !spec.value_bias;
}

namespace {

// One query row of a strip, in place: scores s[0, width) in, weights out (0 outside the visible
// [lo, hi]), with the reference softmax's operations in its order (max, e = exp(s - m), their float
// sum, w = e / sum), so the weights are the reference's. Adds each weight to its column's sum and
// returns the row's entropy H = -sum_j w_j ln w_j = ln(sum) - sum_j e_j (s_j - m) / sum, since
// ln w_j = s_j - m - ln(sum).
float strip_row(float* s, int width, int lo, int hi, double* column) {
    float m = -INFINITY;
    #pragma omp simd reduction(max : m)
    for (int c = lo; c <= hi; ++c) m = std::max(m, s[c]);
    float sum = 0.0f;
    double weighted = 0.0;  // sum_j e_j (s_j - m)
    #pragma omp simd reduction(+ : sum, weighted)
    for (int c = lo; c <= hi; ++c) {
        const float shifted = s[c] - m;
        const float e = exp_fast(shifted);
        sum += e;
        weighted += static_cast<double>(e) * shifted;
        s[c] = e;
    }
    const float inv = 1.0f / sum;
    #pragma omp simd
    for (int c = lo; c <= hi; ++c) s[c] *= inv;
    if (column)
        #pragma omp simd
        for (int c = lo; c <= hi; ++c) column[c] += s[c];
    std::fill(s, s + lo, 0.0f);
    std::fill(s + hi + 1, s + width, 0.0f);
    return static_cast<float>(std::log(static_cast<double>(sum)) - weighted / sum);
}

}  // namespace

void blockwise_attention_forward(const BlockwiseAttentionOutputs& o, const AttentionInputs& in,
                                 const AttentionDims& d, const AttentionSpec& spec, const AttentionMask& mask,
                                 const BlockwiseAttentionOptions& options) {
    spec.validate();
    SINKLAB_CHECK(blockwise_attention_supports(spec), "attention",
                  "the blockwise kernel computes softmax attention without slot or value bias; design '{}' needs "
                  "the materialised path",
                  spec.name());
    SINKLAB_CHECK(!in.score_bias, "attention",
                  "the blockwise kernel takes no (NH, T, T) score-bias table: that table is the memory it avoids");
    SINKLAB_CHECK(d.NKV > 0 && d.NH % d.NKV == 0, "attention", "{} query heads cannot share {} kv heads", d.NH, d.NKV);
    SINKLAB_CHECK(in.qkv && o.out, "attention", "the blockwise kernel needs qkv and an output buffer (B, T, NH * HS)");
    SINKLAB_CHECK(options.query_block > 0, "attention", "the query block must be positive, got {}", options.query_block);
    const int T = d.T, HS = d.HS, group = d.NH / d.NKV;
    const int QB = std::min(options.query_block, T);
    const long qs = d.qkv_stride(), os = d.out_stride();
    const float scale = attention_scale(spec, HS), softcap = options.softcap;
    #pragma omp parallel
    {
        std::vector<float> strip(static_cast<size_t>(QB) * T);  // (QB, keys) scores, then weights
        std::vector<double> column(o.column_sums ? T : 0);     // (T) column sums of one (b, h)
        // Each (b, h) is one task: its column sums gather the strips in a fixed order, so the result
        // does not depend on the thread schedule.
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < d.B; ++b) {
            for (int h = 0; h < d.NH; ++h) {
                const int kvh = h / group;
                const float* q = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(h) * HS;
                const float* k = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(d.NH + kvh) * HS;
                const float* v = in.qkv + static_cast<long>(b) * T * qs + static_cast<long>(d.NH + d.NKV + kvh) * HS;
                float* out = o.out + static_cast<long>(b) * T * os + static_cast<long>(h) * HS;
                const long bh = static_cast<long>(b) * d.NH + h;
                std::fill(column.begin(), column.end(), 0.0);
                for (int i0 = 0; i0 < T; i0 += QB) {
                    const int rows = std::min(QB, T - i0);
                    // rows i see keys [lo(i), hi(i)], both non-decreasing in i: the strip spans [lo(i0), hi(last row)]
                    const int key_lo = mask.lo(i0), width = mask.hi(i0 + rows - 1, T) + 1 - key_lo;
                    // scores = scale q k^T (+ soft cap)   (rows, width)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, width, HS, scale, q + i0 * qs, qs,
                                k + key_lo * qs, qs, 0.0f, strip.data(), width);
                    if (softcap > 0.0f)
                        for (long n = static_cast<long>(rows) * width, x = 0; x < n; ++x)
                            strip[x] = softcap * std::tanh(strip[x] / softcap);
                    for (int r = 0; r < rows; ++r) {
                        const float entropy = strip_row(strip.data() + static_cast<long>(r) * width, width,
                                                        mask.lo(i0 + r) - key_lo, mask.hi(i0 + r, T) - key_lo,
                                                        o.column_sums ? column.data() + key_lo : nullptr);
                        if (o.row_entropy) o.row_entropy[bh * T + i0 + r] = entropy;
                    }
                    // out rows = w v   (rows, HS)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, HS, width, 1.0f, strip.data(), width,
                                v + key_lo * qs, qs, 0.0f, out + i0 * os, os);
                }
                if (o.column_sums)
                    for (int j = 0; j < T; ++j) o.column_sums[bh * T + j] = static_cast<float>(column[j]);
            }
        }
    }
}

}  // namespace sinklab
