// The blockwise kernel against the reference kernel (materialised weights): the same output, and
// column sums and row entropies equal to those read from the reference weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "attention/blockwise_attention.h"
#include "core/error.h"
#include "core/rng.h"

namespace sinklab {
namespace {

struct Case {
    AttentionDims dims;
    AttentionMask mask;
    BlockwiseAttentionOptions options;
};

std::vector<float> random_qkv(const AttentionDims& d, uint64_t seed, float std) {
    Rng rng(seed);
    std::vector<float> qkv(static_cast<size_t>(d.B) * d.T * d.qkv_stride());
    for (float& x : qkv) x = static_cast<float>(rng.normal() * std);
    return qkv;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0.0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
    return worst;
}

// The statistics the blockwise kernel accumulates, from materialised weights (B*NH rows of T x T):
// cols[j] = sum_i w_ij, entropy[i] = -sum_j w_ij ln w_ij, in double.
void column_sums_and_entropies(std::vector<float>& cols, std::vector<float>& entropy, const std::vector<float>& w,
                               int T) {
    for (size_t bh = 0; bh < cols.size() / T; ++bh)
        for (int j = 0; j < T; ++j) {
            double col = 0.0, h = 0.0;
            for (int i = 0; i < T; ++i) col += w[(bh * T + i) * T + j];
            for (int k = 0; k < T; ++k) {
                const double x = w[(bh * T + j) * T + k];
                if (x > 0.0) h -= x * std::log(x);
            }
            cols[bh * T + j] = static_cast<float>(col);
            entropy[bh * T + j] = static_cast<float>(h);
        }
}

// Runs both kernels on one case and expects the same numbers within `tol`.
void expect_blockwise_equals_reference(const Case& c, const AttentionSpec& spec, double tol) {
    const AttentionDims& d = c.dims;
    // std 1.5 makes the weights far from uniform: some rows nearly one-hot, some spread out.
    const std::vector<float> qkv = random_qkv(d, 1234 + d.T, 1.5f);
    const size_t out_n = static_cast<size_t>(d.B) * d.T * d.out_stride();
    const size_t stat_n = static_cast<size_t>(d.B) * d.NH * d.T;
    std::vector<float> ref_out(out_n), weights(stat_n * d.T), ref_cols(stat_n), ref_entropy(stat_n);
    attention_forward(ref_out.data(), weights.data(), AttentionInputs{qkv.data(), nullptr}, d, spec, c.mask);
    column_sums_and_entropies(ref_cols, ref_entropy, weights, d.T);

    std::vector<float> out(out_n, NAN), cols(stat_n, NAN), entropy(stat_n, NAN);
    blockwise_attention_forward({out.data(), cols.data(), entropy.data()}, AttentionInputs{qkv.data(), nullptr}, d,
                                spec, c.mask, c.options);
    EXPECT_LE(max_abs_diff(out, ref_out), tol) << "output";
    EXPECT_LE(max_abs_diff(cols, ref_cols), tol) << "column sums";
    EXPECT_LE(max_abs_diff(entropy, ref_entropy), tol) << "row entropy";
}

const AttentionSpec kSoftmax = AttentionSpec::parse("softmax");

TEST(BlockwiseAttention, EqualsReferenceCausalAtT512) {
    expect_blockwise_equals_reference({{2, 512, 4, 4, 16}, {}, {}}, kSoftmax, 1e-5);
}

TEST(BlockwiseAttention, EqualsReferenceWithGroupedQueryHeads) {
    expect_blockwise_equals_reference({{2, 300, 6, 2, 8}, {}, {}}, kSoftmax, 1e-5);
}

TEST(BlockwiseAttention, EqualsReferenceWhenStripsDoNotDivideT) {
    // 173 = 10 x 16 + 13 rows: a partial last strip; and strips of 3 rows of a 5-token sequence
    expect_blockwise_equals_reference({{1, 173, 2, 1, 8}, {}, {.query_block = 16}}, kSoftmax, 1e-5);
    expect_blockwise_equals_reference({{1, 5, 2, 2, 4}, {}, {.query_block = 3}}, kSoftmax, 1e-5);
}

TEST(BlockwiseAttention, EqualsReferenceWithWindowAndPrefix) {
    expect_blockwise_equals_reference({{1, 257, 2, 2, 8}, {37, 0}, {.query_block = 32}}, kSoftmax, 1e-5);
    expect_blockwise_equals_reference({{1, 257, 2, 2, 8}, {0, 20}, {.query_block = 32}}, kSoftmax, 1e-5);
    expect_blockwise_equals_reference({{1, 257, 2, 2, 8}, {16, 40}, {.query_block = 32}}, kSoftmax, 1e-5);
}

TEST(BlockwiseAttention, EveryDesignIsComputedOrRejectedByName) {
    const Case c{{1, 96, 2, 2, 8}, {}, {.query_block = 32}};
    const std::vector<float> qkv = random_qkv(c.dims, 7, 1.0f);
    std::vector<float> out(static_cast<size_t>(c.dims.T) * c.dims.out_stride());
    for (const std::string& name : AttentionSpec::known_names()) {
        const AttentionSpec spec = AttentionSpec::parse(name);
        SCOPED_TRACE(name);
        if (blockwise_attention_supports(spec)) {
            expect_blockwise_equals_reference(c, spec, 1e-5);
            continue;
        }
        try {
            blockwise_attention_forward({out.data()}, AttentionInputs{qkv.data(), nullptr}, c.dims, spec, c.mask);
            ADD_FAILURE() << "an unsupported design ran";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("'" + name + "'"), std::string::npos) << e.what();
        }
    }
}

TEST(BlockwiseAttention, RejectsAScoreBiasTable) {
    const AttentionDims d{1, 8, 1, 1, 4};
    const std::vector<float> qkv = random_qkv(d, 3, 1.0f), bias(64, 0.0f);
    std::vector<float> out(8 * 4);
    EXPECT_THROW(blockwise_attention_forward({out.data()}, AttentionInputs{qkv.data(), bias.data()}, d, kSoftmax, {}),
                 Error);
}

}  // namespace
}  // namespace sinklab
