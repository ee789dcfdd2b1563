#pragma once
// Reference-frame taxonomy (Ruscio et al. 2025, ANALYSIS.md section 2): is a model's attention
// centralized (one dominant reference token, position 0), distributed (several weaker reference
// points) or bidirectional (non-causal, with anchors at both ends)? The authors' code has no
// classifier; this is sinklab's operational rule built from metrics that are in their code, so it
// is labelled "corrected". Its thresholds still need validating on real models.
//
// Per sample and layer, with R the reference set of reference_point.ipynb (value_space.h):
//   bidirectional  the layer is not causal and R holds both 0 and T - 1;
//   centralized    R = {0} and the column-0 share c_0 / T exceeds centralized_share;
//   distributed    otherwise.
// A layer takes the label most of its samples give (ties: distributed). The model is bidirectional
// when its attention is not causal and some layer is; else centralized when more than `majority`
// of its layers are; else distributed.
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/sample.h"

namespace sinklab::analysis {

enum class Frame { centralized, distributed, bidirectional };
const char* frame_name(Frame frame);

struct FrameOptions {
    double reference_threshold = 0.1;  // R: column mean above this (reference_point.ipynb)
    double centralized_share = 0.5;    // c_0 / T above this, with R = {0}: centralized
    double majority = 0.5;             // fraction of centralized layers for a centralized model
    std::vector<int> layers;           // empty: every layer
};

struct LayerFrame {
    int layer;
    bool causal;                  // every sample's layer is causal
    Frame frame;
    double votes[3];              // fraction of samples per label, in Frame order
    double reference_count;       // mean |R|
    double token0_only_fraction;  // samples with R = {0}
    double dual_anchor_fraction;  // samples with {0, T - 1} in R
    double column0_share;         // mean c_0 / T, c_j = sum_i A_ij
    double in_degree_gini;        // mean Gini of the column sums (weighted in-degrees)
};

struct FrameResult {
    int samples;
    bool causal;
    Frame frame;
    double layer_fractions[3];  // fraction of layers per label, in Frame order
    std::vector<LayerFrame> layers;
    nlohmann::json to_json() const;
};

// Classifies sample by sample, so that no sample's maps need be kept (analyze reads its samples one
// forward at a time): add each of the `samples` samples (each counts 1/samples), then result().
class FrameAccumulator {
public:
    explicit FrameAccumulator(int samples, const FrameOptions& options = {});
    void add(const AttentionSample& sample);
    FrameResult result() const;  // the layers' plurality and the model's label, over the samples added

private:
    FrameOptions options_;
    int samples_;
    double weight_;                   // 1 / samples
    int num_layers_ = 0;              // of the first sample; 0 before it
    std::vector<LayerFrame> layers_;  // the selected layers' votes and evidence, summed with weight_
};

FrameResult classify_frames(const std::vector<AttentionSample>& samples, const FrameOptions& options = {});

}  // namespace sinklab::analysis
