// `sinklab analyze`: the attention-sink analyses of src/analysis on any model the engine loads, or
// tracked across a training run's saved checkpoints. The work is lab/model_analysis.h's run_analysis;
// this file maps the flags onto it.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/threads_option.h"
#include "cli/probe_samples.h"
#include "core/files.h"
#include "lab/model_analysis.h"

namespace sinklab::cli {

namespace {

struct AnalyzeArgs {
    std::string model;
    SampleFlags sample;
    std::string analyses = "all";
    std::vector<double> thresholds;
    std::vector<std::string> checkpoints;
    std::string json;
    int threads = 0;
};

std::string known_analyses() {
    std::string out;
    for (const auto& name : analysis_names()) out += (out.empty() ? "" : ", ") + name;
    return out;
}

void run_analyze_command(const AnalyzeArgs& a) {
    AnalysisRequest request;
    request.model = a.model;
    request.checkpoints = a.checkpoints;
    request.input = InputSpec::parse(a.sample.input);
    request.bos = parse_bos_mode(a.sample.bos);
    request.seq_len = a.sample.seq_len;
    request.samples = a.sample.samples;
    request.seed = a.sample.seed;
    request.tokenizer = a.sample.tokenizer;
    request.analyses = parse_analyses(a.analyses);
    request.thresholds = a.thresholds;
    request.threads = a.threads;
    const nlohmann::json out = run_analysis(request, [](const std::string& text) {
        std::fputs(text.c_str(), stdout);
        std::fflush(stdout);
    });
    if (!a.json.empty()) write_file_atomic(a.json, out.dump(1) + "\n");
}

}  // namespace

void add_analyze_command(CLI::App& app) {
    auto a = std::make_shared<AnalyzeArgs>();
    CLI::App* cmd = app.add_subcommand("analyze",
        "Explain attention sinks: diffusion (powers of attention), spectral, topology, random-matrix, value-space\n"
        "and reference-frame analyses, each in a faithful (the authors' code) and a corrected variant.\n"
        "Definitions and JSON: docs/analysis.md.");
    cmd->add_option("--model", a->model, "model folder (sinklab or Hugging Face), training run, or llama2.c .bin "
                                         "(required unless --checkpoints)");
    add_sample_options(cmd, a->sample);
    cmd->add_option("--analyses", a->analyses, "all, or a comma-separated list of " + known_analyses())
        ->capture_default_str();
    cmd->add_option("--threshold", a->thresholds,
                    "binarisation thresholds of the spectral analysis, each in (0, 1) (default: the notebooks' lists)")
        ->delimiter(',');
    cmd->add_option("--checkpoints", a->checkpoints,
                    "model folders of one training run (e.g. RUN/checkpoints/step_*) to track the analyses across");
    cmd->add_option("--json", a->json, "write the aggregated results and the parameters to this file");
    add_threads_option(*cmd, a->threads);
    cmd->callback([a] { run_analyze_command(*a); });
}

}  // namespace sinklab::cli
