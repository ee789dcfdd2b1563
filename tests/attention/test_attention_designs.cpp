// Every attention design of DESIGN.md section 3 through the op harness of tests/ops/gradient_check.h,
// for both kernels that differentiate (materialised and blockwise, the latter on tiny tiles so that
// a short sequence makes many strips and tiles): the float kernel against a double-precision
// reference written here from research/variants.md b4 (not from AttentionSpec), and its backward
// against finite differences (of the double reference, and of the float kernel) for qkv and every
// slot, bias, gate and relative-table parameter, the gpt-oss sink logit included; MHA, GQA with a
// window, MQA with a prefix, ALiBi with an explicit scale, relative buckets with soft-capping.
// Also: the weights and slot weights, design names, parameter tables and init conventions, the
// output gate alone, and the pre-design entry points.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <omp.h>

#include "core/error.h"
#include "design_cases.h"

namespace sinklab {
namespace {

using test::DesignCase;
using test::OpCase;
using test::random_vec;
using test::Vec;
using test::VecD;
using test::widen;

// ---------------------------------------------------------------------------------------------
// What each design computes, from research/variants.md b4, per head and query row over the
// visible keys (causal, window, prefix), in double.

enum class Row { softmax, sigmoid, sigmoid_norm, elu1, elu1_norm, identity, identity_norm, softpick, linear_elu };
enum class Slot { none, kv, k, zero, logit };
enum class Gate { none, elementwise, headwise };

struct RefDesign {
    Row row = Row::softmax;
    Slot slot = Slot::none;
    bool shared = false;      // one k*, v*, value bias or b for all heads
    bool value_bias = false;  // o += v_s (Gu's V bias)
    bool learnable_b = false;
    double fixed_b = 0.0;
    Gate gate = Gate::none;
};

RefDesign ref_design(const std::string& name) {
    static const std::map<std::string, RefDesign> table = {
        {"softmax", {}},
        {"kv_bias", {.slot = Slot::kv}},
        {"kv_bias_shared", {.slot = Slot::kv, .shared = true}},
        {"k_bias", {.slot = Slot::k}},
        {"k_bias_shared", {.slot = Slot::k, .shared = true}},
        {"v_bias", {.value_bias = true}},
        {"v_bias_shared", {.shared = true, .value_bias = true}},
        {"softmax1", {.slot = Slot::zero}},
        {"score_bias", {.slot = Slot::logit}},
        {"sigmoid", {.row = Row::sigmoid}},
        {"sigmoid_learnable", {.row = Row::sigmoid, .learnable_b = true}},
        {"sigmoid_learnable_shared", {.row = Row::sigmoid, .shared = true, .learnable_b = true}},
        {"sigmoid_norm", {.row = Row::sigmoid_norm}},
        {"elu1", {.row = Row::elu1}},
        {"elu1_norm", {.row = Row::elu1_norm}},
        {"linear_elu", {.row = Row::linear_elu}},
        {"identity", {.row = Row::identity}},
        {"identity_norm", {.row = Row::identity_norm}},
        {"softpick", {.row = Row::softpick}},
        {"gated", {.gate = Gate::elementwise}},
        {"gated_headwise", {.gate = Gate::headwise}},
    };
    if (name.rfind("sigmoid:", 0) == 0) return {.row = Row::sigmoid, .fixed_b = std::stod(name.substr(8))};
    return table.at(name);
}

bool ref_visible(int i, int j, int window, int prefix) {
    const bool causal = j <= i || j < prefix;  // prefix LM: the first `prefix` keys are seen by all
    const bool in_window = window == 0 || j > i - window;
    return causal && in_window;
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// ALiBi -m_h |i - j| (Press et al.); T5's relative bucket table[bucket(j - i), h].
double ref_position_bias(const DesignCase& c, const std::vector<VecD>& in, int h, int i, int j) {
    if (c.bias == ScoreBiasKind::alibi) return -alibi_slopes(c.dims.NH)[h] * std::abs(i - j);
    if (c.bias == ScoreBiasKind::relative)
        return in.at(c.input_index("relative_table"))[relative_position_bucket(j - i) * c.dims.NH + h];
    return 0.0;
}
double elu1(double x) { return x > 0.0 ? x + 1.0 : std::exp(x); }

struct RefResult {
    VecD out, weights, slot_weights;
};

RefResult ref_attention(const DesignCase& c, const std::vector<VecD>& in) {
    const RefDesign d = ref_design(c.design);
    const int B = c.dims.B, T = c.dims.T, NH = c.dims.NH, NKV = c.dims.NKV, HS = c.dims.HS;
    const int row = (NH + 2 * NKV) * HS;
    const double scale = c.spec.scale > 0 ? c.spec.scale : 1.0 / std::sqrt(static_cast<double>(HS));
    auto input = [&](const char* name) -> const VecD& { return in.at(c.input_index(name)); };
    const VecD& qkv = input("qkv");
    auto q = [&](int b, int t, int h, int e) { return qkv[(b * T + t) * row + h * HS + e]; };
    auto k = [&](int b, int t, int g, int e) { return qkv[(b * T + t) * row + (NH + g) * HS + e]; };
    auto v = [&](int b, int t, int g, int e) { return qkv[(b * T + t) * row + (NH + NKV + g) * HS + e]; };
    RefResult r{VecD(c.out_size(), 0.0), VecD(c.weights_size(), 0.0), VecD(static_cast<size_t>(B) * NH * T, 0.0)};
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < NH; ++h) {
            const int g = h / (NH / NKV), hp = d.shared ? 0 : h;
            for (int i = 0; i < T; ++i) {
                std::vector<int> J;
                for (int j = 0; j < T; ++j)
                    if (ref_visible(i, j, c.mask.window, c.mask.prefix)) J.push_back(j);
                std::vector<double> s(T, 0.0), w(T, 0.0);
                for (int j : J) {
                    double dot = 0.0;
                    for (int e = 0; e < HS; ++e)
                        dot += d.row == Row::linear_elu ? elu1(q(b, i, h, e)) * elu1(k(b, j, g, e))
                                                        : q(b, i, h, e) * k(b, j, g, e);
                    double scaled = dot * scale;
                    if (c.spec.softcap > 0.0f) scaled = c.spec.softcap * std::tanh(scaled / c.spec.softcap);
                    s[j] = scaled + ref_position_bias(c, in, h, i, j);
                }
                double slot_logit = 0.0, ws = 0.0;
                if (d.slot == Slot::kv || d.slot == Slot::k)
                    for (int e = 0; e < HS; ++e) slot_logit += scale * q(b, i, h, e) * input("slot_k")[hp * HS + e];
                if (d.slot == Slot::logit) slot_logit = input("slot_score")[h];
                double sum = 0.0;
                switch (d.row) {
                    case Row::softmax: {  // softmax over [visible scores; slot logit]
                        double m = d.slot != Slot::none ? slot_logit : -INFINITY;
                        for (int j : J) m = std::max(m, s[j]);
                        double z = d.slot != Slot::none ? std::exp(slot_logit - m) : 0.0;
                        for (int j : J) z += std::exp(s[j] - m);
                        for (int j : J) w[j] = std::exp(s[j] - m) / z;
                        if (d.slot != Slot::none) ws = std::exp(slot_logit - m) / z;
                        break;
                    }
                    case Row::sigmoid: {  // sigmoid(s + b), masked multiplicatively
                        const double bias = d.learnable_b ? input("sigmoid_bias")[hp] : d.fixed_b;
                        for (int j : J) w[j] = sigmoid(s[j] + bias);
                        break;
                    }
                    case Row::sigmoid_norm:  // sigmoid(s) / (sum + 1e-8)
                        for (int j : J) sum += sigmoid(s[j]);
                        for (int j : J) w[j] = sigmoid(s[j]) / (sum + 1e-8);
                        break;
                    case Row::elu1:
                        for (int j : J) w[j] = elu1(s[j]);
                        break;
                    case Row::elu1_norm:  // (elu(s) + 1) / (sum + 1e-8)
                        for (int j : J) sum += elu1(s[j]);
                        for (int j : J) w[j] = elu1(s[j]) / (sum + 1e-8);
                        break;
                    case Row::identity:
                        for (int j : J) w[j] = s[j];
                        break;
                    case Row::identity_norm:  // s / max(|sum|, 1)
                        for (int j : J) sum += s[j];
                        for (int j : J) w[j] = s[j] / std::max(std::abs(sum), 1.0);
                        break;
                    case Row::softpick: {  // relu(e^(x-m) - e^-m) / (sum |e^(x-m) - e^-m| + 1e-8)
                        double m = -INFINITY;
                        for (int j : J) m = std::max(m, s[j]);
                        for (int j : J) sum += std::abs(std::exp(s[j] - m) - std::exp(-m));
                        for (int j : J) w[j] = std::max(std::exp(s[j] - m) - std::exp(-m), 0.0) / (sum + 1e-8);
                        break;
                    }
                    case Row::linear_elu:  // phi(q).phi(k) / sqrt(d) / (sum + 1e-8)
                        for (int j : J) sum += s[j];
                        for (int j : J) w[j] = s[j] / (sum + 1e-8);
                        break;
                }
                for (int j = 0; j < T; ++j) r.weights[((b * NH + h) * T + i) * T + j] = w[j];
                r.slot_weights[(b * NH + h) * T + i] = ws;
                for (int e = 0; e < HS; ++e) {
                    double o = 0.0;
                    for (int j : J) o += w[j] * v(b, j, g, e);
                    if (d.slot == Slot::kv) o += ws * input("slot_v")[hp * HS + e];
                    if (d.value_bias) o += input("value_bias")[hp * HS + e];
                    const long oi = (static_cast<long>(b) * T + i) * NH * HS + h * HS + e;
                    if (d.gate == Gate::elementwise) o *= sigmoid(input("gate")[oi]);
                    if (d.gate == Gate::headwise) o *= sigmoid(input("gate")[(b * T + i) * NH + h]);
                    r.out[oi] = o;
                }
            }
        }
    if (d.slot == Slot::none) r.slot_weights.clear();
    return r;
}

// ---------------------------------------------------------------------------------------------
// The gradient table: every design on every layout.

// The blockwise kernel on 2 x 3 tiles: every sequence of the layouts crosses strips and tiles.
const test::KernelChoice kBlockwiseSmallTiles{true, {2, 3}};

OpCase design_op(const DesignCase& c, const test::KernelChoice& kernel) {
    OpCase op;
    op.name = c.name + (kernel.blockwise ? "_blockwise" : "");
    op.input_names = c.input_names;
    op.inputs = c.inputs;
    op.forward = [c, kernel](const std::vector<Vec>& in) { return widen(test::run_forward(c, in, kernel).out); };
    op.backward = [c, kernel](const std::vector<Vec>& in, const Vec& dout) {
        return test::run_backward(c, in, dout, kernel);
    };
    op.reference = [c](const std::vector<VecD>& in) { return ref_attention(c, in).out; };
    // Kinks (softpick's relu at s = 0, identity_norm's max(|S|, 1) at |S| = 1) that the float
    // kernel's default step of 1e-2 can straddle; the double reference's 1e-6 step cannot.
    if (c.design == "softpick" || c.design == "identity_norm") op.tol.h_kernel = 1e-3;
    return op;
}

const std::vector<DesignCase>& cases() {
    static const std::vector<DesignCase> all = test::all_design_cases();
    return all;
}

class AttentionDesign : public ::testing::TestWithParam<size_t> {};

TEST_P(AttentionDesign, GradientsMatchReferenceAndFiniteDifferences) {
    test::check_op(design_op(cases()[GetParam()], test::kMaterialised));
}

TEST_P(AttentionDesign, BlockwiseGradientsMatchReferenceAndFiniteDifferences) {
    test::check_op(design_op(cases()[GetParam()], kBlockwiseSmallTiles));
}

// The weights the probes read: token columns (B, NH, T, T), exactly 0 where masked, and the slot
// column (B, NH, T), against the reference.
TEST_P(AttentionDesign, WeightsAndSlotWeightsAreTheReference) {
    const DesignCase& c = cases()[GetParam()];
    const test::KernelRun run = test::run_forward(c, c.inputs);
    const test::KernelRun blockwise = test::run_forward(c, c.inputs, kBlockwiseSmallTiles);
    std::vector<VecD> wide;
    for (const auto& in : c.inputs) wide.push_back(widen(in));
    const RefResult ref = ref_attention(c, wide);
    for (size_t i = 0; i < run.weights.size(); ++i)
        if (ref.weights[i] == 0.0) {
            ASSERT_EQ(run.weights[i], 0.0f) << c.name << ": masked weight " << i << " is not 0";
        }
    const test::Mismatch w = test::relative_error(widen(run.weights), ref.weights);
    EXPECT_LE(w.error, 1e-5) << c.name << " weights[" << w.index << "] " << run.weights[w.index] << ", reference "
                             << ref.weights[w.index];
    ASSERT_EQ(run.slot_weights.size(), ref.slot_weights.size()) << c.name;
    if (ref.slot_weights.empty()) return;
    const test::Mismatch s = test::relative_error(widen(run.slot_weights), ref.slot_weights);
    EXPECT_LE(s.error, 1e-5) << c.name << " slot_weights[" << s.index << "] " << run.slot_weights[s.index]
                             << ", reference " << ref.slot_weights[s.index];
    const test::Mismatch bs = test::relative_error(widen(blockwise.slot_weights), ref.slot_weights);
    EXPECT_LE(bs.error, 1e-5) << c.name << " blockwise slot_weights[" << bs.index << "] "
                              << blockwise.slot_weights[bs.index] << ", reference " << ref.slot_weights[bs.index];
    if (c.spec.kind == AttentionKind::softmax)  // a softmax row with its slot sums to 1
        for (long r = 0; r < c.slot_size(); ++r) {
            double sum = run.slot_weights[r];
            for (int j = 0; j < c.dims.T; ++j) sum += run.weights[r * c.dims.T + j];
            ASSERT_NEAR(sum, 1.0, 1e-6) << c.name << " row " << r;
        }
}

// The kernels split work over (batch, head) (or strips of it) in forward and (batch, kv head) in
// backward, and sum parameter gradients and column statistics over batch, heads and strips in a
// fixed order: the bits do not depend on the number of threads.
TEST_P(AttentionDesign, ResultsDoNotDependOnThreads) {
    const DesignCase& c = cases()[GetParam()];
    Rng rng(test::fnv1a(c.name + "/threads"));
    const Vec dout = random_vec(rng, c.out_size());
    for (const test::KernelChoice& kernel : {test::kMaterialised, kBlockwiseSmallTiles}) {
        const int threads = omp_get_max_threads();
        omp_set_num_threads(1);
        const test::KernelRun one = test::run_forward(c, c.inputs, kernel);
        const std::vector<Vec> one_grads = test::run_backward(c, c.inputs, dout, kernel);
        omp_set_num_threads(3);
        const test::KernelRun three = test::run_forward(c, c.inputs, kernel);
        const std::vector<Vec> three_grads = test::run_backward(c, c.inputs, dout, kernel);
        omp_set_num_threads(threads);
        const std::string name = c.name + (kernel.blockwise ? " blockwise" : "");
        EXPECT_EQ(one.out, three.out) << name;
        EXPECT_EQ(one.weights, three.weights) << name;
        EXPECT_EQ(one.slot_weights, three.slot_weights) << name;
        EXPECT_EQ(one.column_sums, three.column_sums) << name;
        EXPECT_EQ(one.row_entropy, three.row_entropy) << name;
        for (size_t i = 0; i < one_grads.size(); ++i)
            EXPECT_EQ(one_grads[i], three_grads[i]) << name << " d" << c.input_names[i];
    }
}

INSTANTIATE_TEST_SUITE_P(AllDesigns, AttentionDesign, ::testing::Range<size_t>(0, cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) { return cases()[info.param].name; });

// ---------------------------------------------------------------------------------------------
// The output gate alone.

VecD ref_gate(const VecD& attn, const VecD& z, int N, int NH, int HS, GateKind kind) {
    VecD out(attn.size());
    for (int n = 0; n < N; ++n)
        for (int h = 0; h < NH; ++h)
            for (int e = 0; e < HS; ++e) {
                const long i = (static_cast<long>(n) * NH + h) * HS + e;
                out[i] = attn[i] * sigmoid(kind == GateKind::elementwise ? z[i] : z[n * NH + h]);
            }
    return out;
}

TEST(OutputGate, GradientsMatchReferenceAndFiniteDifferences) {
    const int N = 5, NH = 3, HS = 4;
    for (GateKind kind : {GateKind::elementwise, GateKind::headwise}) {
        Rng rng(kind == GateKind::elementwise ? 11 : 12);
        const int width = output_gate_width(kind, NH, HS);
        EXPECT_EQ(width, kind == GateKind::elementwise ? NH * HS : NH);
        OpCase op;
        op.name = kind == GateKind::elementwise ? "output_gate_elementwise" : "output_gate_headwise";
        op.input_names = {"attn", "gate"};
        op.inputs = {random_vec(rng, N * NH * HS), random_vec(rng, N * width)};
        op.forward = [=](const std::vector<Vec>& in) {
            Vec out(N * NH * HS);
            output_gate_forward(out.data(), in[0].data(), in[1].data(), N, NH, HS, kind);
            return widen(out);
        };
        op.backward = [=](const std::vector<Vec>& in, const Vec& dout) {
            Vec dgate_start(in[1].size(), 0.5f), dgate = dgate_start;
            const Vec dattn = test::accumulated(in[0].size(), [&](float* d) {
                output_gate_backward(d, dgate.data(), dout.data(), in[0].data(), in[1].data(), N, NH, HS, kind);
            });
            for (size_t i = 0; i < dgate.size(); ++i) dgate[i] -= dgate_start[i];
            return std::vector<Vec>{dattn, dgate};
        };
        op.reference = [=](const std::vector<VecD>& in) { return ref_gate(in[0], in[1], N, NH, HS, kind); };
        test::check_op(op);
    }
}

// ---------------------------------------------------------------------------------------------
// Names, parameters, init conventions and the pre-design entry points.

TEST(AttentionSpecNames, EveryKnownNameRoundTrips) {
    for (const auto& name : AttentionSpec::known_names()) {
        const AttentionSpec spec = AttentionSpec::parse(name);
        EXPECT_EQ(spec.name(), name);
        EXPECT_NO_THROW(spec.validate()) << name;
    }
    const AttentionSpec fixed = AttentionSpec::parse("sigmoid:-7.62");
    EXPECT_EQ(fixed.kind, AttentionKind::sigmoid);
    EXPECT_FALSE(fixed.normalised);
    EXPECT_EQ(fixed.sigmoid_bias, -7.62f);
    EXPECT_EQ(fixed.name(), "sigmoid:-7.62");
    EXPECT_EQ(AttentionSpec::parse("sigmoid:0").name(), "sigmoid");
    EXPECT_TRUE(AttentionSpec::parse("sink_token").uses_sink_token());
    EXPECT_FALSE(AttentionSpec::parse("softmax").uses_sink_token());
}

TEST(AttentionSpecNames, UnknownNamesListTheKnownOnes) {
    try {
        AttentionSpec::parse("softermax");
        FAIL() << "softermax parsed";
    } catch (const Error& e) {
        const std::string what = e.what();
        for (const auto& name : AttentionSpec::known_names()) EXPECT_NE(what.find(name), std::string::npos) << name;
        EXPECT_NE(what.find("sigmoid:<b>"), std::string::npos);
    }
    EXPECT_THROW(AttentionSpec::parse("sigmoid:"), Error);
    EXPECT_THROW(AttentionSpec::parse("sigmoid:-7.6x"), Error);
    EXPECT_THROW(AttentionSpec::parse("sigmoid:inf"), Error);
    AttentionSpec odd;
    odd.slot = SlotKind::kv;
    odd.kind = AttentionKind::linear_elu;
    EXPECT_THROW(odd.validate(), Error);
    EXPECT_THROW(odd.name(), Error);
}

TEST(AttentionParams, ShapesAndInitConventions) {
    const int NH = 4, HS = 8;
    auto shapes = [&](const std::string& design) {
        std::vector<std::pair<std::string, std::vector<int>>> out;
        for (const auto& info : attention_param_infos(AttentionSpec::parse(design), NH, HS))
            out.emplace_back(info.name, info.shape);
        return out;
    };
    using P = std::vector<std::pair<std::string, std::vector<int>>>;
    EXPECT_EQ(shapes("softmax"), P{});
    EXPECT_EQ(shapes("softmax1"), P{});
    EXPECT_EQ(shapes("gated"), P{});
    EXPECT_EQ(shapes("kv_bias"), (P{{"slot_k", {NH, HS}}, {"slot_v", {NH, HS}}}));
    EXPECT_EQ(shapes("kv_bias_shared"), (P{{"slot_k", {1, HS}}, {"slot_v", {1, HS}}}));
    EXPECT_EQ(shapes("k_bias"), (P{{"slot_k", {NH, HS}}}));
    EXPECT_EQ(shapes("v_bias_shared"), (P{{"value_bias", {1, HS}}}));
    EXPECT_EQ(shapes("score_bias"), (P{{"slot_score", {NH}}}));
    EXPECT_EQ(shapes("sigmoid_learnable"), (P{{"sigmoid_bias", {NH}}}));
    EXPECT_EQ(shapes("sigmoid_learnable_shared"), (P{{"sigmoid_bias", {1}}}));

    // kv bias N(0, 0.02); gpt-oss sinks N(0, init std); Apple's sigmoid bias -ln(T)
    auto init_std = [&](const AttentionParamInfo& info, float model_std) {
        std::vector<float> x(4096 * 4);
        AttentionParamInfo big = info;
        big.shape = {static_cast<int>(x.size())};
        Rng rng(3);
        init_attention_param(x.data(), big, rng, model_std, 2048);
        double ss = 0.0;
        for (float v : x) ss += static_cast<double>(v) * v;
        return std::sqrt(ss / x.size());
    };
    const auto kv = attention_param_infos(AttentionSpec::parse("kv_bias"), NH, HS);
    EXPECT_NEAR(init_std(kv[0], 1.0f), kSlotInitStd, 0.02 * kSlotInitStd);
    const auto sink = attention_param_infos(AttentionSpec::parse("score_bias"), NH, HS);
    EXPECT_NEAR(init_std(sink[0], 0.5f), 0.5, 0.01);
    const auto sig = attention_param_infos(AttentionSpec::parse("sigmoid_learnable"), NH, HS);
    std::vector<float> b(NH);
    Rng rng(1);
    init_attention_param(b.data(), sig[0], rng, 0.02f, 2048);
    for (float x : b) EXPECT_NEAR(x, -7.6246189, 1e-5);  // -ln 2048, Apple's example config
}

TEST(AttentionEntryPoints, PreDesignCallsAreTheSoftmaxKernel) {
    // The model's calls (no params, no slot) give the same bits as the full form.
    const DesignCase c = test::make_design_case("softmax", test::layouts()[1]);
    const AttentionInputs in{c.inputs[0].data(), {}};
    Vec out_a(c.out_size()), out_b(c.out_size()), w_a(c.weights_size()), w_b(c.weights_size());
    attention_forward(out_a.data(), w_a.data(), in, c.dims, c.spec, c.mask);
    attention_forward(out_b.data(), AttentionSaved{w_b.data()}, in, AttentionParams{}, c.dims, c.spec, c.mask);
    EXPECT_EQ(out_a, out_b);
    EXPECT_EQ(w_a, w_b);
    Rng rng(5);
    const Vec dout = random_vec(rng, out_a.size());
    Vec d_a(c.inputs[0].size(), 0.0f), d_b(c.inputs[0].size(), 0.0f);
    attention_backward(d_a.data(), dout.data(), in, w_a.data(), c.dims, c.spec, c.mask);
    attention_backward(d_b.data(), AttentionParamGrads{}, dout.data(), in, AttentionParams{}, AttentionSaved{w_a.data()},
                       c.dims, c.spec, c.mask);
    EXPECT_EQ(d_a, d_b);
}

// GradWrite::overwrite gives what accumulating into zeros gives, whatever dqkv held (NaN here):
// every element of dqkv belongs to one (batch, kv head) task, grouped query heads included.
TEST(AttentionEntryPoints, OverwriteIsAccumulateIntoZeros) {
    for (const char* design : {"softmax", "elu1"}) {
        for (const test::Layout& layout : test::layouts()) {
            const DesignCase c = test::make_design_case(design, layout);
            SCOPED_TRACE(c.name);
            const AttentionInputs in{c.inputs[0].data(), {}};
            Vec out(c.out_size()), w(c.weights_size());
            attention_forward(out.data(), w.data(), in, c.dims, c.spec, c.mask);
            Rng rng(9);
            const Vec dout = random_vec(rng, out.size());
            const size_t n = c.inputs[0].size();
            Vec added(n, 0.0f), written(n, std::numeric_limits<float>::quiet_NaN());
            for (auto [d, write] :
                 {std::pair{&added, GradWrite::accumulate}, std::pair{&written, GradWrite::overwrite}})
                attention_backward(d->data(), AttentionParamGrads{}, dout.data(), in, AttentionParams{},
                                   AttentionSaved{w.data()}, c.dims, c.spec, c.mask, write);
            EXPECT_EQ(added, written);
        }
    }
}

// AttentionSaved::zeros_kept: a buffer that was zeroed and then written by the same mask ends with
// the weights (and the output) that writing every row whole gives over a buffer of NaN. The long
// layouts have several strips of query rows, a window and a prefix that cross them.
TEST(AttentionEntryPoints, ZerosKeptGivesTheWholeRowsWeights) {
    for (const char* design : {"softmax", "elu1"}) {
        for (const test::Layout& layout : test::long_layouts()) {
            const DesignCase c = test::make_design_case(design, layout);
            SCOPED_TRACE(c.name);
            const AttentionInputs in{c.inputs[0].data(), {}};
            Vec whole_out(c.out_size()), whole(c.weights_size(), std::numeric_limits<float>::quiet_NaN());
            attention_forward(whole_out.data(), AttentionSaved{whole.data()}, in, AttentionParams{}, c.dims, c.spec,
                              c.mask);
            Vec kept_out(c.out_size()), kept(c.weights_size(), 0.0f);
            AttentionSaved saved{kept.data()};
            saved.zeros_kept = true;
            for (int call = 0; call < 2; ++call) {
                attention_forward(kept_out.data(), saved, in, AttentionParams{}, c.dims, c.spec, c.mask);
                EXPECT_EQ(whole, kept);
                EXPECT_EQ(whole_out, kept_out);
            }
        }
    }
}

TEST(AttentionEntryPoints, DesignsWithSlotsOrParametersNeedThem) {
    for (const char* design : {"kv_bias", "softmax1", "score_bias", "sigmoid_learnable", "v_bias"}) {
        const DesignCase c = test::make_design_case(design, test::layouts()[0]);
        const AttentionInputs in{c.inputs[0].data(), {}};
        Vec out(c.out_size()), w(c.weights_size());
        EXPECT_THROW(attention_forward(out.data(), w.data(), in, c.dims, c.spec, c.mask), Error) << design;
        if (c.spec.slot != SlotKind::zero) {  // softmax1 has no parameter, and its slot weight is an optional tap
            EXPECT_THROW(blockwise_attention_forward(out.data(), {}, {}, in, {}, c.dims, c.spec, c.mask), Error)
                << design;
        }
    }
    const DesignCase c = test::make_design_case("linear_elu", test::layouts()[0]);
    Vec out(c.out_size()), w(c.weights_size());
    const AttentionInputs alibi{c.inputs[0].data(), {ScoreBiasKind::alibi}};
    EXPECT_THROW(attention_forward(out.data(), w.data(), alibi, c.dims, c.spec, c.mask), Error);
    EXPECT_THROW(blockwise_attention_forward(out.data(), {}, {}, alibi, {}, c.dims, c.spec, c.mask), Error);
    // a relative bias without its table
    const DesignCase s = test::make_design_case("softmax", test::layouts()[0]);
    const AttentionInputs no_table{s.inputs[0].data(), {ScoreBiasKind::relative}};
    EXPECT_THROW(attention_forward(out.data(), w.data(), no_table, s.dims, s.spec, s.mask), Error);
    EXPECT_THROW(blockwise_attention_forward(out.data(), {}, {}, no_table, {}, s.dims, s.spec, s.mask), Error);
}

}  // namespace
}  // namespace sinklab
