// End to end on the encoder fixtures (tests/fixtures/hf-encoders/): probe, analyze, report and
// tokenize on BERT / RoBERTa / XLM-R folders, and one clear line with a non-zero exit for each bad
// input: a vocab.txt with a repeated token, a config.json whose type_vocab_size disagrees with the
// weights, generate and stream on an encoder; perturb on an encoder (both sides, the masked-LM loss)
// and its bad inputs.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/cli_test_support.h"
#include "model/checkpoint.h"
#include "probe/probe_test_models.h"

namespace sinklab::testing {
namespace {

namespace fs = std::filesystem;

fs::path encoder(const std::string& name) { return fs::path(SINKLAB_SOURCE_DIR) / "tests/fixtures/hf-encoders" / name; }

// The output is exactly one line, and it is sinklab's error line.
::testing::AssertionResult one_error_line(const CommandResult& r, const std::string& phrase) {
    if (r.exit_code == 0) return ::testing::AssertionFailure() << "exit code 0: " << r.output;
    const std::string line = r.output.substr(0, r.output.find('\n'));
    if (r.output != line + "\n") return ::testing::AssertionFailure() << "more than one line: " << r.output;
    if (!line.starts_with("error: ")) return ::testing::AssertionFailure() << "not an error line: " << line;
    if (line.find(phrase) == std::string::npos) return ::testing::AssertionFailure() << "no \"" << phrase << "\": " << line;
    return ::testing::AssertionSuccess();
}

class EncoderCli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = fresh_temp_dir("encoders");
        std::string text;
        for (int i = 0; i < 40; ++i) text += "The quick brown fox jumps over the lazy dog in New York, and Paris. ";
        std::ofstream(dir_ / "text.txt") << text;
    }
    static inline fs::path dir_;
};

TEST_F(EncoderCli, ProbeReportsTheBidirectionalConventionSpecialTokensAndTheMaskedLmLoss) {
    const fs::path json = dir_ / "probe.json";
    const auto r = run_sinklab("probe --model " + encoder("bert").string() + " --input natural:" +
                               (dir_ / "text.txt").string() + " --seq-len 24 --samples 6 --quiet --threads 1" +
                               " --intervene zero --layer 0 --json " + json.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("bidirectional attention: alpha_k averages over all T queries"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("masked-LM loss"), std::string::npos) << r.output;
    const nlohmann::json j = nlohmann::json::parse(read_file(json));
    EXPECT_EQ(j["alpha_convention"], "bidirectional");
    EXPECT_EQ(j["positions"], 24);  // every position by default
    EXPECT_EQ(j["alpha_k"].size(), 24u);
    ASSERT_EQ(j["special_tokens"].size(), 2u);
    EXPECT_EQ(j["special_tokens"][0]["token"], "[CLS]");
    EXPECT_EQ(j["special_tokens"][0]["position"], 1);
    EXPECT_EQ(j["special_tokens"][1]["token"], "[SEP]");
    EXPECT_EQ(j["special_tokens"][1]["position"], 24);
    EXPECT_EQ(j["input"]["bos_id"], 4);
    EXPECT_EQ(j["input"]["eos_id"], 5);
    EXPECT_EQ(j["intervention"]["loss"], "masked_lm");
    EXPECT_NE(j["definitions"]["alpha_k"].get<std::string>().find("1/T"), std::string::npos);
    EXPECT_NE(j["definitions"]["intervention"].get<std::string>().find("15%"), std::string::npos);
}

TEST_F(EncoderCli, SinkInterventionsUseTheMaskedLmLoss) {
    // scale-first:1 edits nothing: the intervened masked-LM loss and Sink_k equal the clean ones to
    // the bit, which they do only when both read the same masked samples
    const fs::path json = dir_ / "probe-scale.json";
    const auto r = run_sinklab("probe --model " + encoder("bert").string() + " --input natural:" +
                               (dir_ / "text.txt").string() + " --seq-len 24 --samples 6 --quiet --threads 1" +
                               " --intervene scale-first:1 --json " + json.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("masked-LM loss"), std::string::npos) << r.output;
    const nlohmann::json j = nlohmann::json::parse(read_file(json));
    EXPECT_EQ(j["intervention"]["loss"], "masked_lm");
    EXPECT_EQ(j["intervention"]["loss_clean"].get<double>(), j["intervention"]["loss_intervened"].get<double>());
    EXPECT_GT(j["intervention"]["loss_clean"].get<double>(), 0.0);
    EXPECT_EQ(j["intervention"]["sink_k_intervened"], j["sink_k"]);
    // mask-first:1 hides [CLS] from the queries after it: the loss moves
    const auto masked = run_sinklab("probe --model " + encoder("bert").string() + " --input natural:" +
                                    (dir_ / "text.txt").string() + " --seq-len 24 --samples 6 --quiet --threads 1" +
                                    " --intervene mask-first:1 --json " + json.string());
    ASSERT_EQ(masked.exit_code, 0) << masked.output;
    const nlohmann::json m = nlohmann::json::parse(read_file(json));
    EXPECT_EQ(m["intervention"]["loss_clean"], j["intervention"]["loss_clean"]);
    EXPECT_NE(m["intervention"]["loss_intervened"], m["intervention"]["loss_clean"]);
}

TEST_F(EncoderCli, AnalyzeSaysTheGraphIsNoDagAndReportsStationaryMassOnSpecialTokens) {
    const fs::path json = dir_ / "analyze.json";
    // RoBERTa's fixture has no tokenizer: its config's <s> (0) and </s> (2) frame the random samples.
    // T = 64, the default: the graphs need the materialised kernel's weights at any T.
    const auto r = run_sinklab("analyze --model " + encoder("roberta").string() +
                               " --input random --seq-len 64 --samples 2 --threads 1 --json " + json.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("not a DAG"), std::string::npos) << r.output;
    const nlohmann::json j = nlohmann::json::parse(read_file(json));
    for (const auto& layer : j["analyses"]["diffusion"]["layers"]) {
        EXPECT_EQ(layer["causal"]["fraction"], 0.0) << layer.dump();
        EXPECT_NE(layer["graph"].get<std::string>().find("not a DAG"), std::string::npos);
        const auto& specials = layer["stationary"]["special_tokens"];
        ASSERT_EQ(specials.size(), 2u);
        EXPECT_EQ(specials[0]["position"], 0);
        EXPECT_EQ(specials[1]["position"], 63);
        EXPECT_GT(specials[0]["mass"]["mean"].get<double>(), 0.0);
    }
    EXPECT_FALSE(j["frames"]["causal"].get<bool>());
    for (const char* name : {"spectral", "topology", "rmt", "value"}) EXPECT_TRUE(j["analyses"].contains(name)) << name;
}

// A hand-built sinklab encoder whose every head splits its weight between the first and the last
// token: the bidirectional token-one sink of the probe's tests, with the last position's embedding
// carrying the same feature as the first's.
fs::path dual_anchor_encoder(const fs::path& dir, int T) {
    auto model = test::token_one_sink_model(T, /*causal=*/false);
    model->param("embed.positions")[static_cast<long>(T - 1) * model->config().d_model] = 1.0f;
    save_model_folder(*model, dir / "dual_anchor");
    return dir / "dual_anchor";
}

TEST_F(EncoderCli, FrameClassifierAnswersBidirectionalForADualAnchorEncoder) {
    const fs::path json = dir_ / "frames.json";
    const auto r = run_sinklab("analyze --model " + dual_anchor_encoder(dir_, 16).string() +
                               " --input random --seq-len 16 --samples 2 --analyses frames,diffusion --threads 1 --json " +
                               json.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const nlohmann::json j = nlohmann::json::parse(read_file(json));
    EXPECT_EQ(j["frames"]["frame"], "bidirectional") << j["frames"].dump();
    for (const auto& layer : j["frames"]["layers"]) EXPECT_EQ(layer["frame"], "bidirectional");
    // the stationary distribution sits on the two anchors
    for (const auto& layer : j["analyses"]["diffusion"]["layers"]) {
        const auto& pi = layer["stationary"]["distribution"]["mean"];
        EXPECT_GT(pi[0].get<double>() + pi[15].get<double>(), 0.99) << layer["stationary"].dump();
    }
}

TEST_F(EncoderCli, ReportMeasuresAnEncoder) {
    const fs::path out = dir_ / "report";
    const auto r = run_sinklab("report " + encoder("xlm_roberta").string() + " --out " + out.string() +
                               " --inputs random,repeat --seq-len 16 --samples 4 --analysis-samples 2 --quiet --threads 1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(fs::exists(out / "index.html"));
    const std::string report = read_file(out / "report.json");
    EXPECT_NE(report.find("xlm-roberta"), std::string::npos);
    // no natural windows to perturb (the fixture has no tokenizer, the test no natural text): the
    // report says why it has no over-mixing
    EXPECT_NE(report.find("over-mixing not measured"), std::string::npos) << report;
    // the finding compares alpha_1 with uniform bidirectional attention, 1/T, not the causal H_T/T
    EXPECT_NE(r.output.find("the 0.0625 of uniform attention over 16 tokens"), std::string::npos) << r.output;
}

TEST_F(EncoderCli, TokenizeFramesASentencePair) {
    // the fixture's record of transformers' BertTokenizer for this pair (lower-casing on, as the folder says)
    const auto r =
        run_sinklab("tokenize --model " + encoder("bert").string() + " --framed --pair \"I am BERT.\" \"Who are you?\"");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "4 365 287 281 27 5 73 65 210 292 215 217 20 5\n0 0 0 0 0 0 1 1 1 1 1 1 1 1\n");
    const auto single = run_sinklab("tokenize --model " + encoder("bert").string() + " --framed \"hello world\"");
    EXPECT_EQ(single.output, "4 524 463 5\n");
}

TEST_F(EncoderCli, VocabularyWithARepeatedTokenIsOneErrorLine) {
    const fs::path folder = dir_ / "duplicate";
    fs::create_directories(folder);
    std::ofstream(folder / "vocab.txt") << "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\nhello\n";
    EXPECT_TRUE(one_error_line(run_sinklab("tokenize --tokenizer " + folder.string() + " hello"), "repeats the token"));
}

TEST_F(EncoderCli, TypeVocabSizeThatDisagreesWithTheWeightsIsOneErrorLine) {
    const fs::path folder = dir_ / "bad-types";
    fs::create_directories(folder);
    fs::copy_file(encoder("bert") / "model.safetensors", folder / "model.safetensors", fs::copy_options::overwrite_existing);
    nlohmann::json config = nlohmann::json::parse(read_file(encoder("bert") / "config.json"));
    config["type_vocab_size"] = 1;
    std::ofstream(folder / "config.json") << config.dump(2);
    EXPECT_TRUE(one_error_line(run_sinklab("probe --model " + folder.string() + " --input random --quiet"),
                               "token_type_embeddings"));
}

TEST_F(EncoderCli, GenerateOnAnEncoderIsOneErrorLine) {
    EXPECT_TRUE(one_error_line(run_sinklab("generate --model " + encoder("bert").string() + " --prompt-ids 4,7,5"),
                               "is an encoder"));
}

TEST_F(EncoderCli, StreamOnAnEncoderIsOneErrorLine) {
    EXPECT_TRUE(one_error_line(run_sinklab("stream --model " + encoder("bert").string() + " --policy dense --tokens 8 "
                                           "--data " + (dir_ / "text.txt").string() + " --quiet"),
                               "is an encoder"));
}

// The over-mixing test on an encoder: windows framed by [CLS] ... [SEP], substitutions that spare
// the frame and write no special id, the change measured on both sides at |d|, and every condition
// scored with the masked-LM loss (a seeded 15% of each window's text tokens).
TEST_F(EncoderCli, PerturbMeasuresAnEncoderOnBothSidesWithTheMaskedLmLoss) {
    const fs::path json = dir_ / "perturb.json";
    const int T = 16, N = 8;
    const auto r = run_sinklab("perturb --model " + encoder("bert").string() + " --random " + std::to_string(N) +
                               " --per-window 2 --seq-len " + std::to_string(T) + " --data " +
                               (dir_ / "text.txt").string() + " --without-sink mask-first:1,drop-bos --quiet --threads 1" +
                               " --json " + json.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("framed by [CLS] (4) ... [SEP] (5)"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("both sides of the perturbed tokens"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("masked-LM loss: in each window 2 of its 14 text tokens become the mask token 6 (15%"),
              std::string::npos)
        << r.output;
    const nlohmann::json j = nlohmann::json::parse(read_file(json));
    const nlohmann::json& m = j["models"][0];
    EXPECT_EQ(m["architecture"], "bert");
    ASSERT_EQ(m["perturbations"].size(), static_cast<size_t>(N));
    for (const nlohmann::json& p : m["perturbations"]) {
        EXPECT_GE(p["position"].get<int>(), 2);  // never [CLS] at 1 ...
        EXPECT_LE(p["position"].get<int>(), T - 1);  // ... nor [SEP] at T
        for (int32_t id : {0, 3, 4, 5, 6}) EXPECT_NE(p["tokens"][0].get<int32_t>(), id) << "a special id written";
    }
    ASSERT_EQ(m["runs"].size(), 3u);
    for (const nlohmann::json& run : m["runs"]) {
        SCOPED_TRACE(run["sink"].get<std::string>());
        EXPECT_EQ(run["distance_convention"], "bidirectional");
        EXPECT_EQ(run["loss"], "masked_lm");
        EXPECT_GT(run["loss_value"].get<double>(), 0.0);
        // every position but the replaced one is measured: T' - 1 pairs per perturbation
        const int Tc = run["seq_len"].get<int>();
        long pairs = 0;
        for (const nlohmann::json& n : run["pairs_by_distance"]) pairs += n.get<long>();
        EXPECT_EQ(pairs, static_cast<long>(N) * (Tc - 1));
        // the first layer's change reaches the positions before every perturbation: position 2 of
        // the input (the first text token; 1 after drop-bos) moved
        EXPECT_GT(run["residual_by_position"][0][Tc == T ? 1 : 0].get<double>(), 0.0);
    }
    EXPECT_EQ(m["runs"][2]["seq_len"], T - 1);  // drop-bos leaves [CLS] out
    EXPECT_NE(m["runs"][0]["loss_value"].get<double>(), m["runs"][1]["loss_value"].get<double>());
    EXPECT_NE(j["definitions"]["loss"].get<std::string>().find("15%"), std::string::npos);
    EXPECT_NE(j["definitions"]["distance_convention"].get<std::string>().find("|d|"), std::string::npos);
}

TEST_F(EncoderCli, PerturbAPromptOfAnEncoderKeepsItsFrame) {
    const fs::path json = dir_ / "perturb-prompt.json";
    // "quick" and "lazy" are one token each in the fixture's vocabulary
    const auto r = run_sinklab("perturb --model " + encoder("bert").string() +
                               " --prompt \"the quick brown fox jumps over the lazy dog\" --replace quick=lazy --quiet"
                               " --threads 1 --json " + json.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const nlohmann::json m = nlohmann::json::parse(read_file(json))["models"][0];
    EXPECT_EQ(m["prompt_ids"], nlohmann::json({4, 274, 518, 519, 520, 521, 216, 359, 274, 522, 523, 5}));
    EXPECT_EQ(m["perturbations"][0]["position"], 3);
    EXPECT_EQ(m["perturbations"][0]["tokens"], nlohmann::json({522}));
    EXPECT_EQ(m["runs"][0]["residual"][0]["count"], 11);  // both sides of position 3
}

TEST_F(EncoderCli, PerturbOfAnEncoderFrameIsOneErrorLine) {
    const std::string prompt = "perturb --model " + encoder("bert").string() + " --prompt \"the quick brown fox\" ";
    EXPECT_TRUE(one_error_line(run_sinklab(prompt + "--position 1 --token 9 --quiet"), "--position 1: that is the first token"));
    EXPECT_TRUE(one_error_line(run_sinklab(prompt + "--position 6 --token 9 --quiet"), "--position 6: that is the last token"));
    EXPECT_TRUE(one_error_line(run_sinklab(prompt + "--position 3 --token 5 --quiet"), "--token 5"));
    // the RoBERTa fixture has no tokenizer files: no natural windows
    EXPECT_TRUE(one_error_line(run_sinklab("perturb --model " + encoder("roberta").string() + " --random 2 --seq-len 8 "
                                           "--data " + (dir_ / "text.txt").string() + " --quiet"),
                               "has none"));
    EXPECT_TRUE(one_error_line(run_sinklab("perturb --model " + encoder("bert").string() + " --random 2 --seq-len 8 "
                                           "--data " + (dir_ / "text.txt").string() + " --without-sink mask-slot --quiet"),
                               "no slot column"));
}

}  // namespace
}  // namespace sinklab::testing
