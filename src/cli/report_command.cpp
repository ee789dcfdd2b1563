// `sinklab report`: one self-contained HTML page (and its numbers as JSON and CSV) from training
// runs, sweep folders and models. The work is in src/lab; this file maps flags onto it.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/threads_option.h"
#include "core/error.h"
#include "core/text.h"
#include "core/threads.h"
#include "lab/run_report.h"

namespace sinklab::cli {

namespace {

struct ReportArgs {
    std::vector<std::string> inputs;
    std::string out = "report";
    std::string title = "Attention sinks";
    std::string probe_inputs = "natural,random,repeat";
    int seq_len = 64;
    int samples = 32;
    int analysis_samples = 4;
    int map_side = 320;
    int perturbations = 64;
    bool no_head_maps = false;
    float eps = 0.3f;
    uint64_t seed = 1234;
    std::string tokenizer;
    int threads = 0;
    bool quiet = false;
};

std::vector<InputKind> parse_input_kinds(const std::string& list) {
    std::vector<InputKind> kinds;
    for (const std::string& item : split_list(list)) {
        SINKLAB_CHECK(item == "natural" || item == "random" || item == "repeat", "report",
                      "--inputs: unknown input '{}'; valid: natural, random, repeat", item);
        kinds.push_back(InputSpec::parse(item).kind);
    }
    return kinds;
}

void run_report_command(const ReportArgs& a) {
    set_threads(a.threads);
    SINKLAB_CHECK(a.seq_len >= 2, "report", "--seq-len {}: need at least 2 tokens", a.seq_len);
    SINKLAB_CHECK(a.samples >= 1, "report", "--samples {}: need at least 1", a.samples);
    SINKLAB_CHECK(a.analysis_samples >= 0, "report", "--analysis-samples {}: must be >= 0", a.analysis_samples);
    SINKLAB_CHECK(a.map_side >= 64, "report", "--map-side {}: at least 64 pixels", a.map_side);
    check_sink_eps(a.eps);
    SINKLAB_CHECK(a.perturbations >= 0, "report", "--perturbations {}: must be >= 0", a.perturbations);
    ReportOptions options;
    options.out = a.out;
    options.title = a.title;
    options.progress = !a.quiet;
    options.measure.inputs = parse_input_kinds(a.probe_inputs);
    options.measure.seq_len = a.seq_len;
    options.measure.samples = a.samples;
    options.measure.analysis_samples = a.analysis_samples;
    options.measure.map_side = a.map_side;
    options.measure.head_maps = !a.no_head_maps;
    options.measure.perturbations = a.perturbations;
    options.measure.eps = a.eps;
    options.measure.seed = a.seed;
    options.measure.tokenizer = a.tokenizer;
    std::vector<std::filesystem::path> inputs(a.inputs.begin(), a.inputs.end());
    const ReportOutcome outcome = build_report(inputs, options);
    for (const std::string& note : outcome.notes) std::fprintf(stderr, "note: %s\n", note.c_str());
    for (const std::string& line : outcome.entry_summaries()) std::printf("%s\n", line.c_str());
    std::printf("report: %s\n", outcome.page.c_str());
    if (!outcome.has_content())
        fail("report", "nothing to report in {} (the page lists what was found)", fmt::join(a.inputs, ", "));
}

}  // namespace

void add_report_command(CLI::App& app) {
    auto a = std::make_shared<ReportArgs>();
    CLI::App* cmd = app.add_subcommand("report",
        "One self-contained HTML page (OUT/index.html, no network) with the numbers beside it (report.json,\n"
        "runs.csv) from training runs, sweep folders (one row per run) and models: loss and Sink_1 during\n"
        "training, alpha_1 and Sink_1 per layer, attention heatmaps, the power sink mass s_k against uniform\n"
        "attention, massive activations, and a comparison table. docs/report.md lists the figures.");
    cmd->add_option("inputs", a->inputs, "training runs, sweep folders, model folders or llama2.c .bin files")
        ->required();
    cmd->add_option("--out", a->out, "report folder (created)")->capture_default_str();
    cmd->add_option("--title", a->title, "the page's title")->capture_default_str();
    cmd->add_option("--inputs", a->probe_inputs, "probe inputs: a comma-separated list of natural, random, repeat")
        ->capture_default_str();
    cmd->add_option("--seq-len", a->seq_len, "tokens per probe sample T (maps of long sequences are pooled)")
        ->capture_default_str();
    cmd->add_option("--samples", a->samples, "probe samples per input")->capture_default_str();
    cmd->add_option("--analysis-samples", a->analysis_samples,
                    "samples whose attention powers s_k are analysed (0: no maps or powers)")
        ->capture_default_str();
    cmd->add_option("--map-side", a->map_side, "longest side of a head-averaged map in pixels")->capture_default_str();
    cmd->add_flag("--no-head-maps", a->no_head_maps, "only head-averaged maps (smaller page)");
    cmd->add_option("--perturbations", a->perturbations,
                    "random substitutions of the over-mixing test per model, with and without the sink "
                    "(docs/perturb.md; 0: none)")
        ->capture_default_str();
    cmd->add_option("--eps", a->eps, "threshold of Sink_1 (alpha_1 > eps)")->capture_default_str();
    cmd->add_option("--seed", a->seed, "seed of the random input")->capture_default_str();
    cmd->add_option("--tokenizer", a->tokenizer,
                    "tokenizer for natural input instead of each model's own; its vocabulary must fit the models'");
    add_threads_option(*cmd, a->threads);
    cmd->add_flag("--quiet", a->quiet, "no progress bar");
    cmd->callback([a] { run_report_command(*a); });
}

}  // namespace sinklab::cli
