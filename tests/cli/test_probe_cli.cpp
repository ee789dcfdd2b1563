// End-to-end tests of `sinklab probe`: the JSON keys, the maps, and one clear error per bad input.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/cli_test_support.h"
#include "model/checkpoint.h"

namespace sinklab::testing {
namespace {

namespace fs = std::filesystem;

// A small byte-level model folder of `style` (d 32, 2 layers, 2 heads, vocab 257 with a BOS token)
// made for max_seq_len positions, at `path`.
fs::path make_model(const fs::path& path, const std::string& style, int max_seq_len, uint64_t seed) {
    ModelConfig c = ModelConfig::for_style(style);
    c.vocab_size = 257;
    c.d_model = 32;
    c.n_layers = 2;
    c.n_heads = c.n_kv_heads = 2;
    c.max_seq_len = max_seq_len;
    Transformer model(c);
    model.init_weights(seed);
    save_model_folder(model, path);
    return path;
}

fs::path write_text(const fs::path& path, const std::string& text) {
    std::ofstream(path) << text;
    return path;
}

class ProbeCli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = fresh_temp_dir("probe");
        model_ = make_model(dir_ / "model", "gpt2", 64, 3);  // learned positions, 64 of them
        std::string text;
        for (int i = 0; i < 200; ++i) text += "The quick brown fox jumps over the lazy dog. ";
        prompts_ = write_text(dir_ / "prompts.txt", text);
    }
    static std::string probe(const std::string& flags) {
        return "probe --model " + model_.string() + " --quiet --threads 2 " + flags;
    }
    static inline fs::path dir_, model_, prompts_;
};

TEST_F(ProbeCli, WritesEveryNumberWithItsDefinitionAndParameters) {
    const fs::path json = dir_ / "probe.json", maps = dir_ / "maps";
    auto r = run_sinklab(probe("--input natural:" + prompts_.string() + " --seq-len 32 --samples 6 --positions 4 " +
                               "--json " + json.string() + " --maps " + maps.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("Sink_1 %"), std::string::npos) << r.output;
    const auto j = nlohmann::json::parse(read_file(json));
    ASSERT_EQ(j["alpha_1"].size(), 2u);     // [layer]
    EXPECT_EQ(j["alpha_1"][0].size(), 2u);  // [head]
    EXPECT_EQ(j["sink_k"].size(), 4u);      // per position
    EXPECT_EQ(j["massive_activations"]["layers"].size(), 2u);
    EXPECT_TRUE(j["definitions"].contains("alpha_1"));
    EXPECT_EQ(j["parameters"]["seq_len"], 32);
    EXPECT_EQ(j["parameters"]["bos"], "auto");
    EXPECT_EQ(j["input"]["bos_id"], 256);  // vocab 257: trained with BOS, so auto puts it first
    EXPECT_EQ(j["attention_path"], "materialised");  // auto below kBlockwiseFromT = 64 positions
    EXPECT_TRUE(fs::is_regular_file(maps / "layer01_head-avg.png"));
}

TEST_F(ProbeCli, InterventionReportsTheLossChange) {
    const fs::path json = dir_ / "intervene.json";
    auto r = run_sinklab(probe("--input natural:" + prompts_.string() + " --seq-len 32 --samples 4 --intervene zero " +
                               "--layer 0 --dims 1,2,3 --json " + json.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("intervention: zero dims 1,2,3 (given) at layer 0"), std::string::npos) << r.output;
    const auto j = nlohmann::json::parse(read_file(json));
    EXPECT_EQ(j["intervention"]["dims"], (std::vector<int>{1, 2, 3}));
    EXPECT_NE(j["intervention"]["loss_change"].get<double>(), 0.0);
}

// Each bad input ends the command with exit code 1 and one line naming the problem.
void expect_one_clear_error(const CommandResult& r, const std::string& message) {
    sinklab::testing::expect_one_clear_error(r, message, "probe");
}

TEST_F(ProbeCli, EmptyPromptFile) {
    const fs::path empty = write_text(dir_ / "empty.txt", "");
    expect_one_clear_error(run_sinklab(probe("--input natural:" + empty.string())), "the text is empty");
}

TEST_F(ProbeCli, IdOutsideTheVocabulary) {
    expect_one_clear_error(run_sinklab(probe("--input repeat:300")), "repeat:300: the id is outside the vocabulary");
}

TEST_F(ProbeCli, SequenceLongerThanTheLearnedPositions) {
    expect_one_clear_error(run_sinklab(probe("--input random --seq-len 65")),
                           "--seq-len 65: this model has 64 positions (learned positions");
}

TEST_F(ProbeCli, UnknownMetricName) {
    expect_one_clear_error(run_sinklab(probe("--input random --metrics sink,sinkhole")), "unknown metric 'sinkhole'");
}

TEST_F(ProbeCli, EpsOutsideTheUnitInterval) {
    for (const char* eps : {"0", "1.5", "-1"})
        expect_one_clear_error(run_sinklab(probe(std::string("--input random --eps ") + eps)),
                               std::string("--eps ") + eps + ": the Sink threshold must lie in (0, 1)");
}

// GPT-2's tokenizer (50,257 ids) on a byte model (257): one line naming the flag, for probe,
// analyze and report alike.
TEST_F(ProbeCli, TokenizerThatDoesNotFitTheVocabulary) {
    const std::string gpt2 = std::string(SINKLAB_SOURCE_DIR) + "/tests/fixtures/tokenizers/gpt2";
    const std::string message = "--tokenizer " + gpt2 + ": its vocabulary has 50257 tokens but the model's has 257";
    expect_one_clear_error(run_sinklab(probe("--tokenizer " + gpt2)), message);
    expect_one_clear_error(run_sinklab("analyze --model " + model_.string() + " --samples 1 --seq-len 8 --tokenizer " + gpt2),
                           message);
    expect_one_clear_error(run_sinklab("report " + model_.string() + " --quiet --out " + (dir_ / "report").string() +
                                       " --tokenizer " + gpt2),
                           message);
    expect_one_clear_error(run_sinklab("report " + model_.string() + " --eps 0 --out " + (dir_ / "report").string()),
                           "--eps 0: the Sink threshold must lie in (0, 1)");
}

// --tokenizer replaces the model's own: natural input through it; a folder without one says to pass it.
TEST_F(ProbeCli, TokenizerFlagTokenizesNaturalInput) {
    const std::string hf = std::string(SINKLAB_SOURCE_DIR) + "/tests/fixtures/hf/gpt2";
    expect_one_clear_error(run_sinklab("probe --model " + hf + " --seq-len 8 --samples 1 --quiet"),
                           "--input natural needs a tokenizer and the model's folder has none: pass --tokenizer PATH");
    const std::string tok = std::string(SINKLAB_SOURCE_DIR) + "/tests/fixtures/llama2c/tok512.bin";
    const std::string model = std::string(SINKLAB_SOURCE_DIR) + "/tests/fixtures/llama2c/stories260K.bin";
    auto r = run_sinklab("probe --model " + model + " --tokenizer " + tok + " --input natural:" + prompts_.string() +
                         " --seq-len 16 --samples 2 --quiet --threads 2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("natural: 2 windows of 16 tokens from " + prompts_.string()), std::string::npos) << r.output;
}

TEST_F(ProbeCli, UnknownAttentionKernel) {
    const CommandResult r = run_sinklab(probe("--input random --attention-kernel flash"));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("--attention-kernel 'flash': expected auto, materialised or blockwise"), std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "one line: " << r.output;
}

// A RoPE model made for 16 positions probes 200 tokens: the positions extrapolate, and the output
// and the JSON say that T exceeds max_seq_len. Both kernels, every forced choice, agree.
TEST_F(ProbeCli, RopeModelsProbeBeyondMaxSeqLen) {
    const fs::path rope = make_model(dir_ / "rope", "llama", 16, 4);
    std::vector<double> alpha;
    for (const char* kernel : {"blockwise", "materialised"}) {
        const fs::path json = dir_ / (std::string("beyond_") + kernel + ".json");
        const CommandResult r = run_sinklab("probe --model " + rope.string() + " --quiet --threads 2 --input random " +
                                            "--seq-len 200 --samples 2 --attention-kernel " + kernel + " --json " +
                                            json.string());
        ASSERT_EQ(r.exit_code, 0) << r.output;
        EXPECT_NE(r.output.find("T = 200 exceeds the model's max_seq_len 16"), std::string::npos) << r.output;
        const auto j = nlohmann::json::parse(read_file(json));
        EXPECT_EQ(j["beyond_max_seq_len"], true);
        EXPECT_EQ(j["max_seq_len"], 16);
        EXPECT_EQ(j["attention_path"], kernel);
        alpha.push_back(j["alpha_1"][1][0].get<double>());
    }
    EXPECT_NEAR(alpha[0], alpha[1], 1e-5);
}

// gpt-oss (tests/fixtures/gpt_oss: sliding layers 0 and 2 over 8 keys, full layers 1 and 3, learned
// sinks): probe writes each layer's window and the sliding and the full layers' sink numbers apart
// (the numbers themselves are checked against PyTorch in tests/probe/test_probe_gpt_oss.cpp);
// analyze and report run on it.
TEST_F(ProbeCli, GptOssLayerGroupsAnalyzeAndReport) {
    const fs::path gpt_oss = fs::path(SINKLAB_SOURCE_DIR) / "tests" / "fixtures" / "gpt_oss";
    const fs::path json = dir_ / "gpt_oss_probe.json";
    auto r = run_sinklab("probe --model " + gpt_oss.string() + " --quiet --threads 2 --input random --seq-len 24 " +
                         "--samples 3 --json " + json.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("sliding (window 8) layers (0,2): Sink_1 "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("full layers (1,3): Sink_1 "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("Sink_* %"), std::string::npos) << r.output;
    const auto j = nlohmann::json::parse(read_file(json));
    EXPECT_EQ(j["layer_windows"], nlohmann::json({8, 0, 8, 0}));
    ASSERT_EQ(j["layer_groups"].size(), 2u);
    EXPECT_EQ(j["layer_groups"][0]["attention"], "sliding");
    EXPECT_EQ(j["layer_groups"][0]["window"], 8);
    EXPECT_EQ(j["layer_groups"][0]["layers"], nlohmann::json({0, 2}));
    EXPECT_EQ(j["layer_groups"][1]["attention"], "full");
    EXPECT_EQ(j["layer_groups"][1]["layers"], nlohmann::json({1, 3}));
    for (const auto& group : j["layer_groups"])
        for (const char* key : {"sink_1", "alpha_1", "sink_star", "alpha_star"}) EXPECT_TRUE(group.contains(key)) << key;
    EXPECT_EQ(j["alpha_star"].size(), 4u);  // [layer][head]
    EXPECT_TRUE(j["definitions"].contains("layer_groups"));

    r = run_sinklab("analyze --model " + gpt_oss.string() + " --threads 2 --input random --samples 2 --seq-len 16");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    r = run_sinklab("report " + gpt_oss.string() + " --quiet --threads 2 --inputs random --samples 2 --seq-len 16 " +
                    "--analysis-samples 1 --out " + (dir_ / "gpt_oss_report").string());
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(fs::is_regular_file(dir_ / "gpt_oss_report" / "index.html"));
}

}  // namespace
}  // namespace sinklab::testing
