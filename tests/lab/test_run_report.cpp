// The report builder end to end on tiny runs trained here: what it finds in runs, sweeps, models and
// bad input (empty and foreign folders, interrupted runs, half-written log lines), the files it
// writes, and the page in headless Chromium (every image decoded, no console message, a screenshot).
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../report/headless_chromium.h"
#include "core/files.h"
#include "lab/run_report.h"
#include "train/trainer.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;

fs::path scratch_dir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const fs::path dir = fs::path(SINKLAB_BINARY_DIR) / "test-scratch" / "lab" /
                         (std::string(info->test_suite_name()) + "." + info->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

std::string corpus_text() {
    std::string text;
    for (int i = 0; i < 600; ++i)
        text += fmt::format("Line {}: the quick brown fox jumps over the lazy dog, {}.\n", i, (i * 7919) % 1000);
    return text;
}

// A 2-layer model trained for 6 steps (evaluations and checkpoints at steps 3 and 6, saved models
// at steps 0 and 3 besides the final checkpoint/).
void train_tiny_run(const fs::path& corpus, const fs::path& out, const std::string& attention = "softmax") {
    TrainConfig c;
    apply_settings(c,
                   {{"data", corpus.string()}, {"steps", "6"}, {"d-model", "32"}, {"layers", "2"}, {"heads", "2"},
                    {"seq-len", "32"}, {"batch", "4"}, {"warmup", "2"}, {"eval-every", "3"}, {"eval-windows", "4"},
                    {"bos", "true"}, {"save-at", "0,3"}, {"attention", attention}},
                   "test");
    TrainOptions options;
    options.progress = false;
    Trainer(c, out, options).run();
}

ReportOptions tiny_report(const fs::path& out) {
    ReportOptions o;
    o.out = out;
    o.progress = false;
    o.measure.seq_len = 32;
    o.measure.samples = 4;
    o.measure.analysis_samples = 2;
    o.measure.natural_text = corpus_text();
    o.measure.natural_source = "the test corpus";
    return o;
}

bool any_note_contains(const std::vector<std::string>& notes, const std::string& text) {
    for (const auto& n : notes)
        if (n.find(text) != std::string::npos) return true;
    return false;
}

std::string all_notes(const std::vector<std::string>& notes) {
    std::string s;
    for (const auto& n : notes) s += n + "\n";
    return s;
}

class RunReport : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        // One folder per process: ctest runs each test of this suite in its own process, side by side.
        root_ = fs::path(SINKLAB_BINARY_DIR) / "test-scratch" / "lab" / fmt::format("runs-{}", ::getpid());
        fs::remove_all(root_);
        fs::create_directories(root_ / "sweep");
        write_file_atomic(root_ / "corpus.txt", corpus_text());
        train_tiny_run(root_ / "corpus.txt", root_ / "sweep" / "softmax");
        train_tiny_run(root_ / "corpus.txt", root_ / "sweep" / "gated", "gated");
    }
    static void TearDownTestSuite() { fs::remove_all(root_); }
    static fs::path run() { return root_ / "sweep" / "softmax"; }
    static inline fs::path root_;
};

TEST_F(RunReport, WritesPageJsonAndCsvForARun) {
    const fs::path out = scratch_dir();
    const ReportOutcome r = build_report({run()}, tiny_report(out));
    ASSERT_TRUE(r.has_content()) << all_notes(r.notes);
    ASSERT_EQ(r.entries.size(), 1u);
    const ReportEntry& e = r.entries[0];
    ASSERT_TRUE(e.measured) << all_notes(r.notes);
    EXPECT_EQ(e.measured->probes.size(), 3u) << all_notes(r.notes);
    ASSERT_TRUE(e.measured->diffusion);
    EXPECT_EQ(e.measured->diffusion->mass.size(), 2u);
    ASSERT_TRUE(e.measured->maps);
    EXPECT_EQ(e.measured->maps->layers.size(), 2u);
    EXPECT_EQ(e.measured->maps->layers[0].heads.size(), 2u);
    // the graph analyses of the same samples: one value per layer, each in its range
    ASSERT_TRUE(e.measured->graph);
    const GraphAnalyses& g = *e.measured->graph;
    EXPECT_EQ(g.samples, e.measured->diffusion->samples);
    ASSERT_EQ(g.fiedler.size(), 2u);
    ASSERT_TRUE(g.frames);
    for (int l = 0; l < 2; ++l) {
        EXPECT_GE(g.fiedler[l], -1e-9) << l;  // a Laplacian's eigenvalues are >= 0
        EXPECT_GE(g.h0_bars[l], 1.0) << l;    // the complex has at least one component
        EXPECT_GE(g.mp_ks[l], 0.0) << l;
        EXPECT_LE(g.mp_ks[l], 1.0) << l;      // a distance between distribution functions
        EXPECT_GT(g.mixing_rate[l], 0.0) << l;
        EXPECT_LE(g.mixing_rate[l], 1.0) << l;
    }
    // the KS distance to Marchenko-Pastur of every saved model: steps 0, 3 and the final 6
    ASSERT_TRUE(e.spectrum);
    EXPECT_EQ(e.spectrum->steps, (std::vector<double>{0, 3, 6}));
    ASSERT_EQ(e.spectrum->mp_ks.size(), 2u);
    for (int l = 0; l < 2; ++l) {
        ASSERT_EQ(e.spectrum->mp_ks[l].size(), 3u) << l;
        for (double ks : e.spectrum->mp_ks[l]) {
            EXPECT_GE(ks, 0.0) << l;
            EXPECT_LE(ks, 1.0) << l;
        }
        // the final model's point is the graph analyses' own value (same samples, same model)
        EXPECT_NEAR(e.spectrum->mp_ks[l].back(), g.mp_ks[l], 1e-12) << l;
    }
    // which measure_mp_ks, measuring the saved models, reproduces on that model
    const std::vector<double> again = measure_mp_ks(e.source.model, tiny_report(out).measure);
    ASSERT_EQ(again.size(), 2u);
    for (int l = 0; l < 2; ++l) EXPECT_NEAR(again[l], g.mp_ks[l], 1e-12) << l;
    ASSERT_TRUE(e.source.log);
    EXPECT_EQ(e.source.log->steps.size(), 6u);
    EXPECT_TRUE(e.source.log->final_evaluation);
    EXPECT_TRUE(r.notes.empty()) << all_notes(r.notes);

    const std::string html = read_text_file(out / "index.html", "test");
    for (const char* text : {"Loss during training", "Sink_1 during training", "alpha_1 per layer", "Sink_1 per layer",
                             "Massive activations", "Power sink mass", "uniform causal", "Head-averaged attention",
                             "No-op reading of each head", "Over-mixing: change of the residual stream",
                             "Graph analyses of the head-averaged attention", "Fiedler value",
                             "Attention spectrum against Marchenko-Pastur over training"})
        EXPECT_NE(html.find(text), std::string::npos) << text;
    const auto report = nlohmann::json::parse(read_text_file(out / "report.json", "test"));
    EXPECT_EQ(report["schema"], "sinklab.report/1");
    EXPECT_EQ(report["entries"][0]["probes"]["natural"]["layers"], 2);
    EXPECT_EQ(report["entries"][0]["power_sink_mass"]["mass"].size(), 2u);
    EXPECT_EQ(report["entries"][0]["graph"]["fiedler"].size(), 2u);
    EXPECT_EQ(report["entries"][0]["graph"]["frames"]["layers"].size(), 2u);
    EXPECT_EQ(report["entries"][0]["spectrum_over_training"]["steps"].size(), 3u);
    EXPECT_EQ(report["entries"][0]["spectrum_over_training"]["mp_ks"].size(), 2u);
    // what the sink is for: a no-op record per head, the over-mixing test with the sink and without it
    // (mask-first:1, and drop-bos: the run puts BOS first)
    const auto& figures = report["entries"][0]["figures"];
    EXPECT_EQ(figures["no_op"].size(), 2u * 2u);
    EXPECT_TRUE(figures["no_op"][0].contains("sink_share") && figures["no_op"][0].contains("output_ratio"));
    const auto& mixing = report["entries"][0]["over_mixing"];
    ASSERT_EQ(mixing["runs"].size(), 3u);
    EXPECT_EQ(mixing["runs"][0]["sink"], "with sink");
    EXPECT_EQ(mixing["runs"][1]["sink"], "mask-first:1");
    EXPECT_EQ(mixing["runs"][2]["sink"], "drop-bos");
    EXPECT_EQ(mixing["runs"][0]["perturbations"], 64);
    EXPECT_EQ(figures["over_mixing_by_layer"].size(), 3u * 2u);  // condition x layer
    EXPECT_GT(figures["over_mixing_by_layer"][1]["mean"].get<double>(), 0.0);
    EXPECT_EQ(figures["over_mixing_by_distance"].size(), 2u * (31u + 31u + 30u));  // layer x distance; drop-bos: T = 31
    const std::string csv = read_text_file(out / "runs.csv", "test");
    EXPECT_EQ(csv.rfind("run,design,params,layers,heads,steps,val_loss,sink1_natural,sink1_random,sink1_repeat", 0), 0u)
        << csv;
    EXPECT_NE(csv.find("\nsoftmax,softmax,"), std::string::npos) << csv;
}

TEST_F(RunReport, ASweepFolderGivesOneRowPerRun) {
    const fs::path out = scratch_dir();
    ReportOptions o = tiny_report(out);
    o.measure.inputs = {InputKind::natural};
    o.measure.analysis_samples = 0;
    const ReportOutcome r = build_report({root_ / "sweep"}, o);
    ASSERT_EQ(r.entries.size(), 2u) << all_notes(r.notes);
    EXPECT_EQ(r.entries[0].source.name, "sweep/gated");
    EXPECT_EQ(r.entries[1].source.name, "sweep/softmax");
    EXPECT_EQ(r.comparison.rows().size(), 2u);
    EXPECT_EQ(r.comparison.rows()[0][1], "gated");
}

TEST_F(RunReport, EmptyAndForeignFoldersSayWhatTheyHold) {
    const fs::path out = scratch_dir();
    fs::create_directories(out / "empty");
    fs::create_directories(out / "foreign");
    write_file_atomic(out / "foreign" / "notes.txt", "not a run\n");
    const ReportOutcome r = build_report({out / "empty", out / "foreign", out / "missing"}, tiny_report(out / "report"));
    EXPECT_FALSE(r.has_content());
    EXPECT_TRUE(any_note_contains(r.notes, "empty: an empty folder")) << all_notes(r.notes);
    EXPECT_TRUE(any_note_contains(r.notes, "foreign: holds no training run")) << all_notes(r.notes);
    EXPECT_TRUE(any_note_contains(r.notes, "missing: no such file or folder")) << all_notes(r.notes);
    const std::string html = read_text_file(out / "report" / "index.html", "test");
    EXPECT_NE(html.find("Nothing to report"), std::string::npos);
    EXPECT_NE(html.find("an empty folder"), std::string::npos);
}

TEST_F(RunReport, InterruptedRunsRenderWhatTheyHave) {
    const fs::path out = scratch_dir();
    // No checkpoint/, a kept snapshot, and a last log line cut short by a kill.
    fs::copy(run(), out / "snapshot_only", fs::copy_options::recursive);
    fs::remove_all(out / "snapshot_only" / "checkpoint");
    {
        std::ofstream log(out / "snapshot_only" / "train_log.jsonl", std::ios::app);
        log << "{\"step\": 7, \"loss\": 2.";
    }
    // Only a log (killed before its first checkpoint), without a final evaluation.
    fs::create_directories(out / "log_only");
    const std::string log = read_text_file(run() / "train_log.jsonl", "test");
    write_file_atomic(out / "log_only" / "train_log.jsonl", log.substr(0, log.find("\"final\"")));

    const ReportOutcome r = build_report({out / "snapshot_only", out / "log_only"}, tiny_report(out / "report"));
    ASSERT_EQ(r.entries.size(), 2u) << all_notes(r.notes);
    EXPECT_TRUE(r.entries[0].measured) << all_notes(r.notes);
    EXPECT_EQ(r.entries[0].source.model.filename(), "step_000003");
    EXPECT_TRUE(any_note_contains(r.notes, "probing the latest saved model, step_000003")) << all_notes(r.notes);
    EXPECT_TRUE(any_note_contains(r.notes, "is not JSON")) << all_notes(r.notes);
    EXPECT_FALSE(r.entries[1].measured);
    ASSERT_TRUE(r.entries[1].source.log);
    EXPECT_GE(r.entries[1].source.log->steps.size(), 5u);
    EXPECT_TRUE(any_note_contains(r.notes, "no checkpoint/ holding a model")) << all_notes(r.notes);
    EXPECT_TRUE(any_note_contains(r.notes, "no final evaluation")) << all_notes(r.notes);
    const std::string html = read_text_file(out / "report" / "index.html", "test");
    EXPECT_NE(html.find("Loss during training"), std::string::npos);
}

// A small report (a sweep folder of two 6-step runs) in Debian's Chromium driven by playwright-core
// (tests/report/browser_check.mjs), the network cut: every Vega view has marks, hovering a point shows
// its tooltip, no console message, no request leaves the page. The screenshot stays in the scratch folder.
TEST_F(RunReport, HeadlessChromiumDrawsEveryFigureWithoutNetwork) {
    if (!test::have_chromium()) GTEST_SKIP() << "/usr/bin/chromium not installed (scripts/setup.sh installs it)";
    const fs::path out = scratch_dir();
    const ReportOutcome r = build_report({root_ / "sweep"}, tiny_report(out));
    ASSERT_EQ(r.entries.size(), 2u);
    const test::BrowserCheck check = test::browser_check(out / "index.html", out / "screenshot.png");
    ASSERT_TRUE(check.ran) << check.output;
    EXPECT_TRUE(check.result.value("ok", false)) << check.output;
    // per model: 7 charts (alpha_1, Sink_1, Sink_k, massive, drain, geometry, s_k), the no-op scatter, the
    // over-mixing bars and its 3 heatmaps (with the sink, mask-first:1, drop-bos), the spectrum over the
    // saved models, 2 layer maps, 2 x 2 head maps; 3 training charts
    EXPECT_EQ(check.result.value("figures", -1), 3 + 2 * (7 + 1 + 1 + 3 + 1 + 2 + 2 * 2)) << check.output;
    EXPECT_NE(check.result.value("tooltip", std::string()), "") << check.output;
    EXPECT_TRUE(fs::exists(out / "screenshot.png"));
    std::printf("screenshot: %s\n", (out / "screenshot.png").c_str());
}

// The summaries are computed from the measurements: a run whose alpha_1 stays below eps in every head
// says that no sink formed, and is pointed to the reference model, whose sink heads are named.
TEST_F(RunReport, SummariesSayWhetherASinkFormedAndWhere) {
    const fs::path out = scratch_dir();
    const fs::path reference = fs::path(SINKLAB_SOURCE_DIR) / "models" / "reference";
    ReportOptions o = tiny_report(out);
    o.measure.samples = 16;  // T = 32: the tiny runs have 32 positions
    o.measure.analysis_samples = 0;
    o.measure.inputs = {InputKind::natural};
    std::vector<std::string> notes;
    auto [text, source] = default_probe_text(notes);
    if (!text.empty()) o.measure.natural_text = std::move(text);  // the reference model's own domain
    o.reference = reference;
    const ReportOutcome r = build_report({run(), reference}, o);
    ASSERT_EQ(r.entries.size(), 2u) << all_notes(r.notes);
    const std::vector<std::string> lines = r.entry_summaries();
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NE(lines[0].find("no sink formed: no head's alpha_1 exceeds 0.3 (Sink_1 = 0%)"), std::string::npos) << lines[0];
    // at T = 32 both heads of layer 0 cross 0.3 (at T = 64 only head 0: models/reference/PROVENANCE.md)
    EXPECT_NE(lines[1].find("a first-token sink in 2 of 8 heads: layer 0 head 0 (0."), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find(") and layer 0 head 1 (0."), std::string::npos) << lines[1];
    ASSERT_EQ(r.findings.size(), 1u);
    EXPECT_NE(r.findings[0].find("softmax formed no sink in its 6 training steps"), std::string::npos) << r.findings[0];
    EXPECT_NE(r.findings[0].find("The reference model reference, trained 4000 steps, has a first-token sink in 2 of 8 "
                                 "heads: layer 0 head 0"),
              std::string::npos)
        << r.findings[0];
    // the reference run ships its saved models (steps 0, 250, 1000, 2000) and its final checkpoint/,
    // whose step comes from the log (no trainer_state.json): five saved models for the spectrum over
    // training (not measured here: analysis_samples 0)
    std::vector<long> saved;
    for (const SavedModel& m : r.entries[1].source.saved) saved.push_back(m.step);
    EXPECT_EQ(saved, (std::vector<long>{0, 250, 1000, 2000, 4000}));
    EXPECT_FALSE(r.entries[1].spectrum);
    const std::string html = read_text_file(out / "index.html", "test");
    EXPECT_NE(html.find("softmax formed no sink in its 6 training steps"), std::string::npos);
}

}  // namespace
}  // namespace sinklab
