// Sweep files: expansion (grid, list, [[runs]]), run names, overrides, up-front validation with
// errors naming the key and the run, run records read back from logs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "../support/scratch_dir.h"
#include "core/error.h"
#include "train/sweep.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;

fs::path write(const fs::path& path, const std::string& text) {
    std::ofstream(path) << text;
    return path;
}

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

constexpr const char* kBase = "[base]\nd-model = 32\nlayers = 2\nheads = 2\nseq-len = 32\nsteps = 10\n";

TEST(Sweep, GridIsEveryCombinationInFileOrder) {
    const test::ScratchDir scratch;
    const fs::path& dir = scratch.path();
    // wd before lr: columns and names follow the file, not the alphabet
    const fs::path file = write(dir / "grid.toml", std::string(kBase) +
                                                       "[axes]\nmode = \"grid\"\nwd = [0.0, 0.1]\n"
                                                       "lr = [1e-3, 3e-3, 1e-2]\n");
    const SweepPlan plan = read_sweep(file, {});
    EXPECT_EQ(plan.keys, (std::vector<std::string>{"wd", "lr"}));
    ASSERT_EQ(plan.runs.size(), 6u);
    EXPECT_EQ(plan.runs[0].name, "wd=0,lr=0.001");
    EXPECT_EQ(plan.runs[1].name, "wd=0,lr=0.003");
    EXPECT_EQ(plan.runs[5].name, "wd=0.1,lr=0.01");
    EXPECT_FLOAT_EQ(plan.runs[5].config.wd, 0.1f);
    EXPECT_FLOAT_EQ(plan.runs[5].config.lr, 1e-2f);
    for (const SweepRun& run : plan.runs) {
        EXPECT_EQ(run.config.model.d_model, 32);
        EXPECT_EQ(run.config.seq_len, 32);
        EXPECT_EQ(run.config.steps, 10);
    }
}

TEST(Sweep, ListZipsTheAxes) {
    const test::ScratchDir scratch;
    const fs::path& dir = scratch.path();
    const fs::path file = write(dir / "list.toml", std::string(kBase) +
                                                       "[axes]\nmode = \"list\"\nattention = [\"softmax\", \"sigmoid\"]\n"
                                                       "window = [0, 16]\n");
    const SweepPlan plan = read_sweep(file, {});
    ASSERT_EQ(plan.runs.size(), 2u);
    EXPECT_EQ(plan.runs[0].name, "attention=softmax,window=0");
    EXPECT_EQ(plan.runs[1].name, "attention=sigmoid,window=16");
    EXPECT_EQ(plan.runs[1].config.model.attention.name(), "sigmoid");
    EXPECT_EQ(plan.runs[1].config.model.window, 16);

    const fs::path uneven = write(dir / "uneven.toml", std::string(kBase) +
                                                           "[axes]\nmode = \"list\"\nlr = [1e-3, 3e-3]\nwd = [0.1]\n");
    const std::string error = error_of([&] { read_sweep(uneven, {}); });
    EXPECT_TRUE(contains(error, "equal lengths: lr has 2 values, wd has 1")) << error;
}

TEST(Sweep, RunTablesAndTheirColumns) {
    const test::ScratchDir scratch;
    const fs::path& dir = scratch.path();
    const fs::path file = write(dir / "runs.toml", std::string(kBase) +
                                                       "[[runs]]\nattention = \"softmax\"\n"
                                                       "[[runs]]\nattention = \"sigmoid:-3.5\"\nd_model = 64\n");
    const SweepPlan plan = read_sweep(file, {});
    EXPECT_EQ(plan.keys, (std::vector<std::string>{"attention", "d-model"}));
    ASSERT_EQ(plan.runs.size(), 2u);
    EXPECT_EQ(plan.runs[0].name, "attention=softmax");
    EXPECT_EQ(plan.runs[1].name, "attention=sigmoid_-3.5,d-model=64");
    EXPECT_EQ(plan.runs[0].config.model.d_model, 32);
    EXPECT_EQ(plan.runs[1].config.model.d_model, 64);
    EXPECT_FLOAT_EQ(plan.runs[1].config.model.attention.sigmoid_bias, -3.5f);
}

TEST(Sweep, CommandLineOverridesTheBaseAndAxesOverrideBoth) {
    const test::ScratchDir scratch;
    const fs::path& dir = scratch.path();
    const fs::path file = write(dir / "s.toml", std::string(kBase) + "lr = 0.5\n[axes]\nseed = [1, 2]\n");
    const SweepPlan plan = read_sweep(file, {{"steps", "3"}, {"lr", "0.002"}, {"seed", "9"}, {"preset", "tiny"}});
    ASSERT_EQ(plan.runs.size(), 2u);
    for (const SweepRun& run : plan.runs) {
        EXPECT_EQ(run.config.steps, 3);
        EXPECT_FLOAT_EQ(run.config.lr, 0.002f);
        EXPECT_EQ(run.config.model.d_model, 32);  // a preset on the command line keeps the base's keys
    }
    EXPECT_EQ(plan.runs[0].config.seed, 1u);
    EXPECT_EQ(plan.runs[1].config.seed, 2u);
}

TEST(Sweep, RunNamesAreSafeFolderNames) {
    EXPECT_EQ(sweep_run_name({{"data", "/tmp/my corpus.txt"}, {"lr", "0.001"}}), "data=_tmp_my_corpus.txt,lr=0.001");
    EXPECT_EQ(sweep_run_name({}), "base");
    const test::ScratchDir scratch;
    const fs::path& dir = scratch.path();
    const fs::path file = write(dir / "s.toml", std::string(kBase) + "[axes]\nattention = [\"sigmoid:1\", \"sigmoid:1\"]\n");
    const std::string error = error_of([&] { read_sweep(file, {}); });
    EXPECT_TRUE(contains(error, "runs 1 and 2 have the same name 'attention=sigmoid_1'")) << error;
}

// Every bad input is found before anything trains, with the key and the run named.
TEST(Sweep, BadInputNamesTheKeyAndTheRun) {
    const test::ScratchDir scratch;
    const fs::path& dir = scratch.path();
    auto error_for = [&](const std::string& name, const std::string& text) {
        return error_of([&] { read_sweep(write(dir / name, text), {}); });
    };
    std::string e = error_for("base.toml", "[base]\nlearning_rate = 0.1\n[axes]\nlr = [1e-3]\n");
    EXPECT_TRUE(contains(e, "base.toml [base]") && contains(e, "unknown key 'learning_rate'")) << e;
    e = error_for("axis.toml", std::string(kBase) + "[axes]\nlearning_rate = [1e-3]\n");
    EXPECT_TRUE(contains(e, "axis.toml [axes]") && contains(e, "unknown key 'learning_rate'")) << e;
    e = error_for("design.toml", std::string(kBase) + "[axes]\nattention = [\"softmax\", \"sigmoid\", \"nope\"]\n");
    EXPECT_TRUE(contains(e, "run 3 of 3 (attention=nope)") && contains(e, "unknown attention design 'nope'")) << e;
    e = error_for("window.toml", std::string(kBase) + "[axes]\nwindow = [8, 64]\n");
    EXPECT_TRUE(contains(e, "run 2 of 2 (window=64)") && contains(e, "window (64) is longer than seq-len (32)")) << e;
    e = error_for("prefix.toml", std::string(kBase) + "[axes]\nmode = \"list\"\nprefix = [4, 40]\n");
    EXPECT_TRUE(contains(e, "run 2 of 2 (prefix=40)") && contains(e, "prefix (40) is longer than seq-len (32)")) << e;
    e = error_for("value.toml", std::string(kBase) + "[axes]\nlr = [1e-3, \"fast\"]\n");
    EXPECT_TRUE(contains(e, "run 2 of 2 (lr=fast)") && contains(e, "lr: expected a number, got 'fast'")) << e;
    e = error_for("broken.toml", std::string(kBase) + "[axes]\nlr = [1e-3,\n");
    EXPECT_TRUE(contains(e, "broken.toml:") && contains(e, "not valid TOML")) << e;
    e = error_for("both.toml", std::string(kBase) + "[axes]\nlr = [1e-3]\n[[runs]]\nlr = 1e-3\n");
    EXPECT_TRUE(contains(e, "either [axes]") && contains(e, "not both")) << e;
    e = error_for("none.toml", kBase);
    EXPECT_TRUE(contains(e, "has neither")) << e;
    e = error_for("scalar.toml", std::string(kBase) + "[axes]\nlr = 1e-3\n");
    EXPECT_TRUE(contains(e, "lr must be a list of values")) << e;
    e = error_for("mode.toml", std::string(kBase) + "[axes]\nmode = \"zip\"\nlr = [1e-3]\n");
    EXPECT_TRUE(contains(e, "mode must be \"grid\"")) << e;
    e = error_for("top.toml", std::string(kBase) + "[axis]\nlr = [1e-3]\n");
    EXPECT_TRUE(contains(e, "unknown key 'axis'")) << e;
    e = error_for("runkey.toml", std::string(kBase) + "[[runs]]\nlr = 1e-3\n[[runs]]\nrate = 2\n");
    EXPECT_TRUE(contains(e, "[[runs]] #2") && contains(e, "unknown key 'rate'")) << e;
    e = error_of([&] { read_sweep(dir / "missing.toml", {}); });
    EXPECT_TRUE(contains(e, "missing.toml: no such file")) << e;
    e = error_of([&] { read_sweep(write(dir / "ok.toml", std::string(kBase) + "[axes]\nlr = [1e-3]\n"), {{"heads", "5"}}); });
    EXPECT_TRUE(contains(e, "run 1 of 1") && contains(e, "heads (5) must divide d_model (32)")) << e;
}

TEST(Sweep, RunRecordsComeFromTheLog) {
    const test::ScratchDir scratch;
    const fs::path& dir = scratch.path();
    EXPECT_FALSE(read_run_record(dir / "nothing").has_value());
    fs::create_directories(dir / "ok");
    write(dir / "ok" / "train_log.jsonl",
          "{\"event\":\"start\",\"step\":0,\"params\":1234,\"config\":{}}\n"
          "{\"step\":5,\"loss\":2.5}\n"
          "{\"step\":5,\"val_loss\":2.25,\"sink1\":12.5,\"massive_ratio\":40.0,\"final\":true,\"tokens_per_s\":900.0}\n");
    const std::optional<RunRecord> ok = read_run_record(dir / "ok");
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(ok->status, "ok");
    EXPECT_EQ(ok->steps, 5);
    EXPECT_EQ(ok->params, 1234);
    EXPECT_EQ(ok->val_loss, 2.25);
    EXPECT_EQ(ok->sink1, 12.5);
    EXPECT_EQ(ok->massive_ratio, 40.0);
    EXPECT_EQ(ok->tokens_per_s, 900.0);
    EXPECT_FALSE(ok->sink_star.has_value());

    fs::create_directories(dir / "diverged");
    write(dir / "diverged" / "train_log.jsonl",
          "{\"event\":\"start\",\"step\":0,\"params\":10,\"config\":{}}\n"
          "{\"step\":3,\"diverged\":true,\"reason\":\"loss is nan\"}\n");
    EXPECT_EQ(read_run_record(dir / "diverged")->status, "diverged at step 3: loss is nan");

    fs::create_directories(dir / "running");
    write(dir / "running" / "train_log.jsonl", "{\"event\":\"start\",\"step\":0,\"params\":10,\"config\":{}}\n{\"step\":1,");
    EXPECT_FALSE(read_run_record(dir / "running").has_value());

    SweepRow row{"lr=0.1", {{"lr", "0.1"}, {"wd", ""}}, *ok};
    const nlohmann::ordered_json j = row.to_json();
    std::vector<std::string> columns;
    for (const auto& [key, value] : j.items()) columns.push_back(key);
    EXPECT_EQ(columns, (std::vector<std::string>{"run", "lr", "wd", "status", "val_loss", "sink_star", "sink1",
                                                 "massive_ratio", "tokens_per_s", "steps", "params"}));
    EXPECT_TRUE(j["sink_star"].is_null());
}

TEST(Sweep, UnigramEntropyInNats) {
    EXPECT_DOUBLE_EQ(unigram_entropy({'a', 'a', 'a'}), 0.0);
    EXPECT_NEAR(unigram_entropy({'a', 'b', 'a', 'b'}), std::log(2.0), 1e-12);
    EXPECT_NEAR(unigram_entropy({'a', 'b', 'c', 'd'}), std::log(4.0), 1e-12);
}

TEST(Sweep, ShippedSweepsAreValid) {
    const fs::path sweeps = fs::path(SINKLAB_SOURCE_DIR) / "sweeps";
    const SweepPlan designs = read_sweep(sweeps / "attention-designs.toml", {});
    std::vector<std::string> names;
    for (const SweepRun& run : designs.runs) names.push_back(run.config.model.attention.name());
    EXPECT_EQ(names, AttentionSpec::known_names());
    const SweepPlan optimisation = read_sweep(sweeps / "optimisation.toml", {});
    EXPECT_EQ(optimisation.keys, (std::vector<std::string>{"lr", "wd"}));
    EXPECT_EQ(optimisation.runs.size(), 9u);
}

}  // namespace
}  // namespace sinklab
