// The blockwise kernel against the materialised one (the reference, itself checked against a
// double reference, finite differences and PyTorch in test_attention_designs / _oracle): for every
// design and every axis (design_cases.h, axes_at) at T = 512 and at T = 389 (odd, a multiple of no
// tile size), the output, every gradient (qkv, slot parameters, sigmoid bias, value bias, gpt-oss
// sink logit, relative table, gates through the model's gate op) and the slot weights agree within
// 1e-5, relative to the tensor's largest entry where that exceeds 1 (absolute below); 1e-4 for
// identity_norm's gradients (see kSignedNormaliserTolerance). The column and entropy taps against
// the materialised weights' statistics: tests/metrics/test_blockwise_taps.cpp.
// Also: the sink-logit identities of research/variants.md, overwrite, and bad calls.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attention/blockwise_attention.h"
#include "core/error.h"
#include "design_cases.h"

namespace sinklab {
namespace {

using test::DesignCase;
using test::KernelChoice;
using test::Layout;
using test::Vec;

constexpr double kTolerance = 1e-5;
// identity_norm divides every weight of a row by max(|S|, 1), S the sum of the row's signed
// scores, which cancels: a score's last bit moves Z by up to ~1e3 times its relative size. Two
// float32 kernels that round the scores differently (any two tilings of the products) then differ
// by that much on the gradients that sum over every key: at T = 389 with the relative bias and
// soft-capping, the blockwise kernel with 64 x 128 and with 24 x 40 tiles differs from itself by
// 1.9e-5 (relative) on the relative table's gradient, and from the materialised kernel by 1.6e-5.
constexpr double kSignedNormaliserTolerance = 1e-4;

void expect_close(const std::string& what, const Vec& actual, const Vec& expected, double tolerance = kTolerance) {
    test::expect_close_tensor(what, actual, expected, tolerance);
}

using test::axes_at;

const std::vector<DesignCase>& cases() {
    static const std::vector<DesignCase> all = test::long_design_cases();
    return all;
}

void expect_blockwise_equals_materialised(const DesignCase& c, const KernelChoice& kernel) {
    SCOPED_TRACE(c.name);
    Rng rng(test::fnv1a(c.name + "/dout"));
    const Vec dout = test::random_vec(rng, c.out_size());
    const test::KernelRun ref = test::run_forward(c, c.inputs);
    const test::KernelRun got = test::run_forward(c, c.inputs, kernel);
    expect_close("out", got.out, ref.out);
    if (c.spec.has_slot()) expect_close("slot weights", got.slot_weights, ref.slot_weights);
    const std::vector<Vec> ref_grads = test::run_backward(c, c.inputs, dout);
    const std::vector<Vec> got_grads = test::run_backward(c, c.inputs, dout, kernel);
    const double tolerance = c.design == "identity_norm" ? kSignedNormaliserTolerance : kTolerance;
    for (size_t i = 0; i < ref_grads.size(); ++i)
        expect_close("d" + c.input_names[i], got_grads[i], ref_grads[i], tolerance);
}

class BlockwiseAttention : public ::testing::TestWithParam<size_t> {};

TEST_P(BlockwiseAttention, EqualsMaterialisedWithTunedTiles) {
    expect_blockwise_equals_materialised(cases()[GetParam()], KernelChoice{true, {}});
}

INSTANTIATE_TEST_SUITE_P(EveryDesignAndAxis, BlockwiseAttention, ::testing::Range<size_t>(0, cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) { return cases()[info.param].name; });

// Tiles of sizes that divide nothing: strips and tiles end anywhere against windows and prefixes.
TEST(BlockwiseAttentionTiles, OddTilesEqualMaterialised) {
    for (const char* design : {"softmax", "kv_bias", "score_bias", "softpick", "sigmoid_learnable", "identity_norm"})
        for (const Layout& l : axes_at(389))
            expect_blockwise_equals_materialised(test::make_design_case(design, l), KernelChoice{true, {24, 40}});
}

// research/variants.md b4: with a sink logit s, the output is the plain softmax output times
// sigmoid(L - s) (L the row's log-sum-exp, m + ln S), the sink's weight is sigmoid(s - L), and
// dL/ds = -sum_q p_sink,q (dO_q . O_q).
TEST(BlockwiseAttentionSink, LogitIdentities) {
    const DesignCase sink = test::make_design_case("score_bias", Layout{"identity", 2, 389, 3, 1, 8, 60, 0});
    DesignCase plain = sink;
    plain.spec = AttentionSpec::parse("softmax");
    plain.input_names = {"qkv"};
    plain.inputs = {sink.inputs[0]};
    const KernelChoice kernel{true, {}};
    const test::KernelRun with = test::run_forward(sink, sink.inputs, kernel);
    const test::KernelRun without = test::run_forward(plain, plain.inputs, kernel);
    const Vec& logits = sink.inputs[sink.input_index("slot_score")];
    const AttentionDims& d = sink.dims;
    Vec scaled(without.out.size()), p_sink(with.slot_weights.size());
    for (int b = 0; b < d.B; ++b)
        for (int h = 0; h < d.NH; ++h)
            for (int i = 0; i < d.T; ++i) {
                const long r = (static_cast<long>(b) * d.NH + h) * d.T + i;
                const double L = without.shift[r] + std::log(static_cast<double>(without.sum[r]));
                p_sink[r] = static_cast<float>(1.0 / (1.0 + std::exp(L - logits[h])));
                for (int e = 0; e < d.HS; ++e) {
                    const long o = (static_cast<long>(b) * d.T + i) * d.out_stride() + h * d.HS + e;
                    scaled[o] = static_cast<float>(without.out[o] / (1.0 + std::exp(logits[h] - L)));
                }
            }
    expect_close("out = plain out * sigmoid(L - s)", with.out, scaled);
    expect_close("sink weight = sigmoid(s - L)", with.slot_weights, p_sink);

    Rng rng(17);
    const Vec dout = test::random_vec(rng, sink.out_size());
    const std::vector<Vec> grads = test::run_backward(sink, sink.inputs, dout, kernel);
    Vec expected(d.NH, 0.0f);
    for (int b = 0; b < d.B; ++b)
        for (int h = 0; h < d.NH; ++h) {
            double sum = 0.0;
            for (int i = 0; i < d.T; ++i) {
                double dot = 0.0;
                for (int e = 0; e < d.HS; ++e) {
                    const long o = (static_cast<long>(b) * d.T + i) * d.out_stride() + h * d.HS + e;
                    dot += static_cast<double>(dout[o]) * with.out[o];
                }
                sum += with.slot_weights[(static_cast<long>(b) * d.NH + h) * d.T + i] * dot;
            }
            expected[h] += static_cast<float>(-sum);
        }
    expect_close("dL/ds = -sum p_sink (dO . O)", grads[sink.input_index("slot_score")], expected);
}

// GradWrite::overwrite gives what accumulating into zeros gives, whatever dqkv held (NaN here).
TEST(BlockwiseAttentionCalls, OverwriteIsAccumulateIntoZeros) {
    for (const char* design : {"softmax", "elu1", "linear_elu"})
        for (const Layout& l : test::long_layouts()) {
            if (l.bias != ScoreBiasKind::none) continue;
            const DesignCase c = test::make_design_case(design, l);
            SCOPED_TRACE(c.name);
            const KernelChoice kernel{true, {16, 24}};
            test::KernelRun run = test::run_forward(c, c.inputs, kernel);
            Rng rng(9);
            const Vec dout = test::random_vec(rng, run.out.size());
            const size_t n = c.inputs[0].size();
            Vec added(n, 0.0f), written(n, std::numeric_limits<float>::quiet_NaN());
            for (auto [g, write] : {std::pair{&added, GradWrite::accumulate}, std::pair{&written, GradWrite::overwrite}})
                blockwise_attention_backward(g->data(), {}, dout.data(), run.attn.data(), test::bind_inputs(c, c.inputs),
                                             {}, run.stats(), c.dims, c.spec, c.mask, write, kernel.tiles);
            EXPECT_EQ(added, written);
        }
}

// The sink interventions' first-key edits (AttentionMask::first_keys, docs/perturb.md): mask-first:K
// hides keys across strip and tile boundaries, with its backward, for every kind of row; scale-first
// reweights key 0 of softmax rows (forward only), with a window that makes some rows lose key 0.
TEST(BlockwiseAttentionFirstKeys, EditsEqualMaterialised) {
    const KernelChoice kernel{true, {24, 40}};
    for (const char* design : {"softmax", "kv_bias", "score_bias", "sigmoid_learnable", "softpick", "identity_norm"})
        for (const Layout& l : axes_at(389)) {
            DesignCase c = test::make_design_case(design, l);
            c.mask.first_keys = {.hidden = 3};
            expect_blockwise_equals_materialised(c, kernel);
        }
    for (const char* design : {"softmax", "kv_bias", "gated"})
        for (const Layout& l : axes_at(389)) {
            DesignCase c = test::make_design_case(design, l);
            c.mask.first_keys = {.hidden = 1, .factor = 4.0f};
            SCOPED_TRACE(c.name + " scale-first");
            const test::KernelRun ref = test::run_forward(c, c.inputs);
            const test::KernelRun got = test::run_forward(c, c.inputs, kernel);
            expect_close("out", got.out, ref.out);
            if (c.spec.has_slot()) expect_close("slot weights", got.slot_weights, ref.slot_weights);
            c.mask.first_keys = {.factor = 0.05f};
            expect_close("out", test::run_forward(c, c.inputs, kernel).out, test::run_forward(c, c.inputs).out);
        }
    // other rows than softmax take scale-first on the materialised kernel only
    DesignCase c = test::make_design_case("sigmoid_norm", test::layouts()[0]);
    c.mask.first_keys = {.factor = 2.0f};
    EXPECT_THROW(test::run_forward(c, c.inputs, kernel), Error);
}

TEST(BlockwiseAttentionCalls, BadCallsAreOneClearError) {
    const DesignCase c = test::make_design_case("softpick", test::layouts()[0]);
    test::KernelRun run = test::run_forward(c, c.inputs, KernelChoice{true, {}});
    const Vec dout(run.out.size(), 1.0f);
    Vec dqkv(c.inputs[0].size(), 0.0f);
    AttentionRowStats missing = run.stats();
    missing.argmax = nullptr;
    try {
        blockwise_attention_backward(dqkv.data(), {}, dout.data(), run.attn.data(), test::bind_inputs(c, c.inputs), {},
                                     missing, c.dims, c.spec, c.mask);
        FAIL() << "a backward without softpick's argmax ran";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("argmax"), std::string::npos) << e.what();
    }
    Vec out(run.out.size());
    EXPECT_THROW(blockwise_attention_forward(out.data(), {}, {}, test::bind_inputs(c, c.inputs), {}, c.dims, c.spec,
                                             c.mask, BlockwiseTiles{0, 16}),
                 Error);
}

}  // namespace
}  // namespace sinklab
