// `sinklab demo`: train a model with a first-token sink and one without, probe and analyse both and
// a pretrained model, write the report. The phases are in src/lab/demo.h.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/threads_option.h"
#include "lab/demo.h"

namespace sinklab::cli {

namespace {

struct DemoArgs {
    double minutes = 8.0;
    std::string out = "runs/demo";
    std::string data;
    std::string pretrained = "auto";
    std::string reference = "auto";
    int threads = 0;
    bool quiet = false;
};

// `--pretrained auto`: the llama2.c stories260K model of this source tree, which the build names
// (SINKLAB_DEMO_PRETRAINED, CMakeLists.txt), when present; empty otherwise.
std::filesystem::path bundled_pretrained_model() {
    const std::filesystem::path model = SINKLAB_DEMO_PRETRAINED;
    std::error_code ec;
    return std::filesystem::exists(model, ec) ? model : std::filesystem::path();
}

void run_demo_command(const DemoArgs& a) {
    DemoOptions options;
    options.minutes = a.minutes;
    options.out = a.out;
    options.data = a.data;
    options.pretrained = a.pretrained == "auto"   ? bundled_pretrained_model()
                         : a.pretrained == "none" ? std::filesystem::path()
                                                  : std::filesystem::path(a.pretrained);
    options.reference = a.reference == "auto"   ? bundled_reference_model()
                        : a.reference == "none" ? std::filesystem::path()
                                                : std::filesystem::path(a.reference);
    options.threads = a.threads;
    options.progress = !a.quiet;
    const DemoOutcome outcome = run_demo(options);
    std::printf("report: %s\n", outcome.page.c_str());
    for (const std::string& line : outcome.summary) std::printf("%s\n", line.c_str());
}

}  // namespace

void add_demo_command(CLI::App& app) {
    auto a = std::make_shared<DemoArgs>();
    CLI::App* cmd = app.add_subcommand("demo",
        "The main job: trains the demo model (the settings most likely to grow a first-token sink,\n"
        "docs/experiments.md) and the same model with a sink-free attention design, each for --minutes, probes\n"
        "and analyses both beside the reference model (models/reference: the same model trained long enough to\n"
        "have a sink) and the pretrained stories260K model, and writes OUT/report/index.html.\n"
        "Takes about 2 x --minutes plus a minute or two.");
    cmd->add_option("--minutes", a->minutes, "training budget of each model, in minutes")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cmd->add_option("--out", a->out,
                    "demo folder: OUT/softmax, OUT/gated (runs), OUT/report, OUT/demo.json (what was asked for)")
        ->capture_default_str();
    cmd->add_option("--data", a->data, "training text file or folder (default: the default corpus)");
    cmd->add_option("--pretrained", a->pretrained,
                    "a model to probe beside them: auto (the stories260K model bundled with the source, when present), "
                    "none, or a path")
        ->capture_default_str();
    cmd->add_option("--reference", a->reference,
                    "a model with a sink to probe beside them: auto (models/reference when present), none, or a path")
        ->capture_default_str();
    add_threads_option(*cmd, a->threads);
    cmd->add_flag("--quiet", a->quiet, "no progress bars");
    cmd->callback([a] { run_demo_command(*a); });
}

}  // namespace sinklab::cli
