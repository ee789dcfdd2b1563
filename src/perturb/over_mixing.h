#pragma once
// The over-mixing test (Barbero, Gu et al. 2025, "Why do LLMs attend to the first token?"):
// attention keeps mixing the tokens' representations, and a sink lets a head do (almost) nothing,
// so that a small change of one token does not spread through the sequence. For a clean input x
// and a perturbed x', at every layer l and every position t after the perturbed tokens, the
// relative change of the residual stream
//     r_l,t = ||h_l,t(x') - h_l,t(x)|| / ||h_l,t(x)||     (2-norms, h_l = the output of block l)
// and the same for each attention head's output o_l,h,t (as the output projection reads it, after
// the gate of gated designs). In a bidirectional model (an encoder) every position sees the
// perturbed tokens, so the positions on both sides of them are measured, at distance |d|.
// docs/perturb.md states the definitions and the JSON.
#include <limits>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "perturb/perturbation.h"

namespace sinklab {

// Mean and 90th percentile of a set of relative changes. The percentile interpolates linearly
// between order statistics at rank 0.9 (n - 1) (NumPy's and torch.quantile's default).
struct ChangeSummary {
    double mean = std::numeric_limits<double>::quiet_NaN();
    double p90 = std::numeric_limits<double>::quiet_NaN();
    long count = 0;
};
ChangeSummary summarize_changes(std::vector<float> values);  // NaN values are left out

struct OverMixingOptions {
    FirstKeyEdit first_keys;  // mask-first / scale-first on every layer's attention
    AttentionKernel kernel = AttentionKernel::automatic;  // attention/attention_kernel.h
    bool progress = false;    // a progress line on stderr
    std::string label = "perturb";
};

// Which positions a perturbation of tokens p..q is measured at, and their distance to it: "causal"
// (decoders) t > q at d = t - q; "bidirectional" (encoders: every query sees every key) every t
// outside p..q, at |d| = t - q after the perturbed tokens and p - t before them.
inline constexpr const char* kCausalDistances = "causal";
inline constexpr const char* kBidirectionalDistances = "bidirectional";

struct OverMixingResult {
    int layers = 0, heads = 0, seq_len = 0, windows = 0, perturbations = 0;
    std::string distance_convention = kCausalDistances;  // the model's: bidirectional when it is not causal
    // over every perturbation and every position t it is measured at (distance_convention)
    std::vector<ChangeSummary> residual;               // [layer]
    std::vector<std::vector<ChangeSummary>> head;      // [layer][head]
    std::vector<ChangeSummary> heads_pooled;           // [layer] over the heads too
    // the decay with distance |d| = 1 .. T-1 from the perturbed tokens: means (NaN where no pair)
    std::vector<std::vector<double>> residual_by_distance;  // [layer][d - 1]
    std::vector<std::vector<double>> heads_by_distance;     // [layer][d - 1] over the heads too
    std::vector<long> pairs_by_distance;                    // [d - 1] (perturbation, position) pairs
    // the mean over perturbations at every position t = 1 .. T of the input (those before and at the
    // perturbed tokens too: before them the change is exactly 0 in a causal model)
    std::vector<std::vector<double>> residual_by_position;  // [layer][t - 1]
    long zero_norm_skipped = 0;  // (layer or head, position) pairs whose clean norm is 0, left out
    // The windows' loss under this condition (PerturbationSet::loss, e.g. "masked_lm"): the mean
    // cross-entropy in nats over the targets of every window; NaN and an empty name when the set
    // carries no loss input.
    std::string loss;
    double loss_value = std::numeric_limits<double>::quiet_NaN();
    double seconds = 0.0;        // wall time of the forwards and the statistics
};

// Runs every window once and every perturbed window once (one forward each: a window's clean
// forward is shared by its perturbations), on `options.kernel`; with a loss input, one more forward
// per window scores it (with the same attention edit).
OverMixingResult measure_over_mixing(Transformer& model, const PerturbationSet& set, const OverMixingOptions& options);

}  // namespace sinklab
