#pragma once
// `sinklab analyze`'s work: the attention-sink analyses of src/analysis (diffusion, spectral,
// topology, random-matrix, value space, reference frames) on any model the engine loads, or tracked
// across a training run's saved checkpoints. Samples are processed one at a time: one forward
// (B = 1), its attention graph and hidden states (lab/attention_capture.h), the analyses, then the
// maps are dropped. docs/analysis.md gives the definitions and the JSON.
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "probe/probe_input.h"

namespace sinklab {

// The analyses, by the names `--analyses` takes.
const std::vector<std::string>& analysis_names();
// "all" or a comma-separated list of names; throws for an unknown name, listing the known ones.
std::set<std::string> parse_analyses(const std::string& text);

struct AnalysisRequest {
    std::string model;                     // a model folder, run or llama2.c file; empty: checkpoints only
    std::vector<std::string> checkpoints;  // model folders of one training run, analysed in turn
    InputSpec input;
    BosMode bos = BosMode::automatic;
    int seq_len = 64;
    int samples = 100;
    uint64_t seed = 1234;
    std::string tokenizer;           // replaces the model's own for natural input; empty: the model's
    std::set<std::string> analyses;  // names of analysis_names()
    std::vector<double> thresholds;  // binarisation thresholds of the spectral analysis; empty: the notebooks'
    int threads = 0;                 // 0: all cores
};

// Runs the request's analyses on every target, handing `print` each target's description and table
// as they are done; returns what `--json` writes. Throws before any work for a request that cannot
// run (thresholds outside (0, 1), no model, checkpoints of different architectures).
nlohmann::json run_analysis(const AnalysisRequest& request, const std::function<void(const std::string&)>& print);

}  // namespace sinklab
