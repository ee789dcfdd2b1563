// The probe's metrics (the no-op reading included) against an independent PyTorch implementation
// (tests/oracle/probe_reference.py, with Gu et al.'s compute_attention_sink as their code writes
// it): on sinklab models, whose forward the script recomputes in float64, and on the Hugging Face
// fixtures of tests/fixtures/hf/, whose attention maps and block outputs were captured by
// transformers itself. Both attention paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../oracle/oracle_case.h"
#include "core/error.h"
#include "probe/probe.h"
#include "probe/probe_model.h"
#include "probe_test_models.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using test::expect_close;

fs::path probe_oracle_script() { return fs::path(SINKLAB_SOURCE_DIR) / "tests" / "oracle" / "probe_reference.py"; }

nlohmann::json read_json(const fs::path& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
}

nlohmann::json case_settings(const ProbeOptions& o) {
    return {{"positions", o.positions},
            {"eps", o.eps},
            {"massive_absolute", o.thresholds.absolute},
            {"massive_relative", o.thresholds.relative}};
}

// The probe's sink interventions the reference recomputes (tests/oracle/probe_reference.py).
nlohmann::json sink_intervention_cases() {
    return nlohmann::json::array({{{"name", "mask-first:1"}, {"kind", "mask_first"}, {"count", 1}},
                                  {{"name", "mask-first:3"}, {"kind", "mask_first"}, {"count", 3}},
                                  {{"name", "scale-first:0.25"}, {"kind", "scale_first"}, {"factor", 0.25}},
                                  {{"name", "scale-first:4"}, {"kind", "scale_first"}, {"factor", 4.0}},
                                  {{"name", "replace-first:7"}, {"kind", "replace_first"}, {"id", 7}}});
}

void expect_matrix(const std::vector<std::vector<double>>& mine, const nlohmann::json& ref, double tol,
                   const std::string& what) {
    ASSERT_EQ(mine.size(), ref.size()) << what;
    for (size_t i = 0; i < mine.size(); ++i) {
        ASSERT_EQ(mine[i].size(), ref[i].size()) << what;
        for (size_t j = 0; j < mine[i].size(); ++j)
            expect_close(mine[i][j], ref[i][j].get<double>(), tol, fmt::format("{}[{}][{}]", what, i, j));
    }
}

// The metrics both kinds of case have: sink scores, entropy, massive activations, hidden norms.
void expect_common(const ProbeResult& r, const nlohmann::json& ref, double tol) {
    ASSERT_EQ(r.alpha.size(), ref["alpha_k"].size());
    for (size_t k = 0; k < r.alpha.size(); ++k) {
        expect_matrix(r.alpha[k], ref["alpha_k"][k], tol, fmt::format("alpha_{}", k + 1));
        // torch's mean of float32 indicators: its last bits differ from an exact ratio
        EXPECT_NEAR(r.sink_percent[k], ref["sink_k"][k].get<double>(), 1e-4) << "Sink_" << k + 1;
    }
    expect_matrix(r.entropy, ref["entropy"], tol, "entropy");
    for (int l = 0; l < r.layers; ++l) {
        const LayerActivations& a = r.activations[l];
        const nlohmann::json& m = ref["massive"][l];
        expect_close(a.median, m["median"].get<double>(), tol, fmt::format("layer {} median", l));
        EXPECT_EQ(a.massive_count, m["count"].get<long>()) << "layer " << l;
        for (size_t i = 0; i < a.top.size(); ++i) {
            const nlohmann::json& t = m["top"][i];
            EXPECT_EQ(a.top[i].sample, t[0].get<long>());
            EXPECT_EQ(a.top[i].position, t[1].get<int>());
            EXPECT_EQ(a.top[i].dim, t[2].get<int>());
            expect_close(a.top[i].value, t[3].get<double>(), tol, fmt::format("layer {} top {}", l, i));
        }
    }
    expect_matrix({r.hidden_norm_ratio}, nlohmann::json::array({ref["hidden_norm_ratio"]}), tol, "hidden_norm_ratio");
}

TEST(ProbeOracle, SinklabModelsAgreeWithPyTorch) {
    struct Case {
        std::string name;
        ModelConfig config;
    };
    ModelConfig nope = test::small_config(PositionKind::none);
    nope.n_kv_heads = nope.n_heads;  // plain multi-head attention as well as GQA
    const std::vector<Case> cases = {{"rope_gqa", test::small_config(PositionKind::rope)},
                                     {"learned_gpt2", test::small_config(PositionKind::learned)},
                                     {"nope_mha", nope}};
    ProbeOptions options;
    options.eps = 0.2f;  // these random models put 0.1-0.6 on token 1: both sides of eps occur
    options.intervention = InterventionSpec{InterventionMode::zero, 0, {1}};  // for its clean loss
    const int N = 3, T = 48;
    std::vector<fs::path> dirs;
    std::vector<std::unique_ptr<Transformer>> models;
    std::vector<ProbeSamples> samples;
    std::vector<std::unique_ptr<test::OracleDir>> scratch;
    for (const Case& c : cases) {
        models.push_back(test::random_model(c.config, 21));
        const ProbeSamples ids = random_samples(c.config.vocab_size, N * (T + 1), 1, std::nullopt, 8);
        samples.push_back(natural_samples(ids.tokens, T, N, std::nullopt, "ids"));
        scratch.push_back(std::make_unique<test::OracleDir>(c.name));
        nlohmann::json extra = case_settings(options);
        extra["kind"] = "model";
        extra["interventions"] = sink_intervention_cases();
        test::write_oracle_case(scratch.back()->path(), *models.back(),
                                test::OracleBatch{N, T, samples.back().tokens, samples.back().targets}, extra);
        dirs.push_back(scratch.back()->path());
    }
    ASSERT_TRUE(test::run_python_reference(probe_oracle_script(), dirs));
    for (size_t i = 0; i < cases.size(); ++i) {
        const nlohmann::json ref = read_json(dirs[i] / "reference.json");
        for (AttentionKernel path : {AttentionKernel::materialised, AttentionKernel::blockwise}) {
            SCOPED_TRACE(cases[i].name + (path == AttentionKernel::blockwise ? " blockwise" : " materialised"));
            options.kernel = path;
            const ProbeResult r = run_probe(*models[i], samples[i], options);
            expect_common(r, ref, 1e-5);
            expect_matrix(r.key_norm_ratio, ref["key_norm_ratio"], 1e-5, "key_norm_ratio");
            expect_matrix(r.value_norm_ratio, ref["value_norm_ratio"], 1e-5, "value_norm_ratio");
            expect_matrix(r.cos_query_first_key, ref["cos_query_first_key"], 1e-5, "cos_query_first_key");
            expect_matrix(r.cos_query_other_keys, ref["cos_query_other_keys"], 1e-5, "cos_query_other_keys");
            expect_matrix(r.head_output_ratio, ref["head_output_ratio"], 1e-5, "head_output_ratio");
            expect_matrix(r.sink_share, ref["alpha_k"][0], 1e-5, "sink_share");
            ASSERT_TRUE(r.intervention);
            expect_close(r.intervention->loss_clean, ref["loss"].get<double>(), 1e-5, "loss");
            // the sink interventions: the edited forward's loss and Sink_k
            for (const nlohmann::json& edit : sink_intervention_cases()) {
                const std::string name = edit["name"];
                SCOPED_TRACE(name);
                ProbeOptions edited = options;
                edited.metrics = {Metric::sink};
                edited.intervention = parse_intervention(name);
                const ProbeResult e = run_probe(*models[i], samples[i], edited);
                ASSERT_TRUE(e.intervention);
                const nlohmann::json& want = ref["interventions"][name];
                expect_close(e.intervention->loss_clean, ref["loss"].get<double>(), 1e-5, "clean loss");
                expect_close(e.intervention->loss_intervened, want["loss"].get<double>(), 1e-5, "loss");
                ASSERT_EQ(e.intervention->sink_percent_intervened.size(), want["sink_k"].size());
                for (size_t k = 0; k < want["sink_k"].size(); ++k)
                    EXPECT_NEAR(e.intervention->sink_percent_intervened[k], want["sink_k"][k].get<double>(), 1e-4)
                        << "Sink_" << k + 1;
            }
        }
    }
}

// The fixtures' reference maps come from transformers in float32, within 1e-4 of sinklab's forward
// (tests/fixtures/PROVENANCE.md), so the metrics are compared at that tolerance.
TEST(ProbeOracle, HuggingFaceFixturesAgreeWithGuOnTransformersMaps) {
    const fs::path fixtures = fs::path(SINKLAB_SOURCE_DIR) / "tests" / "fixtures" / "hf";
    ProbeOptions options;
    options.eps = 0.2f;
    std::vector<std::string> names;  // fixture folders
    std::vector<fs::path> dirs;
    std::vector<std::unique_ptr<test::OracleDir>> scratch;
    for (const auto& entry : fs::directory_iterator(fixtures))
        if (fs::is_regular_file(entry.path() / "reference.safetensors")) names.push_back(entry.path().filename());
    std::sort(names.begin(), names.end());
    ASSERT_FALSE(names.empty());
    for (const std::string& name : names) {
        scratch.push_back(std::make_unique<test::OracleDir>(name));
        nlohmann::json c = case_settings(options);
        c["kind"] = "hf_fixture";
        c["reference"] = (fixtures / name / "reference.safetensors").string();
        std::ofstream(scratch.back()->path() / "case.json") << c.dump();
        dirs.push_back(scratch.back()->path());
    }
    ASSERT_TRUE(test::run_python_reference(probe_oracle_script(), dirs));
    for (size_t i = 0; i < names.size(); ++i) {
        SCOPED_TRACE(names[i]);
        const nlohmann::json ref = read_json(dirs[i] / "reference.json");
        ProbeModel pm = load_probe_model(fixtures / names[i]);
        const std::vector<int32_t> ids = ref["input_ids"].get<std::vector<int32_t>>();
        ProbeSamples samples;
        samples.N = 1;
        samples.T = static_cast<int>(ids.size());
        samples.tokens = ids;
        for (AttentionKernel path : {AttentionKernel::automatic, AttentionKernel::materialised}) {
            options.kernel = path;
            options.metrics = {Metric::sink, Metric::entropy, Metric::massive, Metric::hidden_norms};
            expect_common(run_probe(*pm.model, samples, options), ref, 1e-4);
        }
    }
}

}  // namespace
}  // namespace sinklab
