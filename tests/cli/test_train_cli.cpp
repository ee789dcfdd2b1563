// End-to-end tests of `sinklab train`: exact resume after SIGKILL, --steps 0, bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_test_support.h"

namespace sinklab::testing {
namespace {

namespace fs = std::filesystem;

// A small corpus and a small model so that a run takes a second.
fs::path make_corpus(const fs::path& dir) { return write_corpus(dir, 400); }

std::string small_run_flags(const fs::path& data, int steps = 24) {
    return "--data " + data.string() + " --steps " + std::to_string(steps) +
           " --d-model 32 --layers 2 --heads 2 --seq-len 32 --batch 4 --warmup 4 --eval-every 6"
           " --eval-windows 8 --threads 2 --quiet";
}

// Per step of the run in `run`: the training loss and, at evaluations, the validation loss and Sink_1.
std::vector<std::string> loss_curve(const fs::path& run) {
    std::vector<std::string> curve;
    for (const nlohmann::json& j : train_log_lines(run)) {
        if (j.contains("loss")) curve.push_back(std::to_string(j["step"].get<long>()) + " loss " + j["loss"].dump());
        if (j.contains("val_loss"))
            curve.push_back(std::to_string(j["step"].get<long>()) + " val " + j["val_loss"].dump() + " sink1 " +
                            j["sink1"].dump() + " alpha " + j["alpha1_per_layer"].dump());
    }
    return curve;
}

TEST(TrainCli, ResumeAfterSigkillGivesTheUninterruptedCurve) {
    fs::path dir = fresh_temp_dir("resume");
    fs::path data = make_corpus(dir);
    auto full = run_sinklab("train " + small_run_flags(data) + " --out " + (dir / "full").string());
    ASSERT_EQ(full.exit_code, 0) << full.output;

    // Killed after step 15: the last checkpoint is step 12, so steps 13-15 are redone on resume.
    auto killed = run_sinklab("train " + small_run_flags(data) + " --out " + (dir / "killed").string() +
                              " --kill-after-step 15");
    ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.output;
    EXPECT_FALSE(fs::exists(dir / "killed" / "checkpoint.tmp"));
    auto resumed = run_sinklab("train --quiet --resume " + (dir / "killed").string());
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;

    auto expected = loss_curve(dir / "full");
    auto got = loss_curve(dir / "killed");
    ASSERT_GT(expected.size(), 24u);
    EXPECT_EQ(got, expected);
    EXPECT_EQ(read_file(dir / "full" / "checkpoint" / "model.safetensors"),
              read_file(dir / "killed" / "checkpoint" / "model.safetensors"));
}

TEST(TrainCli, StepsZeroSavesTheInitialisedModel) {
    fs::path dir = fresh_temp_dir("steps0");
    fs::path data = make_corpus(dir);
    auto r = run_sinklab("train --data " + data.string() + " --d-model 32 --layers 1 --heads 2 --seq-len 32 --steps 0 --quiet --out " +
                         (dir / "run").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(fs::exists(dir / "run" / "checkpoint" / "config.json"));
    EXPECT_TRUE(fs::exists(dir / "run" / "checkpoint" / "model.safetensors"));
    auto last = loss_curve(dir / "run");
    ASSERT_EQ(last.size(), 1u);
    EXPECT_EQ(last[0].rfind("0 val ", 0), 0u);
}

// --window-pattern: the model's config holds the expanded per-layer windows, the run's state the
// pattern (so that --resume keeps it), and a probe of the run reports the sliding and the full
// layers apart; gpt-oss's design (score_bias) trains under it.
TEST(TrainCli, WindowPatternTrainsAlternatingLayers) {
    fs::path dir = fresh_temp_dir("window_pattern");
    fs::path data = make_corpus(dir);
    auto r = run_sinklab("train " + small_run_flags(data, 6) + " --layers 3 --attention score_bias --window-pattern "
                         "sliding:8,full --out " + (dir / "run").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto config = nlohmann::json::parse(read_file(dir / "run" / "checkpoint" / "config.json"));
    EXPECT_EQ(config["sinklab"]["layer_windows"], nlohmann::json({8, 0, 8})) << config.dump();
    const auto state = nlohmann::json::parse(read_file(dir / "run" / "checkpoint" / "trainer_state.json"));
    EXPECT_EQ(state["train_config"]["window_pattern"], "sliding:8,full");
    r = run_sinklab("probe --model " + (dir / "run").string() + " --quiet --threads 2 --input random --seq-len 32 "
                    "--samples 2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("sliding (window 8) layers (0,2)"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("full layers (1)"), std::string::npos) << r.output;
}

// One clear line naming the problem, a non-zero exit, and nothing half-written.
void expect_clean_failure(const CommandResult& r, const std::string& needle) {
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(TrainCli, BadInputIsOneClearError) {
    fs::path dir = fresh_temp_dir("bad");
    fs::path data = make_corpus(dir);
    expect_clean_failure(run_sinklab("train --quiet --data " + (dir / "missing.txt").string() + " --out " + (dir / "a").string()),
                         (dir / "missing.txt").string() + ": no such file");
    std::ofstream(dir / "empty.txt").close();
    expect_clean_failure(run_sinklab("train --quiet --data " + (dir / "empty.txt").string() + " --out " + (dir / "b").string()),
                         "empty.txt: no data");
    expect_clean_failure(run_sinklab("train --quiet --heads 5 --data " + data.string() + " --out " + (dir / "c").string()),
                         "heads (5) must divide d_model (128)");
    std::ofstream(dir / "bad.toml") << "learning_rate = 0.1\n";
    expect_clean_failure(run_sinklab("train --quiet " + (dir / "bad.toml").string() + " --out " + (dir / "d").string()),
                         "unknown key 'learning_rate'");
    std::ofstream(dir / "broken.toml") << "lr = [\n";
    expect_clean_failure(run_sinklab("train --quiet " + (dir / "broken.toml").string() + " --out " + (dir / "e").string()),
                         "broken.toml:");
    EXPECT_FALSE(fs::exists(dir / "c" / "checkpoint"));

    // A corrupt checkpoint: resume names the file and leaves the run untouched.
    auto ok = run_sinklab("train " + small_run_flags(data, 6) + " --out " + (dir / "run").string());
    ASSERT_EQ(ok.exit_code, 0) << ok.output;
    fs::path weights = dir / "run" / "checkpoint" / "model.safetensors";
    fs::resize_file(weights, fs::file_size(weights) / 2);
    const std::string before = read_file(dir / "run" / "train_log.jsonl");
    expect_clean_failure(run_sinklab("train --quiet --resume " + (dir / "run").string()), "model.safetensors");
    EXPECT_EQ(read_file(dir / "run" / "train_log.jsonl"), before);
    expect_clean_failure(run_sinklab("train --quiet --resume " + (dir / "nowhere").string()), "no such file");
}

}  // namespace
}  // namespace sinklab::testing
