#pragma once
// `sinklab report`: from training runs, sweeps and models to one self-contained page
// (OUT/index.html) with the numbers beside it (OUT/report.json, OUT/runs.csv). Sources are found
// by run_sources.h, models measured by model_measurement.h, and drawn by src/report (pure
// rendering). docs/report.md lists the figures and the files.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "report/csv.h"
#include "lab/model_measurement.h"
#include "lab/run_sources.h"

namespace sinklab {

struct ReportOptions {
    std::filesystem::path out;
    std::string title = "Attention sinks";
    MeasureOptions measure;
    int max_models_with_head_maps = 6;  // beyond this many models only head-averaged maps, to keep the page light
    bool progress = true;               // a progress bar on stderr
    // A model known to have a sink (the demo's models/reference), one of the inputs: a run that formed
    // no sink is pointed to it.
    std::filesystem::path reference;
};

// The graph analyses' KS distance to Marchenko-Pastur (GraphAnalyses::mp_ks) of each model a run
// saved: how each layer's attention spectrum moves away from (or back to) the random bulk as training
// goes on.
struct SpectrumOverTraining {
    std::vector<double> steps;              // of the saved models measured, ascending
    std::vector<std::vector<double>> mp_ks;  // [layer][saved model]
    int samples = 0;                        // analysed samples per saved model
};

struct ReportEntry {
    ReportSource source;
    std::optional<ModelMeasurement> measured;  // when a model was found and loaded
    std::optional<SpectrumOverTraining> spectrum;  // runs that saved at least two models (--save-at)
};

struct ReportOutcome {
    std::filesystem::path page;  // OUT/index.html
    std::vector<ReportEntry> entries;
    std::vector<std::string> notes;  // every note: inputs with nothing to report, runs and models
    Table comparison{{"run"}};       // one row per entry, as in runs.csv
    double eps = 0.3;                // the Sink threshold the entries were measured with
    // Sentences computed from the measurements, shown under the summary: each training run that formed
    // no sink says so, and names the reference model's sink when there is one.
    std::vector<std::string> findings;
    std::vector<StreamResults> streams;  // `sinklab stream` results, drawn in a section each

    bool has_content() const { return !entries.empty() || !streams.empty(); }
    // One line per entry, computed from what was measured: its final validation loss, where it has a
    // first-token sink or that none formed (probe/probe_report.h sink_finding, on natural input when
    // measured), and its Sink_1 on each input kind.
    std::vector<std::string> entry_summaries() const;
};

// Natural text for probes: the validation split of the default corpus; empty (with a note) when it
// is missing.
std::pair<std::string, std::string> default_probe_text(std::vector<std::string>& notes);

// Measures and draws everything found under `inputs` and writes OUT/index.html, report.json and
// runs.csv. Inputs that hold nothing are noted on the page and in the outcome, not thrown.
ReportOutcome build_report(const std::vector<std::filesystem::path>& inputs, ReportOptions options);

}  // namespace sinklab
