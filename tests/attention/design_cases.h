#pragma once
// The attention designs under test (tests/attention/test_attention_designs.cpp and
// test_attention_oracle.cpp): one case per design and head/mask layout, with random inputs, and the
// kernel run the way the model will run it: attention_forward, then the output gate for gated
// designs; backward in the opposite order.
//
// A case's differentiable inputs, in order: "qkv", then the design's parameters in
// attention_param_infos order ("slot_k", "slot_v", "slot_score", "sigmoid_bias", "value_bias"),
// then "gate" (the gate logits) for gated designs.
#include <gtest/gtest.h>

#include <cctype>
#include <functional>
#include <string>
#include <vector>

#include "../ops/gradient_check.h"
#include "attention/attention.h"
#include "attention/output_gate.h"
#include "core/rng.h"

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
    bool score_bias = false;
    float scale = 0.0f;  // 0: 1/sqrt(HS)
};

// MHA over a batch of two; GQA with a sliding window; MQA with a prefix (three heads, one kv
// head). Small, because the harness runs the kernel twice per input entry.
inline std::vector<Layout> layouts() {
    return {Layout{"mha", 2, 5, 2, 2, 4}, Layout{"gqa_window", 1, 7, 4, 2, 4, 3, 0},
            Layout{"mqa_prefix", 1, 6, 3, 1, 4, 0, 3}};
}

// A layout with an additive score bias (ALiBi-like) and an explicit scale, for the designs it
// applies to (every design with a score: all but linear_elu).
inline Layout score_bias_layout() { return Layout{"score_bias", 1, 5, 2, 1, 4, 0, 0, true, 0.3f}; }

struct DesignCase {
    std::string name;  // design and layout, as a test name
    std::string design;
    AttentionSpec spec;
    AttentionDims dims;
    AttentionMask mask;
    Vec score_bias;  // (NH, T, T) or empty
    std::vector<std::string> input_names;
    std::vector<Vec> inputs;

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
    c.dims = AttentionDims{l.B, l.T, l.NH, l.NKV, l.HS};
    c.mask = AttentionMask{l.window, l.prefix};
    Rng rng(fnv1a(c.name));
    if (l.score_bias) c.score_bias = random_vec(rng, static_cast<size_t>(l.NH) * l.T * l.T);
    c.input_names.push_back("qkv");
    c.inputs.push_back(random_vec(rng, static_cast<size_t>(l.B) * l.T * c.dims.qkv_stride()));
    for (const AttentionParamInfo& info : attention_param_infos(c.spec, l.NH, l.HS)) {
        size_t n = 1;
        for (int s : info.shape) n *= s;
        c.input_names.push_back(info.name);
        c.inputs.push_back(random_vec(rng, n));
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
    return {Layout{"long_causal", 1, 130, 2, 2, 4}, Layout{"long_window_prefix", 1, 150, 2, 1, 4, 50, 70}};
}

// Every design on every layout, and the score-bias layout for the designs with a score.
inline std::vector<DesignCase> all_design_cases() {
    std::vector<DesignCase> cases;
    for (const auto& design : designs_under_test()) {
        for (const Layout& l : layouts()) cases.push_back(make_design_case(design, l));
        if (design != "linear_elu") cases.push_back(make_design_case(design, score_bias_layout()));
    }
    return cases;
}

// The same and every design on the long layouts.
inline std::vector<DesignCase> oracle_design_cases() {
    std::vector<DesignCase> cases = all_design_cases();
    for (const auto& design : designs_under_test())
        for (const Layout& l : long_layouts()) cases.push_back(make_design_case(design, l));
    return cases;
}

// AttentionParams (and grads) pointing into a case's inputs (and gradient buffers).
inline AttentionParams bind_params(const DesignCase& c, const std::vector<Vec>& inputs) {
    AttentionParams p;
    for (const AttentionParamInfo& info : attention_param_infos(c.spec, c.dims.NH, c.dims.HS))
        p.*info.value = inputs[c.input_index(info.name)].data();
    return p;
}

struct KernelRun {
    Vec out, attn;  // attn: the attention output before the gate
    Vec weights, slot_weights, row_sums, scores;  // what the forward keeps (empty where the design has none)
    AttentionSaved saved() {
        auto at = [](Vec& v) { return v.empty() ? nullptr : v.data(); };
        return {at(weights), at(slot_weights), at(row_sums), at(scores)};
    }
};

inline KernelRun run_forward(const DesignCase& c, const std::vector<Vec>& inputs) {
    const AttentionSavedNeeds needs = attention_saved_needs(c.spec);
    const long rows = static_cast<long>(c.dims.B) * c.dims.NH * c.dims.T;
    KernelRun r{Vec(c.out_size()), Vec(c.out_size()), Vec(c.weights_size()), Vec(c.slot_size()),
                Vec(needs.row_sums ? rows : 0), Vec(needs.scores ? c.weights_size() : 0)};
    const AttentionInputs in{inputs[0].data(), c.score_bias.empty() ? nullptr : c.score_bias.data()};
    attention_forward(r.attn.data(), r.saved(), in, bind_params(c, inputs), c.dims, c.spec, c.mask);
    if (c.gated())
        output_gate_forward(r.out.data(), r.attn.data(), inputs[c.input_index("gate")].data(), c.dims.B * c.dims.T,
                            c.dims.NH, c.dims.HS, c.spec.gate);
    else
        r.out = r.attn;
    return r;
}

// Gradients of sum(out * dout) for every input. Each buffer starts at a known pattern and the
// pattern is subtracted afterwards: a backward that overwrote instead of accumulating fails.
inline std::vector<Vec> run_backward(const DesignCase& c, const std::vector<Vec>& inputs, const Vec& dout) {
    KernelRun r = run_forward(c, inputs);
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
    const AttentionInputs in{inputs[0].data(), c.score_bias.empty() ? nullptr : c.score_bias.data()};
    attention_backward(grads[0].data(), dp, dattn.data(), in, bind_params(c, inputs), r.saved(), c.dims, c.spec,
                       c.mask);
    for (size_t k = 0; k < grads.size(); ++k)
        for (size_t i = 0; i < grads[k].size(); ++i) grads[k][i] -= start[k][i];
    return grads;
}

}  // namespace sinklab::test
