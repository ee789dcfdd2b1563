#include "lab/demo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/threads.h"
#include "model/checkpoint.h"
#include "lab/run_report.h"
#include "train/data.h"
#include "train/trainer.h"

namespace sinklab {

namespace fs = std::filesystem;

namespace {

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Seconds per optimizer step of `config` on this machine: the fastest of five timed steps (forward,
// backward; the AdamW update is a small share) after two warm-up steps. The fastest, because other
// work on a shared machine only ever slows a step down. The schedule's step count is set from it so
// that the cosine decay ends near the budget; max-minutes stops the run if the machine is busier.
double seconds_per_step(const TrainConfig& config) {
    Transformer model(config.model);
    model.init_weights(config.seed);
    Rng rng(config.seed);
    const int vocab = std::min(config.model.vocab_size, 256);
    std::vector<int32_t> tokens(static_cast<size_t>(config.batch) * config.seq_len), targets(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = static_cast<int32_t>(rng.next_u64() % vocab);
        targets[i] = static_cast<int32_t>(rng.next_u64() % vocab);
    }
    double fastest = std::numeric_limits<double>::infinity();
    for (int step = 0; step < 7; ++step) {
        const double start = now_seconds();
        model.zero_grad();
        model.forward(tokens.data(), targets.data(), config.batch, config.seq_len);
        model.backward();
        if (step >= 2) fastest = std::min(fastest, now_seconds() - start);
    }
    return fastest;
}

TrainConfig demo_config(const std::string& attention, const DemoOptions& o) {
    TrainConfig c;
    apply_settings(c, demo_train_settings(), "the demo's settings");
    if (!attention.empty()) apply_settings(c, {{"attention", attention}}, "the demo's settings");
    if (!o.data.empty()) c.data = o.data;
    return c;
}

// Sets the schedule and the wall-clock stop so that training plus the final evaluation over the whole
// validation split fit in the budget. The evaluation is costed like training tokens (forward only is
// cheaper, but on a shared machine it measured as slow), and steps get 90% of the rest: the periodic
// evaluations and checkpoints take the remainder.
void fit_budget(TrainConfig& c, const DemoOptions& o, double step_seconds, size_t validation_bytes) {
    const double tokens_per_step = static_cast<double>(c.batch) * c.seq_len;
    const double final_eval_seconds = validation_bytes / tokens_per_step * step_seconds;
    const double train_seconds = std::max(0.25 * o.minutes * 60.0, o.minutes * 60.0 - final_eval_seconds);
    c.steps = std::max(1L, static_cast<long>(0.9 * train_seconds / step_seconds));
    c.warmup = std::min(c.warmup, std::max(1L, c.steps / 10));
    // Every 50 steps (about 2% of the time): the budget may stop a run well before its planned steps
    // on a busy machine, and the Sink_1 curve still needs its points.
    c.eval_every = std::clamp(c.steps / 10, 1L, 50L);
    c.max_minutes = train_seconds / 60.0;
}

// Trains (or reuses, or resumes) the run in `dir`; returns a line saying what happened.
std::string train_demo_run(const TrainConfig& config, const fs::path& dir, const DemoOptions& o) {
    TrainOptions options;
    options.progress = o.progress;
    options.threads = o.threads;
    std::error_code ec;
    if (fs::exists(dir / "train_log.jsonl", ec)) {
        const TrainingLog log = read_training_log(dir / "train_log.jsonl");
        if (log.final_evaluation) return fmt::format("{}: a finished run, reused", dir.string());
        if (fs::exists(dir / "checkpoint" / "trainer_state.json", ec)) {
            const TrainResult r = Trainer::resume(dir, options)->run();
            return fmt::format("{}: resumed, {} steps", dir.string(), r.steps);
        }
    }
    Trainer trainer(config, dir, options);
    const TrainResult r = trainer.run();
    if (!r.diverged.empty()) return fmt::format("{}: diverged at step {}: {}", dir.string(), r.steps, r.diverged);
    return fmt::format("{}: {} steps, val loss {:.3f}", dir.string(), r.steps, r.final_val_loss);
}

std::string settings_text() {
    std::string text;
    for (const auto& [k, v] : demo_train_settings()) text += fmt::format("{}{}={}", text.empty() ? "" : " ", k, v);
    return text;
}

// What the demo in `o.out` was asked for. Its runs are reused (or resumed) only by a demo that asks
// for the same: otherwise the summary would report one budget and the models show another.
nlohmann::json demo_request(const DemoOptions& o) {
    const std::string data = o.data.empty() ? "" : fs::absolute(o.data).lexically_normal().string();
    return {{"minutes", o.minutes}, {"data", data}, {"settings", settings_text()}};
}

// The fields in which `r` differs from `other`, as the command line would give them; empty when none.
std::string describe_request(const nlohmann::json& r, const nlohmann::json& other) {
    std::string text;
    const auto add = [&](const std::string& part) { text += (text.empty() ? "" : ", ") + part; };
    if (r.at("minutes") != other.at("minutes")) add(fmt::format("--minutes {:g}", r.at("minutes").get<double>()));
    if (r.at("data") != other.at("data")) {
        const std::string data = r.at("data").get<std::string>();
        add(data.empty() ? "the default corpus" : "--data " + data);
    }
    if (r.at("settings") != other.at("settings")) add("training settings " + r.at("settings").get<std::string>());
    return text;
}

// Records the request in OUT/demo.json. A folder whose runs another demo (or `sinklab train`) made is
// refused before anything is trained or overwritten.
void claim_demo_folder(const DemoOptions& o, const std::vector<fs::path>& run_dirs) {
    const fs::path record = o.out / "demo.json";
    const nlohmann::json wanted = demo_request(o);
    std::error_code ec;
    const auto made_run =
        std::find_if(run_dirs.begin(), run_dirs.end(), [&](const fs::path& d) { return fs::exists(d, ec); });
    if (fs::exists(record, ec)) {
        const nlohmann::json held = read_json_file(record, "demo");
        const auto field = [&](const char* key) { return held.value(key, nlohmann::json()); };
        SINKLAB_CHECK(held.is_object() && held.size() == wanted.size() && field("minutes").is_number() &&
                          field("data").is_string() && field("settings").is_string(),
                      "demo", "{}: not a demo record (an object with minutes, data and settings); remove it, or pass "
                      "another --out", record.string());
        const std::string there = describe_request(held, wanted);
        if (there.empty()) return;
        SINKLAB_CHECK(made_run == run_dirs.end(), "demo",
                      "{} holds the demo of {}; this one asks for {}. Pass another --out, or remove {} to train again",
                      o.out.string(), there, describe_request(wanted, held), o.out.string());
    } else {
        SINKLAB_CHECK(made_run == run_dirs.end(), "demo",
                      "{} exists, but no {} says which demo made it. Pass another --out, or remove {} to train there",
                      made_run->string(), record.string(), made_run->string());
    }
    write_file_atomic(record, wanted.dump(2) + "\n");
}

}  // namespace

const std::map<std::string, std::string>& demo_train_settings() {
    // val-fraction 0.01: the final evaluation runs over the whole validation split, and 1% of the
    // default corpus (110 KB) keeps it to about a minute of the budget.
    static const std::map<std::string, std::string> settings = {
        {"preset", "tiny"}, {"d-model", "64"}, {"heads", "2"}, {"bos", "true"}, {"lr", "3e-3"}, {"wd", "0.5"},
        {"warmup", "30"}, {"eval-windows", "16"}, {"val-fraction", "0.01"},
    };
    return settings;
}

fs::path bundled_reference_model() {
    const fs::path model = fs::path(SINKLAB_MODELS_DIR) / "reference";
    std::error_code ec;
    return fs::exists(model / "checkpoint" / "model.safetensors", ec) ? model : fs::path();
}

DemoOutcome run_demo(const DemoOptions& o) {
    SINKLAB_CHECK(o.minutes > 0, "demo", "--minutes {}: the budget must be positive", o.minutes);
    set_threads(o.threads);
    const double start = now_seconds();
    std::error_code ec;
    fs::create_directories(o.out, ec);
    SINKLAB_CHECK(!ec, "demo", "{}: cannot create the folder: {}", o.out.string(), ec.message());

    const fs::path sink_run = o.out / "softmax", free_run = o.out / kSinkFreeDesign;
    const TrainConfig base = demo_config("", o);
    const ByteCorpus corpus =
        load_byte_corpus(base.data.empty() ? default_corpus_path() : fs::path(base.data), base.val_fraction);
    claim_demo_folder(o, {sink_run, free_run});
    const double step_seconds = seconds_per_step(base);
    for (const auto& [design, dir] : {std::pair<std::string, fs::path>{"", sink_run}, {kSinkFreeDesign, free_run}}) {
        TrainConfig config = demo_config(design, o);
        fit_budget(config, o, step_seconds, corpus.val.size());
        std::fprintf(stderr, "[demo] training %s (%s%s): %ld steps planned at %.2f s/step, stop after %.1f min, "
                     "then the final evaluation\n",
                     dir.c_str(), settings_text().c_str(), design.empty() ? "" : (" attention=" + design).c_str(),
                     config.steps, step_seconds, config.max_minutes);
        std::fprintf(stderr, "[demo] %s\n", train_demo_run(config, dir, o).c_str());
    }

    ReportOptions report;
    report.out = o.out / "report";
    report.title = fmt::format("sinklab demo: a model trained here for {:g} minutes with softmax attention, the same "
                               "with {} attention{}", o.minutes, kSinkFreeDesign,
                               o.reference.empty() ? "" : ", and the reference model trained long enough for a sink");
    report.reference = o.reference;
    report.progress = o.progress;
    // Natural probe text from the runs' own validation split: text neither model trained on.
    report.measure.natural_text.assign(corpus.val.begin(), corpus.val.end());
    report.measure.natural_source = fmt::format("the validation split (last {:g}) of the training text", base.val_fraction);
    std::vector<fs::path> inputs = {sink_run, free_run};
    if (!o.reference.empty()) inputs.push_back(o.reference);
    if (!o.pretrained.empty()) inputs.push_back(o.pretrained);
    std::fprintf(stderr, "[demo] probing and analysing %zu models, writing %s\n", inputs.size(), report.out.c_str());
    const ReportOutcome outcome = build_report(inputs, report);
    for (const std::string& note : outcome.notes) std::fprintf(stderr, "note: %s\n", note.c_str());

    DemoOutcome result{outcome.page, {}};
    result.summary.push_back(fmt::format("Two models trained {:g} min each on the same data, same settings ({}), the "
                                         "second with attention={}:",
                                         o.minutes, settings_text(), kSinkFreeDesign));
    for (const std::string& line : outcome.entry_summaries()) result.summary.push_back("  " + line);
    if (o.reference.empty()) result.summary.push_back("  no reference model (models/reference is missing)");
    if (o.pretrained.empty())
        result.summary.push_back("  no pretrained model probed (--pretrained none, or the bundled stories260K is "
                                 "missing)");
    for (const std::string& line : outcome.findings) result.summary.push_back(line);
    result.summary.push_back(fmt::format("Total {}; open {} in a browser (no network needed).",
                                         format_duration(now_seconds() - start), outcome.page.string()));
    return result;
}

}  // namespace sinklab
