#pragma once
// `sinklab demo`: the lab in one command. Trains the demo model and the same model with a
// sink-removing attention design for the same wall-clock budget, probes and analyses both (and a
// pretrained model when given), and writes the report. The demo's settings are the outcome of the
// experiment in docs/experiments.md.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace sinklab {

// The training settings of the demo model (`sinklab train` keys), chosen in docs/experiments.md as
// the ones that grow the clearest first-token sink within minutes on two cores.
const std::map<std::string, std::string>& demo_train_settings();

// The design trained beside it to show a model without the sink: softmax attention whose output is
// gated per head (Qwen3-Next; docs/attention-designs.md), which needs no sink to leave its output unchanged.
inline constexpr const char* kSinkFreeDesign = "gated";

struct DemoOptions {
    double minutes = 8.0;            // training budget of each of the two models
    std::filesystem::path out = "runs/demo";
    std::string data;                // training text; empty: the default corpus
    std::filesystem::path pretrained;  // a pretrained model to probe beside them; empty: none
    // The reference model (models/reference: the demo's model trained long enough to have a sink),
    // probed and drawn beside the live runs; empty: none.
    std::filesystem::path reference;
    int threads = 0;
    bool progress = true;
};

struct DemoOutcome {
    std::filesystem::path page;
    std::vector<std::string> summary;  // a line per model, then what the live runs showed, then the page
};

// Runs every phase; an existing finished run in OUT/<name> is reused and an interrupted one resumed,
// when OUT/demo.json says a demo with the same budget, data and settings made them. A folder that
// another demo made is refused with an error, before anything is trained.
DemoOutcome run_demo(const DemoOptions& options);

// models/reference of this source tree (a training run of the demo's model, shipped with sinklab; its
// PROVENANCE.md says how it was made), when present; empty otherwise.
std::filesystem::path bundled_reference_model();

}  // namespace sinklab
