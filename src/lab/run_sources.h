#pragma once
// What `sinklab report` is pointed at, read without trusting it: training runs (train_log.jsonl,
// checkpoint/, checkpoints/step_N), sweep folders (one run per subfolder, results.csv), model
// folders and llama2.c files. Anything missing, cut short or foreign becomes a note that says what
// was found, never an exception, so that a report renders whatever can be rendered.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/csv.h"

namespace sinklab {

// The curves of one train_log.jsonl. Training lines give step/loss; evaluation lines give the rest.
struct TrainingLog {
    std::vector<double> steps, losses;                     // training steps
    std::vector<double> eval_steps, val_losses, sink1;     // evaluations (periodic and final)
    std::vector<double> massive_ratio;                     // per evaluation (NaN when absent)
    std::vector<std::vector<double>> alpha1_per_layer;     // per evaluation
    std::optional<nlohmann::json> config;                  // the "start" line's config
    std::optional<nlohmann::json> final_evaluation;        // the line with "final": true
    std::optional<std::string> diverged;                   // the reason, when the run diverged
    std::vector<std::string> notes;                        // lines skipped, run unfinished, ...
};

// Reads `file` line by line; a line that is not JSON (a write cut short by a kill) is skipped with a
// note naming its number.
TrainingLog read_training_log(const std::filesystem::path& file);

// A model a run saved at a step: checkpoints/step_N (--save-at) or its checkpoint/.
struct SavedModel {
    long step = 0;
    std::filesystem::path model;
};

// One thing to report on: a run (with a log, and a model when one was saved) or a model.
struct ReportSource {
    std::string name;                  // as the page and tables show it (unique within a report)
    std::filesystem::path path;        // the run folder, model folder or file
    std::optional<TrainingLog> log;    // runs only
    std::filesystem::path model;       // what to load (a checkpoint folder or the model); empty: none
    std::vector<std::string> notes;    // what was missing or odd
    std::vector<SavedModel> saved;     // runs only: every saved model whose step is known, by step
};

// A sweep folder's own results table (results.csv), if any.
struct SweepTable {
    std::filesystem::path folder;
    Table table;
};

// The JSON of a `sinklab stream` run (lab/stream_run.h).
struct StreamResults {
    std::filesystem::path file;
    nlohmann::json json;
};

struct ReportSources {
    std::vector<ReportSource> sources;
    std::vector<SweepTable> sweeps;
    std::vector<StreamResults> streams;
    std::vector<std::string> notes;  // inputs that held nothing to report
};

// Classifies each path: a run folder, a sweep folder (its runs, in name order), a model folder or
// llama2.c file, the JSON of `sinklab stream`; a path that is none of these gets a note saying what it holds.
ReportSources find_report_sources(const std::vector<std::filesystem::path>& paths);

}  // namespace sinklab
