// End-to-end tests of `sinklab perturb`: the table and JSON of several models with and without their
// sink, prompt edits, and one clear error per bad input.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/cli_test_support.h"

namespace sinklab::testing {
namespace {

namespace fs = std::filesystem;

class PerturbCli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = fresh_temp_dir("perturb");
        softmax_ = make_byte_model(dir_, "softmax");
        kv_bias_ = make_byte_model(dir_, "kv_bias", "kv_bias");
        std::string text;
        for (int i = 0; i < 100; ++i) text += "The quick brown fox jumps over the lazy dog. ";
        data_ = dir_ / "text.txt";
        std::ofstream(data_) << text;
    }
    static std::string perturb(const fs::path& model, const std::string& flags) {
        return "perturb --model " + model.string() + " --quiet --threads 2 " + flags;
    }
    static inline fs::path dir_, softmax_, kv_bias_, data_;
};

TEST_F(PerturbCli, SeveralModelsWithAndWithoutTheirSinkInOneTable) {
    const fs::path json = dir_ / "mixing.json";
    auto r = run_sinklab("perturb --model " + softmax_.string() + " " + kv_bias_.string() +
                         " --quiet --random 12 --per-window 3 --seq-len 32 --data " + data_.string() +
                         " --without-sink drop-bos,mask-first:1 --json " + json.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const char* text : {"with sink", "drop-bos", "mask-first:1", "resid mean", "d=17+", "kv_bias"})
        EXPECT_NE(r.output.find(text), std::string::npos) << text << "\n" << r.output;
    const auto j = nlohmann::json::parse(read_file(json));
    EXPECT_EQ(j["schema"], "sinklab.perturb/1");
    ASSERT_EQ(j["models"].size(), 2u);
    const auto& runs = j["models"][1]["runs"];
    ASSERT_EQ(runs.size(), 3u);
    EXPECT_EQ(runs[0]["sink"], "with sink");
    EXPECT_EQ(runs[1]["sink"], "drop-bos");
    EXPECT_EQ(runs[1]["seq_len"], 31);  // BOS left out
    EXPECT_EQ(runs[0]["perturbations"], 12);
    EXPECT_EQ(runs[0]["windows"], 4);
    EXPECT_EQ(runs[0]["residual"].size(), 2u);        // [layer]
    EXPECT_EQ(runs[0]["head"][0].size(), 2u);         // [layer][head]
    EXPECT_EQ(runs[0]["residual_by_distance"][0].size(), 31u);
    EXPECT_EQ(runs[0]["residual_by_position"][0].size(), 32u);
    EXPECT_GT(runs[0]["residual"][1]["mean"].get<double>(), 0.0);
    EXPECT_TRUE(j["definitions"].contains("residual"));
    EXPECT_EQ(j["parameters"]["without_sink"], (std::vector<std::string>{"drop-bos", "mask-first:1"}));
}

TEST_F(PerturbCli, MaskSlotRunsOnASlotDesign) {
    auto r = run_sinklab(perturb(kv_bias_, "--random 4 --seq-len 16 --data " + data_.string() +
                                               " --without-sink mask-slot"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("mask-slot"), std::string::npos) << r.output;
}

TEST_F(PerturbCli, PromptEditsAndIdenticalPrompts) {
    const fs::path json = dir_ / "prompt.json";
    auto r = run_sinklab(perturb(softmax_, "--prompt 'the greatest day of the year' --replace greatest=smallest --json " +
                                               json.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto j = nlohmann::json::parse(read_file(json));
    const auto& run = j["models"][0]["runs"][0];
    EXPECT_EQ(j["models"][0]["prompt_ids"].size(), 29u);  // BOS and 28 bytes
    // "greatest" and "smallest" differ from their first byte to their fifth, at positions 6..10 (BOS is 1)
    EXPECT_EQ(run["residual"][0]["count"], 29 - 10);
    EXPECT_GT(run["residual"][0]["mean"].get<double>(), 0.0);
    EXPECT_EQ(run["residual_by_position"][0][0], 0.0);

    r = run_sinklab(perturb(softmax_, "--prompt 'the greatest day' --replace day=day --json " + json.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    j = nlohmann::json::parse(read_file(json));
    for (const auto& layer : j["models"][0]["runs"][0]["residual"]) EXPECT_EQ(layer["mean"], 0.0);

    r = run_sinklab(perturb(softmax_, "--prompt 'the greatest day' --position 5 --token 65"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
}

// Each bad input ends the command with exit code 1 and one line naming the problem.
void expect_one_clear_error(const CommandResult& r, const std::string& message,
                            const std::string& module = "perturb") {
    sinklab::testing::expect_one_clear_error(r, message, module);
}

TEST_F(PerturbCli, ReplacedWordIsAbsent) {
    expect_one_clear_error(run_sinklab(perturb(softmax_, "--prompt 'the greatest day' --replace best=good")),
                           "--replace 'best=good': 'best' does not occur in the prompt");
}

TEST_F(PerturbCli, ReplacementOfAnotherLength) {
    expect_one_clear_error(run_sinklab(perturb(softmax_, "--prompt 'the greatest day' --replace greatest=best")),
                           "makes 17 tokens of the prompt and 13 of the edited one");
}

TEST_F(PerturbCli, PositionOutsideThePrompt) {
    expect_one_clear_error(run_sinklab(perturb(softmax_, "--prompt 'the day' --position 9 --token 65")),
                           "--position 9: the prompt has 8 tokens");
}

TEST_F(PerturbCli, TokenOutsideTheVocabulary) {
    expect_one_clear_error(run_sinklab(perturb(softmax_, "--prompt 'the day' --position 3 --token 257")),
                           "--token 257: outside the vocabulary");
}

TEST_F(PerturbCli, MaskSlotWithoutASlot) {
    expect_one_clear_error(run_sinklab(perturb(softmax_, "--random 4 --seq-len 16 --data " + data_.string() +
                                                             " --without-sink mask-slot")),
                           "--without-sink mask-slot: " + softmax_.string() + " (attention 'softmax') has no slot");
}

TEST_F(PerturbCli, MaskFirstZero) {
    expect_one_clear_error(run_sinklab(perturb(softmax_, "--without-sink mask-first:0")), "K must be at least 1",
                           "model");
}

TEST_F(PerturbCli, ProbeInterventionsTakeTheSinkAway) {
    auto r = run_sinklab("probe --model " + softmax_.string() + " --quiet --input natural:" + data_.string() +
                         " --seq-len 32 --samples 4 --intervene mask-first:1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("intervention: mask-first:1: loss"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("Sink_1"), std::string::npos) << r.output;
    expect_one_clear_error(run_sinklab("probe --model " + softmax_.string() + " --intervene mask-first:0"),
                           "K must be at least 1", "model");
    expect_one_clear_error(run_sinklab("probe --model " + softmax_.string() + " --input natural:" + data_.string() +
                                       " --intervene mask-slot"),
                           "has no slot column or sink token to remove", "probe");
}

}  // namespace
}  // namespace sinklab::testing
