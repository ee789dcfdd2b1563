// The learned sink logit's arithmetic (research/variants.md, the identities after the table), in
// the three kernels that compute it (design score_bias, AttentionParams::slot_score): the
// materialised kernel (attention/attention.h), the blockwise kernel (attention/blockwise_attention.h)
// and the KV-cache kernel (attention/cached_attention.h). With a sink logit
// s per head, a row's output is the plain softmax output times sigmoid(LSE - s) and the sink takes
// sigmoid(s - LSE), LSE the row's log-sum-exp of its visible scaled scores (computed here in double
// from the same q and k); with every sink at -inf the output is plain softmax attention. 1e-6 (the
// blockwise kernel: 1e-5).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "attention/attention.h"
#include "attention/blockwise_attention.h"
#include "attention/cached_attention.h"
#include "core/rng.h"

namespace sinklab {
namespace {

constexpr double kTol = 1e-6;
// The blockwise kernel's tolerance against its references (tests/attention/test_blockwise_attention.cpp).
constexpr double kBlockwiseTol = 1e-5;
constexpr int B = 2, T = 21, NH = 4, NKV = 2, HS = 16;

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

struct Case {
    std::vector<float> qkv;  // (B, T, (NH + 2 NKV) HS)
    AttentionDims dims{B, T, NH, NKV, HS};
    float scale = 1.0f / std::sqrt(static_cast<float>(HS));

    explicit Case(uint64_t seed) {
        Rng rng(seed);
        qkv.resize(static_cast<size_t>(B) * T * dims.qkv_stride());
        for (float& v : qkv) v = static_cast<float>(1.5 * rng.normal());
    }
    const float* q(int b, int i, int h) const { return qkv.data() + (static_cast<size_t>(b) * T + i) * dims.qkv_stride() + h * HS; }
    const float* k(int b, int j, int h) const { return q(b, j, 0) + (NH + h / (NH / NKV)) * HS; }
    // log sum_j exp(scale q_i.k_j) over the keys query i sees
    double lse(int b, int h, int i, const AttentionMask& mask) const {
        std::vector<double> s;
        for (int j = mask.lo(i); j <= mask.hi(i, T); ++j) {
            double dot = 0.0;
            for (int c = 0; c < HS; ++c) dot += static_cast<double>(q(b, i, h)[c]) * k(b, j, h)[c];
            s.push_back(scale * dot);
        }
        const double m = *std::max_element(s.begin(), s.end());
        double sum = 0.0;
        for (double x : s) sum += std::exp(x - m);
        return m + std::log(sum);
    }
};

// The materialised kernel: plain softmax, then score_bias with `sinks` per head.
void materialised(const Case& c, const AttentionMask& mask, const std::vector<float>& sinks, std::vector<float>& plain,
                  std::vector<float>& sinked, std::vector<float>& sink_weights) {
    const size_t out_size = static_cast<size_t>(B) * T * NH * HS;
    plain.assign(out_size, 0.0f);
    sinked.assign(out_size, 0.0f);
    sink_weights.assign(static_cast<size_t>(B) * NH * T, 0.0f);
    std::vector<float> weights(static_cast<size_t>(B) * NH * T * T);
    attention_forward(plain.data(), weights.data(), AttentionInputs{c.qkv.data(), {}}, c.dims,
                      AttentionSpec::parse("softmax"), mask);
    AttentionParams params;
    params.slot_score = sinks.data();
    const AttentionSaved saved{weights.data(), sink_weights.data(), nullptr, nullptr, false};
    attention_forward(sinked.data(), saved, AttentionInputs{c.qkv.data(), {}}, params, c.dims,
                      AttentionSpec::parse("score_bias"), mask);
}

// The blockwise kernel with score_bias; sink_weights (B, NH, T) from its taps. Odd tiles, so that
// rows and keys straddle strips and tiles.
void blockwise(const Case& c, const AttentionMask& mask, const std::vector<float>& sinks, std::vector<float>& out,
               std::vector<float>& sink_weights) {
    out.assign(static_cast<size_t>(B) * T * NH * HS, 0.0f);
    sink_weights.assign(static_cast<size_t>(B) * NH * T, 0.0f);
    AttentionParams params;
    params.slot_score = sinks.data();
    AttentionTaps taps;
    taps.slot_weights = sink_weights.data();
    blockwise_attention_forward(out.data(), AttentionRowStats{}, taps, AttentionInputs{c.qkv.data(), {}}, params,
                                c.dims, AttentionSpec::parse("score_bias"), mask, BlockwiseTiles{7, 5});
}

// The cache kernel, one sequence at a time over an empty cache of T keys, plain softmax (sinks
// null) or score_bias; sink_weights (B, NH, T).
void cached(const Case& c, const AttentionMask& mask, const float* sinks, std::vector<float>& out,
            std::vector<float>& sink_weights) {
    out.assign(static_cast<size_t>(B) * T * NH * HS, 0.0f);
    sink_weights.assign(static_cast<size_t>(B) * NH * T, 0.0f);
    std::vector<float> weights(static_cast<size_t>(NH) * T * T);
    const long stride = c.dims.qkv_stride();
    AttentionParams params;
    params.slot_score = sinks;
    const AttentionSpec spec = AttentionSpec::parse(sinks ? "score_bias" : "softmax");
    for (int b = 0; b < B; ++b) {
        const float* q = c.q(b, 0, 0);
        CachedAttentionInputs in;
        in.q = q;
        in.q_stride = stride;
        in.k = q + NH * HS;
        in.v = q + (NH + NKV) * HS;
        in.kv_stride = stride;
        CachedAttentionOutputs o;
        o.out = out.data() + static_cast<size_t>(b) * T * NH * HS;
        o.out_stride = NH * HS;
        o.weights = weights.data();
        o.slot_weights = sinks ? sink_weights.data() + static_cast<size_t>(b) * NH * T : nullptr;
        cached_attention_forward(o, in, params, CachedAttentionDims{NH, NKV, HS, T, T, 0}, spec, mask);
    }
}

// |actual - plain * sigmoid(LSE - s)| and |sink weight - sigmoid(s - LSE)|, the worst over all rows
void expect_identity(const Case& c, const AttentionMask& mask, const std::vector<float>& sinks,
                     const std::vector<float>& plain, const std::vector<float>& actual,
                     const std::vector<float>& sink_weights, const char* kernel, double tol = kTol) {
    double worst_out = 0.0, worst_sink = 0.0;
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < NH; ++h)
            for (int i = 0; i < T; ++i) {
                const double lse = c.lse(b, h, i, mask);
                const double keep = sigmoid(lse - sinks[h]);
                for (int d = 0; d < HS; ++d) {
                    const size_t at = (static_cast<size_t>(b) * T + i) * NH * HS + h * HS + d;
                    worst_out = std::max(worst_out, std::abs(actual[at] - plain[at] * keep));
                }
                const double sink = sink_weights[(static_cast<size_t>(b) * NH + h) * T + i];
                worst_sink = std::max(worst_sink, std::abs(sink - sigmoid(sinks[h] - lse)));
            }
    EXPECT_LE(worst_out, tol) << kernel << ": output against plain * sigmoid(LSE - s)";
    EXPECT_LE(worst_sink, tol) << kernel << ": sink weight against sigmoid(s - LSE)";
}

TEST(SinkLogit, OutputIsThePlainOutputTimesSigmoidOfLseMinusTheSink) {
    const Case c(11);
    // a sink far below, near and far above the rows' log-sum-exp (which lies around 2 to 4 here)
    const std::vector<float> sinks = {-4.0f, 0.0f, 2.5f, 9.0f};
    for (const AttentionMask mask : {AttentionMask{}, AttentionMask{5, 0}}) {
        // each kernel against its own plain softmax output
        std::vector<float> plain, sinked, sink_weights, cached_plain, cached_out, cached_sink, unused;
        materialised(c, mask, sinks, plain, sinked, sink_weights);
        expect_identity(c, mask, sinks, plain, sinked, sink_weights, "materialised kernel");
        blockwise(c, mask, sinks, sinked, sink_weights);
        expect_identity(c, mask, sinks, plain, sinked, sink_weights, "blockwise kernel", kBlockwiseTol);
        cached(c, mask, nullptr, cached_plain, unused);
        cached(c, mask, sinks.data(), cached_out, cached_sink);
        expect_identity(c, mask, sinks, cached_plain, cached_out, cached_sink, "cache kernel");
    }
}

// Every kernel (the blockwise one once counted e^(s* - m) = 1 for a slot at -inf in its normaliser).
TEST(SinkLogit, EverySinkAtMinusInfinityIsPlainSoftmax) {
    const Case c(12);
    const std::vector<float> sinks(NH, -std::numeric_limits<float>::infinity());
    for (const AttentionMask mask : {AttentionMask{}, AttentionMask{5, 0}}) {
        std::vector<float> plain, sinked, sink_weights, cached_sinked, cached_sink, cached_plain, unused;
        materialised(c, mask, sinks, plain, sinked, sink_weights);
        cached(c, mask, sinks.data(), cached_sinked, cached_sink);
        cached(c, mask, nullptr, cached_plain, unused);
        std::vector<float> blockwise_sinked, blockwise_sink;
        blockwise(c, mask, sinks, blockwise_sinked, blockwise_sink);
        double worst = 0.0, worst_cached = 0.0, worst_plain = 0.0, worst_blockwise = 0.0, largest_sink = 0.0;
        for (size_t i = 0; i < plain.size(); ++i) {
            worst = std::max(worst, static_cast<double>(std::abs(sinked[i] - plain[i])));
            worst_blockwise = std::max(worst_blockwise, static_cast<double>(std::abs(blockwise_sinked[i] - plain[i])));
            worst_cached = std::max(worst_cached, static_cast<double>(std::abs(cached_sinked[i] - cached_plain[i])));
            worst_plain = std::max(worst_plain, static_cast<double>(std::abs(cached_plain[i] - plain[i])));
        }
        for (size_t i = 0; i < sink_weights.size(); ++i)
            largest_sink = std::max({largest_sink, static_cast<double>(sink_weights[i]), static_cast<double>(cached_sink[i]),
                                     static_cast<double>(blockwise_sink[i])});
        EXPECT_LE(worst, kTol) << "materialised kernel";
        EXPECT_LE(worst_blockwise, kBlockwiseTol) << "blockwise kernel";
        EXPECT_LE(worst_cached, kTol) << "cache kernel";
        EXPECT_LE(worst_plain, kTol) << "the two kernels' plain softmax";
        EXPECT_LE(largest_sink, kTol) << "sink weights";
    }
}

}  // namespace
}  // namespace sinklab
