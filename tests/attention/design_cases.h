#pragma once
// The attention designs under test (tests/attention/test_attention_designs.cpp,
// test_attention_oracle.cpp, test_blockwise_attention.cpp): one case per design and head/mask/bias
// layout, with random inputs, and a kernel (materialised or blockwise) run the way the model runs
// it: the attention forward, then the output gate for gated designs; backward in the opposite order.
//
// A case's differentiable inputs, in order: "qkv", then the design's parameters in
// attention_param_infos order ("slot_k", "slot_v", "slot_score", "sigmoid_bias", "value_bias"),
// then "relative_table" for a relative score bias, then "gate" (the gate logits) for gated designs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "../ops/gradient_check.h"
#include "attention/attention.h"
#include "attention/blockwise_attention.h"
#include "attention/output_gate.h"
#include "core/rng.h"
#include "ops/position_bias.h"

namespace sinklab::test {

// Every design the kernel computes (sink_token is softmax in the kernel, so it is left out), and
// a fixed-bias sigmoid.
inline std::vector<std::string> designs_under_test() {
    std::vector<std::string> names;
    for (const auto& n : AttentionSpec::known_names())
        if (n != "sink_token") names.push_back(n);
    names.push_back("sigmoid:-1.5");
    return names;
}

struct Layout {
    const char* name;
    int B, T, NH, NKV, HS;
    int window = 0, prefix = 0;
    ScoreBiasKind bias = ScoreBiasKind::none;
    float scale = 0.0f;    // 0: 1/sqrt(HS)
    float softcap = 0.0f;  // logit soft-capping, 0 = off
};

// MHA over a batch of two; GQA with a sliding window; MQA with a prefix (three heads, one kv
// head). Small, because the harness runs the kernel twice per input entry.
inline std::vector<Layout> layouts() {
    return {Layout{"mha", 2, 5, 2, 2, 4}, Layout{"gqa_window", 1, 7, 4, 2, 4, 3, 0},
            Layout{"mqa_prefix", 1, 6, 3, 1, 4, 0, 3}};
}

// Layouts with a positional score bias (ALiBi with an explicit scale; T5's relative buckets with
// soft-capping and a window), for the designs they apply to (every design with a score: all but
// linear_elu).
inline std::vector<Layout> score_layouts() {
    return {Layout{"alibi", 1, 5, 2, 1, 4, 0, 0, ScoreBiasKind::alibi, 0.3f},
            Layout{"relative_softcap", 1, 6, 2, 2, 4, 4, 0, ScoreBiasKind::relative, 0.0f, 1.5f}};
}

struct DesignCase {
    std::string name;  // design and layout, as a test name
    std::string design;
    AttentionSpec spec;
    AttentionDims dims;
    AttentionMask mask;
    ScoreBiasKind bias = ScoreBiasKind::none;  // relative: the table is the input "relative_table"
    std::vector<std::string> input_names;
    std::vector<Vec> inputs;
    bool forward_only = false;  // no backward to compare (scale-first is inference only)

    bool gated() const { return spec.gate != GateKind::none; }
    long out_size() const { return static_cast<long>(dims.B) * dims.T * dims.out_stride(); }
    long weights_size() const { return static_cast<long>(dims.B) * dims.NH * dims.T * dims.T; }
    long slot_size() const { return spec.has_slot() ? static_cast<long>(dims.B) * dims.NH * dims.T : 0; }
    int input_index(const std::string& input) const {
        for (size_t i = 0; i < input_names.size(); ++i)
            if (input_names[i] == input) return static_cast<int>(i);
        return -1;
    }
};

inline std::string test_name(const std::string& s) {
    std::string out;
    for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return out;
}

inline DesignCase make_design_case(const std::string& design, const Layout& l) {
    DesignCase c;
    c.name = test_name(design + "_" + l.name);
    c.design = design;
    c.spec = AttentionSpec::parse(design);
    c.spec.scale = l.scale;
    c.spec.softcap = l.softcap;
    c.dims = AttentionDims{l.B, l.T, l.NH, l.NKV, l.HS};
    c.mask = AttentionMask{l.window, l.prefix};
    c.bias = l.bias;
    Rng rng(fnv1a(c.name));
    c.input_names.push_back("qkv");
    c.inputs.push_back(random_vec(rng, static_cast<size_t>(l.B) * l.T * c.dims.qkv_stride()));
    for (const AttentionParamInfo& info : attention_param_infos(c.spec, l.NH, l.HS)) {
        size_t n = 1;
        for (int s : info.shape) n *= s;
        c.input_names.push_back(info.name);
        c.inputs.push_back(random_vec(rng, n));
    }
    if (c.bias == ScoreBiasKind::relative) {
        c.input_names.push_back("relative_table");
        c.inputs.push_back(random_vec(rng, static_cast<size_t>(kRelativeBuckets) * l.NH));
    }
    if (c.gated()) {
        c.input_names.push_back("gate");
        const size_t width = output_gate_width(c.spec.gate, l.NH, l.HS);
        c.inputs.push_back(random_vec(rng, static_cast<size_t>(l.B) * l.T * width));
    }
    return c;
}

// Sequences longer than the kernel's strips of 32 query rows (a last strip cut short; windows and
// a prefix that cross strip boundaries), for the PyTorch oracle only: the finite-difference
// harness would run the kernel twice per input entry.
inline std::vector<Layout> long_layouts() {
    return {Layout{"long_causal", 1, 130, 2, 2, 4}, Layout{"long_window_prefix", 1, 150, 2, 1, 4, 50, 70},
            Layout{"long_relative", 1, 150, 2, 1, 4, 0, 0, ScoreBiasKind::relative}};
}

// Every design on every layout, and the score-bias layouts for the designs with a score.
inline std::vector<DesignCase> all_design_cases() {
    std::vector<DesignCase> cases;
    for (const auto& design : designs_under_test()) {
        for (const Layout& l : layouts()) cases.push_back(make_design_case(design, l));
        if (design != "linear_elu")
            for (const Layout& l : score_layouts()) cases.push_back(make_design_case(design, l));
    }
    return cases;
}

// The axes at a sequence length T, for comparing the blockwise kernel with the materialised one
// (test_blockwise_attention.cpp, tests/metrics/test_blockwise_taps.cpp): MHA over a batch of two;
// GQA with a window; MQA with a prefix; a window and a prefix that cross strips; ALiBi with an
// explicit scale; relative buckets with soft-capping. Small heads, so that T = 512 stays fast.
inline std::vector<Layout> axes_at(int T) {
    using K = ScoreBiasKind;
    return {Layout{"mha", 2, T, 2, 2, 8},
            Layout{"gqa_window", 1, T, 4, 2, 8, 100, 0},
            Layout{"mqa_prefix", 1, T, 3, 1, 8, 0, 77},
            Layout{"window_prefix", 1, T, 2, 1, 8, 50, 130},
            Layout{"alibi_scale", 1, T, 2, 1, 8, 0, 0, K::alibi, 0.25f},
            Layout{"relative_softcap", 1, T, 2, 2, 8, 0, 0, K::relative, 0.0f, 2.5f}};
}

// Every design on every axis at T = 512 and at T = 389 (odd, a multiple of no tile size).
inline std::vector<DesignCase> long_design_cases() {
    std::vector<DesignCase> cases;
    for (int T : {512, 389})
        for (Layout l : axes_at(T)) {
            const std::string name = std::string(l.name) + "_T" + std::to_string(T);
            l.name = name.c_str();  // read by make_design_case only
            for (const auto& design : designs_under_test())
                if (design != "linear_elu" || (l.bias == ScoreBiasKind::none && l.softcap == 0.0f))
                    cases.push_back(make_design_case(design, l));
        }
    return cases;
}

// The same, every design on the long layouts, and every design with the sink interventions'
// first-key edits (AttentionMask::first_keys): two keys hidden (a mask, so with its backward),
// key 0 reweighted by 0.3 (forward only), and both with a window that some rows see key 0 through.
inline std::vector<DesignCase> oracle_design_cases() {
    std::vector<DesignCase> cases = all_design_cases();
    for (const auto& design : designs_under_test()) {
        for (const Layout& l : long_layouts())
            if (design != "linear_elu" || l.bias == ScoreBiasKind::none) cases.push_back(make_design_case(design, l));
        struct Edit {
            const char* name;
            Layout layout;
            FirstKeyEdit edit;
        };
        for (const Edit& e : {Edit{"hidden2", layouts()[0], {.hidden = 2}},
                              Edit{"factor0_3", layouts()[0], {.factor = 0.3f}},
                              Edit{"window_hidden1_factor2_5", layouts()[1], {.hidden = 1, .factor = 2.5f}}}) {
            DesignCase c = make_design_case(design, e.layout);
            c.name = test_name(design + "_" + e.layout.name + "_" + e.name);
            c.mask.first_keys = e.edit;
            c.forward_only = e.edit.factor != 1.0f;
            cases.push_back(std::move(c));
        }
    }
    return cases;
}

// max_i |a_i - b_i| / max(1, max_i |b_i|) <= tolerance (relative to the tensor's largest entry where
// that exceeds 1, absolute below), with the worst element described; NaN fails.
inline void expect_close_tensor(const std::string& what, const Vec& actual, const Vec& expected, double tolerance) {
    ASSERT_EQ(actual.size(), expected.size()) << what;
    double worst = 0.0, scale = 1.0;
    size_t at = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
        scale = std::max(scale, std::abs(static_cast<double>(expected[i])));
        const double d = std::abs(static_cast<double>(actual[i]) - expected[i]);
        if (!(d <= worst)) {
            worst = std::isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    EXPECT_LE(worst / scale, tolerance) << what << ": element " << at << " is " << actual[at] << ", expected "
                                        << expected[at] << " (scale " << scale << ")";
}

// AttentionParams (and grads) pointing into a case's inputs (and gradient buffers).
inline AttentionParams bind_params(const DesignCase& c, const std::vector<Vec>& inputs) {
    AttentionParams p;
    for (const AttentionParamInfo& info : attention_param_infos(c.spec, c.dims.NH, c.dims.HS))
        p.*info.value = inputs[c.input_index(info.name)].data();
    return p;
}

inline AttentionInputs bind_inputs(const DesignCase& c, const std::vector<Vec>& inputs) {
    const int table = c.input_index("relative_table");
    return {inputs[0].data(), ScoreBias{c.bias, table >= 0 ? inputs[table].data() : nullptr}};
}

// Which kernel runs a case; the blockwise one with its tiles (small tiles make many strips and
// tiles out of a short sequence).
struct KernelChoice {
    bool blockwise = false;
    BlockwiseTiles tiles;
    ProxyKind proxy = ProxyKind::none;  // how the blockwise taps read the weights
};
inline const KernelChoice kMaterialised{};

struct KernelRun {
    Vec out, attn;  // attn: the attention output before the gate
    Vec weights, slot_weights, row_sums, scores;  // materialised: what the forward keeps (empty where none)
    // blockwise: the row statistics, and the taps: column sums of every key (B, NH, T), row entropies
    Vec shift, sum, column_sums, row_entropy;
    std::vector<int32_t> argmax;
    AttentionSaved saved() {
        auto at = [](Vec& v) { return v.empty() ? nullptr : v.data(); };
        return {at(weights), at(slot_weights), at(row_sums), at(scores)};
    }
    AttentionRowStats stats() {
        auto at = [](Vec& v) { return v.empty() ? nullptr : v.data(); };
        return {at(shift), at(sum), argmax.empty() ? nullptr : argmax.data()};
    }
};

inline KernelRun run_forward(const DesignCase& c, const std::vector<Vec>& inputs,
                             const KernelChoice& kernel = kMaterialised) {
    const long rows = static_cast<long>(c.dims.B) * c.dims.NH * c.dims.T;
    const AttentionInputs in = bind_inputs(c, inputs);
    KernelRun r;
    r.out = r.attn = Vec(c.out_size());
    r.slot_weights = Vec(c.slot_size());
    if (kernel.blockwise) {
        const AttentionRowStatsNeeds needs = attention_row_stats_needs(c.spec);
        r.shift = Vec(needs.shift ? rows : 0);
        r.sum = Vec(needs.sum ? rows : 0);
        r.argmax = std::vector<int32_t>(needs.argmax ? rows : 0);
        r.column_sums = Vec(rows);
        r.row_entropy = Vec(rows);
        const AttentionTaps taps{r.slot_weights.empty() ? nullptr : r.slot_weights.data(), r.column_sums.data(),
                                 c.dims.T, r.row_entropy.data(), kernel.proxy};
        blockwise_attention_forward(r.attn.data(), r.stats(), taps, in, bind_params(c, inputs), c.dims, c.spec, c.mask,
                                    kernel.tiles);
    } else {
        const AttentionSavedNeeds needs = attention_saved_needs(c.spec);
        r.weights = Vec(c.weights_size());
        r.row_sums = Vec(needs.row_sums ? rows : 0);
        r.scores = Vec(needs.scores ? c.weights_size() : 0);
        attention_forward(r.attn.data(), r.saved(), in, bind_params(c, inputs), c.dims, c.spec, c.mask);
    }
    if (c.gated())
        output_gate_forward(r.out.data(), r.attn.data(), inputs[c.input_index("gate")].data(), c.dims.B * c.dims.T,
                            c.dims.NH, c.dims.HS, c.spec.gate);
    else
        r.out = r.attn;
    return r;
}

// Gradients of sum(out * dout) for every input. Each buffer starts at a known pattern and the
// pattern is subtracted afterwards: a backward that overwrote instead of accumulating fails.
inline std::vector<Vec> run_backward(const DesignCase& c, const std::vector<Vec>& inputs, const Vec& dout,
                                     const KernelChoice& kernel = kMaterialised) {
    KernelRun r = run_forward(c, inputs, kernel);
    std::vector<Vec> grads;
    for (const auto& in : inputs) {
        Vec g(in.size());
        for (size_t i = 0; i < g.size(); ++i) g[i] = 0.25f * static_cast<float>(i % 7) - 0.75f;
        grads.push_back(g);
    }
    const std::vector<Vec> start = grads;
    Vec dattn = dout;
    if (c.gated()) {
        const int gi = c.input_index("gate");
        dattn.assign(dout.size(), 0.0f);
        output_gate_backward(dattn.data(), grads[gi].data(), dout.data(), r.attn.data(), inputs[gi].data(),
                             c.dims.B * c.dims.T, c.dims.NH, c.dims.HS, c.spec.gate);
    }
    AttentionParamGrads dp;
    for (const AttentionParamInfo& info : attention_param_infos(c.spec, c.dims.NH, c.dims.HS))
        dp.*info.grad = grads[c.input_index(info.name)].data();
    const int table = c.input_index("relative_table");
    if (table >= 0) dp.relative_table = grads[table].data();
    const AttentionInputs in = bind_inputs(c, inputs);
    if (kernel.blockwise)
        blockwise_attention_backward(grads[0].data(), dp, dattn.data(), r.attn.data(), in, bind_params(c, inputs),
                                     r.stats(), c.dims, c.spec, c.mask, GradWrite::accumulate, kernel.tiles);
    else
        attention_backward(grads[0].data(), dp, dattn.data(), in, bind_params(c, inputs), r.saved(), c.dims, c.spec,
                           c.mask);
    for (size_t k = 0; k < grads.size(); ++k)
        for (size_t i = 0; i < grads[k].size(); ++i) grads[k][i] -= start[k][i];
    return grads;
}

}  // namespace sinklab::test
