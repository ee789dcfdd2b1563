// Every number of the over-mixing test against an independent PyTorch computation
// (tests/oracle/perturb_reference.py, float64, from the definitions): on sinklab models (the forward
// of tests/oracle/engine_reference.py) with and without their sink (drop-bos, mask-first:K,
// mask-slot), on the Hugging Face GPT-2 fixture (a forward written from Hugging Face's
// conventions, checked against the block outputs transformers captured), and on the BERT, RoBERTa
// and XLM-R encoder fixtures (tests/oracle/encoder_reference.py's encoder: both sides of the
// perturbed tokens measured at |d|, and each condition's masked-LM loss). Within 1e-4, relative to
// max(1, |reference|).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../oracle/oracle_case.h"
#include "model/hf_loader.h"
#include "model/sink_interventions.h"
#include "perturb/over_mixing.h"
#include "perturb_test_models.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;

constexpr double kTolerance = 1e-4;

fs::path perturb_oracle_script() {
    return fs::path(SINKLAB_SOURCE_DIR) / "tests" / "oracle" / "perturb_reference.py";
}

void expect_number(double mine, const nlohmann::json& ref, const std::string& what) {
    if (ref.is_null()) {
        EXPECT_TRUE(std::isnan(mine)) << what << ": the reference measured nothing, sinklab " << mine;
        return;
    }
    const double b = ref.get<double>();
    EXPECT_LE(std::abs(mine - b), kTolerance * std::max(1.0, std::abs(b))) << what << ": " << mine << " vs " << b;
}

void expect_summary(const ChangeSummary& s, const nlohmann::json& ref, const std::string& what) {
    EXPECT_EQ(s.count, ref["count"].get<long>()) << what;
    expect_number(s.mean, ref["mean"], what + " mean");
    expect_number(s.p90, ref["p90"], what + " p90");
}

void expect_rows(const std::vector<std::vector<double>>& mine, const nlohmann::json& ref, const std::string& what) {
    ASSERT_EQ(mine.size(), ref.size()) << what;
    for (size_t l = 0; l < mine.size(); ++l) {
        ASSERT_EQ(mine[l].size(), ref[l].size()) << what;
        for (size_t i = 0; i < mine[l].size(); ++i) expect_number(mine[l][i], ref[l][i], fmt::format("{}[{}][{}]", what, l, i));
    }
}

void expect_result(const OverMixingResult& r, const nlohmann::json& ref) {
    ASSERT_EQ(static_cast<int>(ref["residual"].size()), r.layers);
    for (int l = 0; l < r.layers; ++l) {
        expect_summary(r.residual[l], ref["residual"][l], fmt::format("residual[{}]", l));
        expect_summary(r.heads_pooled[l], ref["heads_pooled"][l], fmt::format("heads_pooled[{}]", l));
        for (int h = 0; h < r.heads; ++h)
            expect_summary(r.head[l][h], ref["head"][l][h], fmt::format("head[{}][{}]", l, h));
    }
    expect_rows(r.residual_by_distance, ref["residual_by_distance"], "residual_by_distance");
    expect_rows(r.heads_by_distance, ref["heads_by_distance"], "heads_by_distance");
    expect_rows(r.residual_by_position, ref["residual_by_position"], "residual_by_position");
}

// A condition as the reference reads it, with the model and set sinklab runs it on.
struct Condition {
    std::string name;
    int hidden_first = 0;
    bool drop_first = false, without_slot = false;
};

// (W, T) ids as W rows of T
nlohmann::json rows_json(const std::vector<int32_t>& ids, int T) {
    nlohmann::json rows = nlohmann::json::array();
    for (size_t at = 0; at < ids.size(); at += T)
        rows.push_back(std::vector<int32_t>(ids.begin() + static_cast<long>(at), ids.begin() + static_cast<long>(at) + T));
    return rows;
}

nlohmann::json set_json(const PerturbationSet& set) {
    nlohmann::json perturbations = nlohmann::json::array();
    for (const Perturbation& p : set.perturbations)
        perturbations.push_back({{"window", p.window}, {"first", p.first}, {"replacement", p.replacement}});
    return {{"T", set.T}, {"windows", rows_json(set.windows, set.T)}, {"perturbations", perturbations}};
}

nlohmann::json conditions_json(const std::vector<Condition>& conditions) {
    nlohmann::json out = nlohmann::json::array();
    for (const Condition& c : conditions)
        out.push_back({{"name", c.name},
                       {"hidden_first", c.hidden_first},
                       {"drop_first", c.drop_first},
                       {"without_slot", c.without_slot}});
    return out;
}

// A Hugging Face folder's case (kind hf_gpt2 or hf_encoder) written to `dir`, and the reference's answer.
void run_hf_reference(const test::OracleDir& dir, const char* kind, const fs::path& folder, const PerturbationSet& set,
                      const std::vector<Condition>& conditions, nlohmann::json& reference) {
    nlohmann::json c = set_json(set);
    c["kind"] = kind;
    c["folder"] = folder.string();
    c["conditions"] = conditions_json(conditions);
    if (!set.loss.empty()) {
        c["loss_windows"] = rows_json(set.loss_tokens, set.T);
        c["loss_targets"] = rows_json(set.loss_targets, set.T);
    }
    std::ofstream(dir.path() / "case.json") << c.dump();
    ASSERT_TRUE(test::run_python_reference(perturb_oracle_script(), {dir.path()}));
    reference = nlohmann::json::parse(std::ifstream(dir.path() / "reference.json"));
}

OverMixingResult run_condition(Transformer& model, const PerturbationSet& set, const Condition& c, int32_t bos,
                               AttentionKernel kernel) {
    const PerturbationSet used = c.drop_first ? drop_first_token(set, bos) : set;
    OverMixingOptions options;
    options.first_keys.hidden = c.hidden_first;
    options.kernel = kernel;
    if (!c.without_slot) return measure_over_mixing(model, used, options);
    auto bare = copy_without_slot(model);
    return measure_over_mixing(*bare, used, options);
}

// Windows of T tokens starting with `bos`, and two-per-window random substitutions (one window's
// pair are two tokens apart at most once in a while: distances overlap).
PerturbationSet oracle_set(int T, int vocab, int32_t bos, uint64_t seed) {
    Rng rng(seed);
    std::vector<int32_t> windows;
    for (int w = 0; w < 3; ++w) {
        windows.push_back(bos);
        for (int t = 1; t < T; ++t) windows.push_back(static_cast<int32_t>(rng.below(vocab - 1)));
    }
    return random_perturbations(windows, T, 6, 2, 2, vocab, {bos}, seed);
}

TEST(PerturbOracle, SinklabModelsAgreeWithPyTorch) {
    struct Case {
        std::string name;
        ModelConfig config;
        std::vector<Condition> conditions;
    };
    const std::vector<Case> cases = {
        {"rope_gqa", test::mixing_config(PositionKind::rope),
         {{"with sink"}, {"drop-bos", 0, true}, {"mask-first:2", 2}}},
        {"learned_kv_bias", test::mixing_config(PositionKind::learned, "kv_bias"),
         {{"with sink"}, {"mask-slot", 0, false, true}, {"mask-first:1", 1}}},
        {"rope_sink_token", test::mixing_config(PositionKind::rope, "sink_token"),
         {{"with sink"}, {"mask-slot", 0, false, true}}},
    };
    const int T = 24;
    const int32_t bos = 63;
    std::vector<std::unique_ptr<test::OracleDir>> dirs;
    std::vector<fs::path> paths;
    std::vector<std::unique_ptr<Transformer>> models;
    std::vector<PerturbationSet> sets;
    for (const Case& c : cases) {
        models.push_back(test::random_model(c.config, 31));
        sets.push_back(oracle_set(T, c.config.vocab_size, bos, 17));
        dirs.push_back(std::make_unique<test::OracleDir>(c.name));
        nlohmann::json extra = set_json(sets.back());
        extra["kind"] = "model";
        extra["conditions"] = conditions_json(c.conditions);
        test::write_oracle_case(dirs.back()->path(), *models.back(), test::OracleBatch{1, 1, {0}, {0}}, extra);
        paths.push_back(dirs.back()->path());
    }
    ASSERT_TRUE(test::run_python_reference(perturb_oracle_script(), paths));
    for (size_t i = 0; i < cases.size(); ++i) {
        const nlohmann::json ref = nlohmann::json::parse(std::ifstream(paths[i] / "reference.json"));
        for (const Condition& c : cases[i].conditions)
            for (AttentionKernel kernel : {AttentionKernel::materialised, AttentionKernel::blockwise}) {
                SCOPED_TRACE(cases[i].name + " " + c.name + " " + attention_kernel_name(kernel));
                expect_result(run_condition(*models[i], sets[i], c, bos, kernel), ref["conditions"][c.name]);
            }
    }
}

TEST(PerturbOracle, HuggingFaceGpt2AgreesWithPyTorch) {
    const fs::path folder = fs::path(SINKLAB_SOURCE_DIR) / "tests" / "fixtures" / "hf" / "gpt2";
    auto model = load_model(folder);
    const PerturbationSet set = oracle_set(20, model->config().vocab_size, 1, 23);
    const std::vector<Condition> conditions = {{"with sink"}, {"mask-first:1", 1}, {"drop-bos", 0, true}};
    test::OracleDir dir("gpt2");
    nlohmann::json ref;
    ASSERT_NO_FATAL_FAILURE(run_hf_reference(dir, "hf_gpt2", folder, set, conditions, ref));
    for (const Condition& cond : conditions)
        for (AttentionKernel kernel : {AttentionKernel::materialised, AttentionKernel::blockwise}) {
            SCOPED_TRACE(cond.name + " " + attention_kernel_name(kernel));
            expect_result(run_condition(*model, set, cond, 1, kernel), ref["conditions"][cond.name]);
        }
}

// An encoder's windows: [CLS] text [SEP] with text ids drawn from [first_text, V) without the mask
// id, two substitutions per window among the text tokens (never the frame, never a special id), and
// the masked-LM input: three text tokens per window become `mask`, the only targets.
PerturbationSet encoder_set(int T, int V, int32_t cls, int32_t sep, int32_t mask, int32_t first_text, uint64_t seed) {
    Rng rng(seed);
    std::vector<int32_t> windows;
    std::vector<int32_t> specials;
    for (int32_t id = 0; id < first_text; ++id) specials.push_back(id);
    specials.push_back(mask);
    const auto text_id = [&] {
        int32_t id = mask;
        while (id == mask) id = first_text + static_cast<int32_t>(rng.below(V - first_text));
        return id;
    };
    for (int w = 0; w < 3; ++w) {
        windows.push_back(cls);
        for (int t = 1; t < T - 1; ++t) windows.push_back(text_id());
        windows.push_back(sep);
    }
    PerturbationSet set = random_perturbations(windows, T, 6, 2, 1, V, specials, seed, T - 2);
    set.loss = "masked_lm";
    set.loss_tokens = set.windows;
    set.loss_targets.assign(set.windows.size(), -1);
    for (int w = 0; w < 3; ++w)
        for (int t : {2, 7, T - 3}) {
            const size_t at = static_cast<size_t>(w) * T + t + (w % 2);
            set.loss_targets[at] = set.loss_tokens[at];
            set.loss_tokens[at] = mask;
        }
    return set;
}

TEST(PerturbOracle, HuggingFaceEncodersAgreeWithPyTorch) {
    struct Case {
        std::string folder;
        int32_t cls, sep, mask, first_text;
    };
    // BERT's vocab.txt: [PAD] 0, [UNK] 3, [CLS] 4, [SEP] 5, [MASK] 6; RoBERTa and XLM-R: <s> 0,
    // <pad> 1 (positions skip it), </s> 2, <unk> 3, and <mask> the last id
    const std::vector<Case> cases = {{"bert", 4, 5, 6, 7}, {"roberta", 0, 2, 319, 4}, {"xlm_roberta", 0, 2, 999, 4}};
    const std::vector<Condition> conditions = {{"with sink"}, {"mask-first:1", 1}, {"drop-bos", 0, true}};
    for (const Case& ec : cases) {
        SCOPED_TRACE(ec.folder);
        const fs::path folder = fs::path(SINKLAB_SOURCE_DIR) / "tests" / "fixtures" / "hf-encoders" / ec.folder;
        auto model = load_model(folder);
        ASSERT_FALSE(model->config().causal);
        const PerturbationSet set = encoder_set(18, model->config().vocab_size, ec.cls, ec.sep, ec.mask, ec.first_text, 29);
        for (const Perturbation& p : set.perturbations) {  // the frame is spared
            ASSERT_GE(p.first, 1);
            ASSERT_LE(p.last(), set.T - 2);
        }
        test::OracleDir dir("encoder_" + ec.folder);
        nlohmann::json ref;
        ASSERT_NO_FATAL_FAILURE(run_hf_reference(dir, "hf_encoder", folder, set, conditions, ref));
        for (const Condition& cond : conditions)
            for (AttentionKernel kernel : {AttentionKernel::materialised, AttentionKernel::blockwise}) {
                SCOPED_TRACE(cond.name + " " + attention_kernel_name(kernel));
                const OverMixingResult r = run_condition(*model, set, cond, ec.cls, kernel);
                EXPECT_EQ(r.distance_convention, "bidirectional");
                expect_result(r, ref["conditions"][cond.name]);
                EXPECT_EQ(r.loss, "masked_lm");
                expect_number(r.loss_value, ref["conditions"][cond.name]["loss"], "masked-LM loss");
            }
    }
}

}  // namespace
}  // namespace sinklab
