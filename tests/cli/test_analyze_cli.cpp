// End-to-end tests of `sinklab analyze`: JSON shape, the closed-form baseline, bad input.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "analysis/diffusion.h"
#include "analysis/frames.h"
#include "attention/attention_spec.h"
#include "metrics/proxy.h"
#include "cli/cli_test_support.h"
#include "model/transformer.h"
#include "probe/probe_input.h"
#include "probe/probe_model.h"

namespace sinklab::testing {
namespace {

namespace fs = std::filesystem;

fs::path make_corpus(const fs::path& dir) {
    std::ofstream out(dir / "corpus.txt");
    for (int i = 0; i < 200; ++i) out << "Line " << i << ": the quick brown fox jumps over the lazy dog.\n";
    return dir / "corpus.txt";
}

fs::path train_tiny(const fs::path& dir, const std::string& name, int layers) {
    const fs::path data = dir / "corpus.txt";
    if (!fs::exists(data)) make_corpus(dir);
    auto r = run_sinklab("train --data " + data.string() + " --d-model 32 --layers " + std::to_string(layers) +
                         " --heads 2 --seq-len 32 --steps 0 --threads 2 --quiet --out " + (dir / name).string());
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return dir / name / "checkpoint";
}

struct Fixture {
    fs::path dir = fresh_temp_dir("analyze");
    fs::path model = train_tiny(dir, "run", 2);
};
Fixture& fixture() {
    static Fixture f;
    return f;
}

std::string base(const fs::path& model) {
    return "analyze --model " + model.string() + " --input random --samples 4 --seq-len 16 --threads 2";
}

TEST(AnalyzeCli, JsonHasDiffusionPowersLabelsAndExactExcess) {
    const Fixture& f = fixture();
    const fs::path json_path = f.dir / "analyze.json";
    auto r = run_sinklab(base(f.model) + " --json " + json_path.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("frame (corrected"), std::string::npos) << r.output;
    const std::string text = read_file(json_path);
    auto j = nlohmann::json::parse(text);
    EXPECT_NE(text.find("\"faithful\""), std::string::npos);
    EXPECT_NE(text.find("\"corrected\""), std::string::npos);
    for (const char* name : {"diffusion", "spectral", "topology", "rmt", "value"})
        EXPECT_TRUE(j["analyses"].contains(name)) << name;
    EXPECT_TRUE(j.contains("frames"));
    const auto& layers = j["analyses"]["diffusion"]["layers"];
    ASSERT_EQ(layers.size(), 2u);
    for (const auto& layer : layers) {
        const auto& pm = layer["faithful"]["power_mass"];
        ASSERT_EQ(pm.size(), 5u) << layer.dump();
        const int ks[] = {1, 2, 4, 8, 16};
        for (size_t i = 0; i < 5; ++i) {
            EXPECT_EQ(pm[i]["k"].get<int>(), ks[i]);
            const double mass = pm[i]["mass"]["mean"].get<double>();
            const double excess = pm[i]["excess"]["mean"].get<double>();
            const double baseline = analysis::uniform_power_mass(16, ks[i]);
            EXPECT_NEAR(excess, mass - baseline, 1e-9) << pm[i].dump();
        }
        EXPECT_EQ(layer["corrected"]["power_mass"].size(), 5u);
    }
}

// The command streams samples and averages the per-sample frame votes; classify_frames over all
// samples at once (maps captured here independently) must give the same labels and evidence.
struct MeanAttention : TensorObserver {
    analysis::AttentionSample sample;
    explicit MeanAttention(int L) { sample.attention.resize(L); }
    void observe(Tap tap, int layer, const float* data, const Shape& shape) override {
        if (tap != Tap::attn_weights) return;
        const int NH = static_cast<int>(shape[1]), T = static_cast<int>(shape[2]);
        Eigen::MatrixXd m = Eigen::MatrixXd::Zero(T, T);
        for (int h = 0; h < NH; ++h)
            for (int i = 0; i < T; ++i)
                for (int j = 0; j < T; ++j) m(i, j) += data[(static_cast<size_t>(h) * T + i) * T + j] / NH;
        sample.attention[layer] = m;
    }
};

// Head-averaged attention of every sample, captured here from the same model and inputs as the
// command's (random ids, seed 7, no BOS).
std::vector<analysis::AttentionSample> capture_maps(const fs::path& model, int T, int N) {
    ProbeModel pm = load_probe_model(model);
    const int L = pm.model->config().n_layers;
    const ProbeSamples samples = random_samples(pm.model->config().vocab_size, T, N, std::nullopt, 7);
    std::vector<analysis::AttentionSample> all;
    for (int n = 0; n < samples.N; ++n) {
        MeanAttention obs(L);
        ForwardOptions fo;
        fo.training = false;
        fo.observer = &obs;
        fo.logits = false;
        pm.model->forward(samples.tokens.data() + n * samples.T, nullptr, 1, samples.T, fo);
        all.push_back(obs.sample);
    }
    return all;
}

// Pappone's prediction, measured: every s_k, its closed-form baseline and the excess of the
// command's JSON against tests/oracle/analyze_diffusion_check.py (numpy, float64) on the same maps.
void expect_diffusion_matches_numpy(const std::vector<analysis::AttentionSample>& all, const fs::path& json_path,
                                    const fs::path& dir) {
    nlohmann::json maps = {{"maps", nlohmann::json::array()}};
    for (const auto& s : all) {
        nlohmann::json layers = nlohmann::json::array();
        for (const auto& a : s.attention) {
            nlohmann::json rows = nlohmann::json::array();
            for (int i = 0; i < a.rows(); ++i) {
                std::vector<double> row(a.cols());
                for (int c = 0; c < a.cols(); ++c) row[c] = a(i, c);
                rows.push_back(row);
            }
            layers.push_back(rows);
        }
        maps["maps"].push_back(layers);
    }
    const fs::path maps_path = dir / (json_path.stem().string() + "-maps.json");
    std::ofstream(maps_path) << maps.dump();
    const std::string script = std::string(SINKLAB_SOURCE_DIR) + "/tests/oracle/analyze_diffusion_check.py";
    const CommandResult check =
        test::run_command(std::string(test::kPython) + " " + script + " " + maps_path.string() + " " + json_path.string());
    EXPECT_EQ(check.exit_code, 0) << check.output;
    EXPECT_EQ(check.output, "ok\n");
}

TEST(AnalyzeCli, StreamedFramesAndDiffusionMatchTheLibraryOnAllSamples) {
    const Fixture& f = fixture();
    const fs::path json_path = f.dir / "frames.json";
    auto r = run_sinklab(base(f.model) + " --bos off --seed 7 --analyses frames,diffusion --json " + json_path.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto j = nlohmann::json::parse(read_file(json_path));

    const std::vector<analysis::AttentionSample> all = capture_maps(f.model, 16, 4);
    const int L = static_cast<int>(all[0].attention.size());
    const analysis::FrameResult expected = analysis::classify_frames(all);
    EXPECT_EQ(j["frames"]["frame"], analysis::frame_name(expected.frame));
    ASSERT_EQ(j["frames"]["layers"].size(), expected.layers.size());
    for (size_t l = 0; l < expected.layers.size(); ++l) {
        const auto& got = j["frames"]["layers"][l];
        EXPECT_EQ(got["frame"], analysis::frame_name(expected.layers[l].frame));
        EXPECT_NEAR(got["column0_share"].get<double>(), expected.layers[l].column0_share, 1e-9);
        EXPECT_NEAR(got["in_degree_gini"].get<double>(), expected.layers[l].in_degree_gini, 1e-9);
        EXPECT_NEAR(got["reference_count"].get<double>(), expected.layers[l].reference_count, 1e-9);
    }
    // s_1 from the maps directly: the mean over rows of A_i0, averaged over samples.
    for (int l = 0; l < L; ++l) {
        double s1 = 0.0;
        for (const auto& s : all) s1 += s.attention[l].col(0).mean() / all.size();
        EXPECT_NEAR(j["analyses"]["diffusion"]["layers"][l]["faithful"]["power_mass"][0]["mass"]["mean"].get<double>(),
                    s1, 1e-6);
    }
    expect_diffusion_matches_numpy(all, json_path, f.dir);
}

// The same check on a model that trained (its attention is no longer near uniform) and on the
// pretrained stories260K (llama2.c), whose printed table must carry s_k and its excess per layer.
TEST(AnalyzeCli, DiffusionOfATrainedModelMatchesNumpy) {
    const Fixture& f = fixture();
    auto t = run_sinklab("train --data " + (f.dir / "corpus.txt").string() +
                         " --d-model 32 --layers 2 --heads 2 --seq-len 32 --batch 4 --steps 40 --lr 3e-3 --warmup 5"
                         " --eval-every 40 --eval-windows 2 --threads 2 --quiet --out " + (f.dir / "trained").string());
    ASSERT_EQ(t.exit_code, 0) << t.output;
    const fs::path model = f.dir / "trained" / "checkpoint";
    const fs::path json_path = f.dir / "trained.json";
    auto r = run_sinklab(base(model) + " --bos off --seed 7 --analyses diffusion --json " + json_path.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    expect_diffusion_matches_numpy(capture_maps(model, 16, 4), json_path, f.dir);
}

TEST(AnalyzeCli, DiffusionOfStories260KMatchesNumpy) {
    const Fixture& f = fixture();
    const fs::path model = fs::path(SINKLAB_SOURCE_DIR) / "tests" / "fixtures" / "llama2c" / "stories260K.bin";
    const fs::path json_path = f.dir / "stories.json";
    auto r = run_sinklab(base(model) + " --bos off --seed 7 --analyses diffusion --json " + json_path.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("s_1"), std::string::npos) << r.output;
    const auto j = nlohmann::json::parse(read_file(json_path));
    EXPECT_EQ(j["analyses"]["diffusion"]["layers"].size(), 5u);
    expect_diffusion_matches_numpy(capture_maps(model, 16, 4), json_path, f.dir);
}

// A sink_token model prepends its learned token: the graphs have T + 1 nodes, node 0 the sink
// token, and the closed-form baselines are those of T + 1 nodes.
TEST(AnalyzeCli, SinkTokenModelsAnalyseTPlusOneNodes) {
    const Fixture& f = fixture();
    auto t = run_sinklab("train --data " + (f.dir / "corpus.txt").string() +
                         " --d-model 32 --layers 2 --heads 2 --seq-len 32 --batch 4 --steps 20 --lr 3e-3 --warmup 5"
                         " --attention sink_token --eval-every 20 --eval-windows 2 --threads 2 --quiet --out " +
                         (f.dir / "sink_token").string());
    ASSERT_EQ(t.exit_code, 0) << t.output;
    const fs::path model = f.dir / "sink_token" / "checkpoint";
    const fs::path json_path = f.dir / "sink_token.json";
    auto r = run_sinklab(base(model) + " --bos off --seed 7 --analyses diffusion --json " + json_path.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("T + 1 = 17 nodes, node 0 is the sink token"), std::string::npos) << r.output;
    const auto j = nlohmann::json::parse(read_file(json_path));
    EXPECT_EQ(j["graph_nodes"], 17);
    EXPECT_EQ(j["sink_token"], true);
    for (const auto& layer : j["analyses"]["diffusion"]["layers"])
        for (const auto& pm : layer["faithful"]["power_mass"])
            EXPECT_NEAR(pm["baseline"]["mean"].get<double>(), analysis::uniform_power_mass(17, pm["k"].get<int>()),
                        1e-12)
                << pm.dump();
    const auto maps = capture_maps(model, 16, 4);
    ASSERT_EQ(maps[0].attention[0].rows(), 17);
    expect_diffusion_matches_numpy(maps, json_path, f.dir);
}

// No design is refused: slot designs become graphs of T + 1 nodes (the slot is node 0), designs whose
// rows do not sum to 1 are read through the probe's proxy with the raw row sums beside. For slot
// designs node 0's column is the probe's alpha_* (mean over heads) on the same samples.
TEST(AnalyzeCli, EveryDesignIsAnalysed) {
    const Fixture& f = fixture();
    for (const std::string& design : AttentionSpec::known_names()) {
        SCOPED_TRACE(design);
        const fs::path run = f.dir / ("design-" + design);
        auto t = run_sinklab("train --data " + (f.dir / "corpus.txt").string() +
                             " --d-model 16 --layers 2 --heads 2 --seq-len 16 --batch 2 --steps 2 --warmup 1"
                             " --eval-every 2 --eval-windows 1 --attention " + design +
                             " --threads 2 --quiet --out " + run.string());
        ASSERT_EQ(t.exit_code, 0) << t.output;
        const fs::path json_path = f.dir / ("design-" + design + ".json");
        auto r = run_sinklab("analyze --model " + (run / "checkpoint").string() +
                             " --input random --samples 2 --seq-len 12 --threads 2 --json " + json_path.string());
        ASSERT_EQ(r.exit_code, 0) << r.output;
        const auto j = nlohmann::json::parse(read_file(json_path));
        const AttentionSpec spec = AttentionSpec::parse(design);
        const bool extra_node = spec.has_slot() || spec.uses_sink_token();
        EXPECT_EQ(j["graph"]["graph_nodes"], extra_node ? 13 : 12);
        EXPECT_EQ(j["graph"]["node0"], spec.has_slot() ? "slot" : spec.uses_sink_token() ? "sink_token" : "token 1");
        const bool proxied = sink_metric_proxy(spec) != ProxyKind::none || spec.kind == AttentionKind::softpick;
        EXPECT_EQ(j["graph"]["proxy"] != "none", proxied);
        if (proxied) {
            EXPECT_NE(r.output.find("raw row sums"), std::string::npos) << r.output;
        }
        ASSERT_EQ(j["graph"]["raw_row_sums"].size(), 2u);
        for (const char* name : {"diffusion", "spectral", "topology", "rmt", "value"})
            EXPECT_EQ(j["analyses"][name]["layers"].size(), 2u) << name;
        if (!spec.has_slot()) continue;
        const fs::path probe_json = f.dir / ("probe-" + design + ".json");
        auto p = run_sinklab("probe --model " + (run / "checkpoint").string() +
                             " --input random --samples 2 --seq-len 12 --threads 2 --quiet --json " + probe_json.string());
        ASSERT_EQ(p.exit_code, 0) << p.output;
        const auto probe = nlohmann::json::parse(read_file(probe_json));
        for (int l = 0; l < 2; ++l) {
            double alpha_star = 0.0;
            for (const auto& a : probe["alpha_star"][l]) alpha_star += a.get<double>() / probe["alpha_star"][l].size();
            EXPECT_NEAR(j["graph"]["node0_column"][l].get<double>(), alpha_star, 1e-6) << "layer " << l;
        }
    }
}

void expect_clean_failure(const CommandResult& r, const std::string& needle) {
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

// analyze's default length (64 tokens) is where the blockwise kernel takes over under auto; the
// graphs need the weights, so analyze must run the materialised kernel there too.
TEST(AnalyzeCli, DefaultLengthWhereTheBlockwiseKernelTakesOver) {
    const fs::path dir = fresh_temp_dir("analyze_default_length");
    make_corpus(dir);
    auto trained = run_sinklab("train --data " + (dir / "corpus.txt").string() +
                               " --d-model 32 --layers 2 --heads 2 --seq-len 64 --steps 0 --threads 2 --quiet --out " +
                               (dir / "run").string());
    ASSERT_EQ(trained.exit_code, 0) << trained.output;
    const fs::path json_path = dir / "analyze.json";
    auto r = run_sinklab("analyze --model " + (dir / "run" / "checkpoint").string() +
                         " --input random --samples 1 --threads 2 --analyses diffusion --json " + json_path.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto j = nlohmann::json::parse(read_file(json_path));
    EXPECT_EQ(j["analyses"]["diffusion"]["layers"].size(), 2u) << j.dump();
}

TEST(AnalyzeCli, UnknownAnalysisIsAnError) {
    expect_clean_failure(run_sinklab(base(fixture().model) + " --analyses diffusion,bogus"),
                         "unknown analysis 'bogus'; valid: all, diffusion, spectral, topology, rmt, value, frames");
}

TEST(AnalyzeCli, ThresholdOutsideUnitIntervalIsAnError) {
    expect_clean_failure(run_sinklab(base(fixture().model) + " --threshold 0.1,1.5"),
                         "--threshold 1.5: each threshold must lie in (0, 1)");
}

TEST(AnalyzeCli, TracksRandomMatrixStatisticsAcrossSavedCheckpoints) {
    const Fixture& f = fixture();
    auto t = run_sinklab("train --data " + (f.dir / "corpus.txt").string() +
                         " --d-model 32 --layers 2 --heads 2 --seq-len 32 --batch 2 --steps 2 --warmup 1 --eval-every 2"
                         " --eval-windows 2 --save-at pow2 --threads 2 --quiet --out " + (f.dir / "runp").string());
    ASSERT_EQ(t.exit_code, 0) << t.output;
    const fs::path ck = f.dir / "runp" / "checkpoints";
    const fs::path json_path = f.dir / "track.json";
    auto r = run_sinklab("analyze --input random --samples 2 --seq-len 16 --threads 2 --analyses rmt --checkpoints " +
                         (ck / "step_000000").string() + " " + (ck / "step_000002").string() + " --json " +
                         json_path.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("random-matrix statistics across checkpoints"), std::string::npos) << r.output;
    const auto j = nlohmann::json::parse(read_file(json_path));
    ASSERT_EQ(j["checkpoints"].size(), 2u);
    for (const auto& c : j["checkpoints"]) {
        ASSERT_EQ(c["analyses"]["rmt"]["layers"].size(), 2u);
        EXPECT_EQ(c["analyses"]["rmt"]["layers"][0]["faithful"]["variant"], "faithful");
        EXPECT_EQ(c["analyses"]["rmt"]["layers"][0]["corrected"]["variant"], "corrected");
    }
}

TEST(AnalyzeCli, CheckpointsOfDifferentArchitecturesAreAnError) {
    const Fixture& f = fixture();
    const fs::path other = train_tiny(f.dir, "run3", 3);
    expect_clean_failure(run_sinklab("analyze --input random --samples 2 --seq-len 16 --checkpoints " + f.model.string() +
                                     " " + other.string()),
                         "have different architectures");
}

}  // namespace
}  // namespace sinklab::testing
