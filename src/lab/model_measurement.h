#pragma once
// Everything a report shows about one model, measured with the probe and analysis libraries from
// the Transformer's taps: sink scores and massive activations per input kind (probe/), the power
// sink mass s_k of each layer's head-averaged attention against uniform causal attention
// (analysis/diffusion.h), and the attention heatmaps of one natural sample (report/heatmap.h).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "analysis/frames.h"
#include "lab/perturb_models.h"
#include "probe/probe.h"
#include "probe/probe_input.h"
#include "report/html.h"

namespace sinklab {

struct InputProbe {
    std::string input;        // "natural", "random" or "repeat"
    std::string description;  // the samples, in one line
    ProbeResult result;
};

// s_k per layer (all rows, DESIGN.md section 4), mean over the analysed samples, and the exact
// s_k of uniform causal attention at the same T.
struct DiffusionCurves {
    std::vector<int> powers;
    std::vector<std::vector<double>> mass;  // [layer][power]
    std::vector<double> baseline;           // [power]
    int samples = 0;
};

// The graph analyses of the same samples (docs/analysis.md), corrected variants, per layer and mean
// over the samples, and the reference-frame labels of sinklab's rule.
struct GraphAnalyses {
    int samples = 0;
    std::vector<double> fiedler;     // lambda_2 of the Laplacian of (A + A^T) / 2
    std::vector<double> h0_bars;     // persistent H0 bars longer than the topology's eps
    std::vector<double> h1_bars;     // persistent H1 bars longer than eps
    std::vector<double> mp_ks;       // KS distance of the centred A's spectrum to Marchenko-Pastur (NaN: none)
    std::vector<double> mixing_rate; // max_{i>=1} A_ii (causal layers; NaN otherwise)
    std::optional<analysis::FrameResult> frames;
};

struct AttentionMaps {
    std::string input;  // which sample was drawn
    int seq_len = 0;
    int pool = 1;       // each pixel averages pool x pool entries (long sequences)
    double vmin = 0.0, vmax = 1.0;
    std::vector<HeatmapLayer> layers;  // head-averaged map of each layer, with its heads' maps
};

struct ModelMeasurement {
    std::string source, architecture, design;  // "sinklab"/"huggingface"/"llama2c", model_type, attention design
    bool causal = true;                        // false: an encoder (bidirectional attention, baselines 1/T)
    long params = 0;
    int layers = 0, heads = 0, vocab = 0;
    std::vector<InputProbe> probes;
    std::optional<DiffusionCurves> diffusion;
    std::optional<GraphAnalyses> graph;
    std::optional<AttentionMaps> maps;
    std::optional<ModelOverMixing> over_mixing;  // with the sink and without it (docs/perturb.md)
    std::vector<std::string> notes;  // what could not be measured, and why
};

struct MeasureOptions {
    std::vector<InputKind> inputs = {InputKind::natural, InputKind::random, InputKind::repeat};
    int seq_len = 64;            // T of every sample (the Sink metric's default)
    int samples = 32;            // probe samples per input
    int analysis_samples = 4;    // natural samples whose attention powers are analysed
    bool head_maps = true;       // per-head maps as well as the head average
    // random substitutions of the over-mixing test on natural windows, with the model's sink and
    // without it (mask-first:1; drop-bos with BOS; mask-slot with a slot); 0: not measured
    int perturbations = 64;
    int map_side = 320;          // longest side of a map in pixels; longer sequences are pooled
    float eps = 0.3f;
    uint64_t seed = 1234;
    // Natural text for models of the byte vocabulary and models with a tokenizer; empty: no natural input.
    std::string natural_text;
    std::string natural_source;  // names the text in descriptions and notes
    std::filesystem::path tokenizer;  // --tokenizer: replaces each model's own (must fit its vocabulary)
};

// The --without-sink modes a report runs on a model: mask-first:1, drop-bos when its inputs start
// with BOS, mask-slot when its design has a slot.
std::vector<SinkIntervention> report_sink_removals(const ModelConfig& config, bool has_bos);

// Loads `model_path` (any model load_model reads) and measures it. Measurements that fail (an input
// the model cannot take, attention the analyses cannot read) become notes; only a model that cannot
// be loaded throws. `on_step` is called after each measurement, for progress.
ModelMeasurement measure_model(const std::filesystem::path& model_path, const MeasureOptions& options,
                               const std::function<void(const std::string&)>& on_step = {});

// The graph analyses' random-matrix statistic alone (GraphAnalyses::mp_ks: per layer, mean over the
// same samples measure_model analyses), for the report's curve over a run's saved models. Throws
// when the model cannot be loaded or measured.
std::vector<double> measure_mp_ks(const std::filesystem::path& model_path, const MeasureOptions& options);

// "natural", "random" or "repeat": the input kinds as the report's tables and JSON name them.
std::string input_kind_name(InputKind kind);

// Phases measure_model reports through on_step (for a progress bar's total).
int measurement_steps(const MeasureOptions& options);

}  // namespace sinklab
