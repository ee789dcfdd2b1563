// The attention kernel against a double-precision reference and finite differences, through the
// op harness of tests/ops/gradient_check.h: causal softmax, MHA, GQA and MQA (query head h reads
// kv head h / (NH / NKV)), sliding window, prefix LM, an ALiBi score bias and an explicit scale.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../ops/gradient_check.h"
#include "attention/attention.h"
#include "core/rng.h"
#include "ops/position_bias.h"

namespace sinklab {
namespace {

using test::accumulated;
using test::OpCase;
using test::random_vec;
using test::Vec;
using test::VecD;
using test::widen;

// Attention for one batch of fused qkv rows (B, T, (NH + 2 NKV) HS). Returns out (B, T, NH HS);
// `weights` (B, NH, T, T) receives the probabilities when given.
struct AttentionCase {
    int B, T, NH, NKV, HS;
    int window = 0, prefix = 0;
    float scale = 0.0f;  // 0: 1/sqrt(HS)
    bool bias = false;  // ALiBi
};

bool ref_visible(int i, int j, int window, int prefix) {
    const bool causal = j <= i || j < prefix;      // prefix LM: the first `prefix` keys are seen by all
    const bool in_window = window == 0 || j > i - window;
    return causal && in_window;
}

VecD ref_attention(const VecD& qkv, const AttentionCase& a, VecD* weights = nullptr) {
    const std::vector<float> slopes = alibi_slopes(a.NH);
    const int row = (a.NH + 2 * a.NKV) * a.HS;
    const double scale = a.scale > 0 ? a.scale : 1.0 / std::sqrt(static_cast<double>(a.HS));
    VecD out(static_cast<size_t>(a.B) * a.T * a.NH * a.HS, 0.0);
    if (weights) weights->assign(static_cast<size_t>(a.B) * a.NH * a.T * a.T, 0.0);
    for (int b = 0; b < a.B; ++b)
        for (int h = 0; h < a.NH; ++h) {
            const int kvh = h / (a.NH / a.NKV);
            for (int i = 0; i < a.T; ++i) {
                VecD s(a.T, -INFINITY);
                double maxv = -INFINITY;
                for (int j = 0; j < a.T; ++j) {
                    if (!ref_visible(i, j, a.window, a.prefix)) continue;
                    double d = 0.0;
                    for (int e = 0; e < a.HS; ++e)
                        d += qkv[(b * a.T + i) * row + h * a.HS + e] * qkv[(b * a.T + j) * row + (a.NH + kvh) * a.HS + e];
                    s[j] = d * scale + (a.bias ? -slopes[h] * static_cast<double>(std::abs(i - j)) : 0.0);
                    maxv = std::max(maxv, s[j]);
                }
                double z = 0.0;
                for (int j = 0; j < a.T; ++j) z += std::isinf(s[j]) ? 0.0 : std::exp(s[j] - maxv);
                for (int j = 0; j < a.T; ++j) {
                    const double p = std::isinf(s[j]) ? 0.0 : std::exp(s[j] - maxv) / z;
                    if (weights) (*weights)[((b * a.NH + h) * a.T + i) * a.T + j] = p;
                    for (int e = 0; e < a.HS; ++e)
                        out[(b * a.T + i) * a.NH * a.HS + h * a.HS + e] +=
                            p * qkv[(b * a.T + j) * row + (a.NH + a.NKV + kvh) * a.HS + e];
                }
            }
        }
    return out;
}

std::vector<OpCase> attention_cases() {
    std::vector<OpCase> cases;
    Rng rng(20240612);
    // Causal softmax, MHA, GQA and MQA, window, prefix, additive score bias, explicit scale.
    struct AttnVariant {
        const char* name;
        AttentionCase a;
    };
    for (const AttnVariant& av : {
             AttnVariant{"attention_mha", {2, 6, 2, 2, 4}},
             AttnVariant{"attention_gqa", {2, 6, 4, 2, 4}},
             AttnVariant{"attention_mqa", {1, 6, 3, 1, 4}},
             AttnVariant{"attention_window", {2, 7, 4, 2, 4, 3, 0}},
             AttnVariant{"attention_prefix", {2, 7, 2, 1, 4, 0, 3}},
             AttnVariant{"attention_window_prefix", {1, 7, 2, 2, 4, 3, 2}},
             AttnVariant{"attention_prefix_beyond_T", {2, 5, 2, 1, 4, 0, 8}},  // every key visible
             AttnVariant{"attention_window_beyond_T", {1, 5, 2, 2, 4, 9, 0}},  // plain causal
             AttnVariant{"attention_score_bias", {2, 6, 4, 2, 4, 0, 0, 0.3f, true}},
         }) {
        const AttentionCase a = av.a;
        const AttentionDims dims{a.B, a.T, a.NH, a.NKV, a.HS};
        AttentionSpec spec;
        spec.scale = a.scale;
        const AttentionMask mask{a.window, a.prefix};
        const ScoreBias bias{a.bias ? ScoreBiasKind::alibi : ScoreBiasKind::none};
        const long qkv_n = static_cast<long>(a.B) * a.T * dims.qkv_stride();
        const long out_n = static_cast<long>(a.B) * a.T * dims.out_stride();
        const long w_n = static_cast<long>(a.B) * a.NH * a.T * a.T;
        OpCase op;
        op.name = av.name;
        op.input_names = {"qkv"};
        op.inputs = {random_vec(rng, qkv_n)};
        auto run = [=](const Vec& qkv, Vec& out, Vec& w) {
            attention_forward(out.data(), w.data(), AttentionInputs{qkv.data(), bias}, dims, spec, mask);
        };
        op.forward = [=](const std::vector<Vec>& in) {
            Vec out(out_n), w(w_n);
            run(in[0], out, w);
            return widen(out);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            Vec out(out_n), w(w_n);
            run(in[0], out, w);
            return std::vector<Vec>{accumulated(qkv_n, [&](float* d) {
                attention_backward(d, dout.data(), AttentionInputs{in[0].data(), bias},
                                   w.data(), dims, spec, mask);
            })};
        };
        op.reference = [=](const std::vector<VecD>& in) { return ref_attention(in[0], a); };
        cases.push_back(op);
    }
    return cases;
}

const std::vector<OpCase>& all_cases() {
    static const std::vector<OpCase> cases = attention_cases();
    return cases;
}

class AttentionGradient : public ::testing::TestWithParam<size_t> {};

TEST_P(AttentionGradient, MatchesReferenceAndFiniteDifferences) { test::check_op(all_cases()[GetParam()]); }

INSTANTIATE_TEST_SUITE_P(AllMasks, AttentionGradient, ::testing::Range<size_t>(0, all_cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) { return all_cases()[info.param].name; });

TEST(Attention, WeightsAreTheReferenceProbabilitiesAndZeroWhereMasked) {
    for (const AttentionCase& a : {AttentionCase{2, 7, 4, 2, 4, 3, 2}, AttentionCase{1, 6, 2, 1, 8, 0, 0, 0.0f, true}}) {
        Rng rng(7);
        const AttentionDims dims{a.B, a.T, a.NH, a.NKV, a.HS};
        const Vec qkv = random_vec(rng, static_cast<size_t>(a.B) * a.T * dims.qkv_stride());
        const ScoreBias bias{a.bias ? ScoreBiasKind::alibi : ScoreBiasKind::none};
        Vec out(static_cast<size_t>(a.B) * a.T * dims.out_stride());
        Vec w(static_cast<size_t>(a.B) * a.NH * a.T * a.T, 5.0f);
        attention_forward(out.data(), w.data(), AttentionInputs{qkv.data(), bias}, dims, AttentionSpec{}, AttentionMask{a.window, a.prefix});
        VecD expected;
        ref_attention(widen(qkv), a, &expected);
        for (size_t i = 0; i < w.size(); ++i) {
            if (expected[i] == 0.0)
                ASSERT_EQ(w[i], 0.0f) << "masked weight " << i << " is not exactly zero";
            else
                ASSERT_NEAR(w[i], expected[i], 1e-6) << "weight " << i;
        }
    }
}

}  // namespace
}  // namespace sinklab
