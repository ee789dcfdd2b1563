#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../support/scratch_dir.h"
#include "core/error.h"
#include "train/adamw.h"
#include "train/data.h"
#include "train/train_config.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(TrainConfig, PresetsMatchTheIssue) {
    TrainConfig tiny = preset_config("tiny");
    EXPECT_EQ(tiny.model.d_model, 128);
    EXPECT_EQ(tiny.model.n_layers, 4);
    EXPECT_EQ(tiny.model.n_heads, 4);
    EXPECT_EQ(tiny.seq_len, 256);
    EXPECT_EQ(tiny.batch, 16);
    EXPECT_FLOAT_EQ(tiny.lr, 1e-3f);
    EXPECT_FLOAT_EQ(tiny.min_lr, 1e-4f);
    TrainConfig small = preset_config("small");
    EXPECT_EQ(small.model.d_model, 384);
    EXPECT_EQ(small.model.n_layers, 6);
    EXPECT_EQ(small.model.n_heads, 6);
    EXPECT_EQ(small.batch, 8);
    EXPECT_FLOAT_EQ(small.lr, 6e-4f);
    EXPECT_FLOAT_EQ(small.min_lr, 6e-5f);
    for (const auto& c : {tiny, small}) {
        EXPECT_EQ(c.model.style, "gpt2");
        EXPECT_EQ(c.model.vocab_size, 256);
        EXPECT_FALSE(c.bos);
        EXPECT_FLOAT_EQ(c.wd, 0.1f);
        EXPECT_FLOAT_EQ(c.clip, 1.0f);
        EXPECT_EQ(c.warmup, 50);
        EXPECT_FALSE(c.model.tied_embeddings);
    }
}

TEST(TrainConfig, TomlThenFlagsWithPresetFirst) {
    const test::ScratchDir scratch;
    const fs::path& dir = scratch.path();
    write(dir / "run.toml", "lr = 3e-3\npreset = \"small\"\n[model]\nd_model = 96\nheads = 3\nbos = true\n");
    TrainConfig c = preset_config("tiny");
    apply_settings(c, read_toml_settings(dir / "run.toml"), "run.toml");
    EXPECT_EQ(c.preset, "small");
    EXPECT_FLOAT_EQ(c.lr, 3e-3f);
    EXPECT_EQ(c.model.d_model, 96);
    EXPECT_EQ(c.model.n_heads, 3);
    EXPECT_EQ(c.model.n_kv_heads, 3);
    EXPECT_TRUE(c.bos);
    apply_settings(c, {{"lr", "1e-4"}}, "command line");
    EXPECT_FLOAT_EQ(c.lr, 1e-4f);
    c.validate();
}

TEST(TrainConfig, BadInputNamesTheKey) {
    const test::ScratchDir scratch;
    const fs::path& dir = scratch.path();
    write(dir / "bad.toml", "lr = = 3\n");
    EXPECT_NE(error_of([&] { read_toml_settings(dir / "bad.toml"); }).find("bad.toml"), std::string::npos);
    TrainConfig c = preset_config("tiny");
    EXPECT_NE(error_of([&] { apply_settings(c, {{"learning-rate", "1"}}, "command line"); }).find("learning-rate"),
              std::string::npos);
    EXPECT_NE(error_of([&] { apply_settings(c, {{"lr", "fast"}}, "command line"); }).find("lr"), std::string::npos);
    apply_settings(c, {{"heads", "5"}}, "command line");
    EXPECT_NE(error_of([&] { c.validate(); }).find("heads (5) must divide d_model (128)"), std::string::npos);
    EXPECT_NE(error_of([] { preset_config("huge"); }).find("unknown preset 'huge'"), std::string::npos);
}

// A run's trainer_state.json is read back by `stream` (what the model trained on) and by --resume:
// a val_fraction outside (0, 1) would size the validation split past the text.
TEST(TrainConfig, RecordedTrainerStateIsCheckedWhenReadBack) {
    const test::ScratchDir scratch;
    const fs::path state = scratch / "trainer_state.json";
    nlohmann::json recorded = preset_config("tiny").to_json();
    write(state, nlohmann::json{{"train_config", recorded}}.dump());
    EXPECT_EQ(recorded_train_config(state, "stream").val_fraction, preset_config("tiny").val_fraction);
    for (double bad : {1e30, 1.0, 0.0, -0.5}) {
        recorded["val_fraction"] = bad;
        write(state, nlohmann::json{{"train_config", recorded}}.dump());
        EXPECT_NE(error_of([&] { recorded_train_config(state, "stream"); }).find("val_fraction must be in (0, 1)"),
                  std::string::npos)
            << bad;
    }
    write(state, "[1, 2]");
    EXPECT_NE(error_of([&] { recorded_train_config(state, "stream"); }).find("trainer_state.json: not a trainer state"),
              std::string::npos);
}

TEST(TrainConfig, WindowPatternRepeatsOverTheLayersAndRoundTrips) {
    TrainConfig c = preset_config("tiny");  // 4 layers
    apply_settings(c, {{"window-pattern", "sliding:16,full"}}, "command line");
    EXPECT_EQ(c.window_pattern, (std::vector<int>{16, 0}));
    EXPECT_EQ(c.model.layer_windows, (std::vector<int>{16, 0, 16, 0}));
    // the layer count given after the pattern (a TOML file's order is not the user's) still expands it
    apply_settings(c, {{"layers", "5"}}, "command line");
    EXPECT_EQ(c.model.layer_windows, (std::vector<int>{16, 0, 16, 0, 16}));
    c.validate();
    EXPECT_EQ(c.to_json()["window_pattern"], "sliding:16,full");
    const TrainConfig back = train_config_from_json(c.to_json(), "config.json");
    EXPECT_EQ(back.window_pattern, c.window_pattern);
    EXPECT_EQ(window_pattern_string({0, 128, 7}), "full,sliding:128,sliding:7");
    EXPECT_EQ(expand_window_pattern({1, 2, 3}, 2), (std::vector<int>{1, 2}));
    // runs without the option write no key, so that their settings compare equal to older runs'
    EXPECT_FALSE(preset_config("tiny").to_json().contains("window_pattern"));
}

TEST(TrainConfig, BadWindowPatternNamesTheFlagAndTheItem) {
    for (const char* bad : {"sliding:0", "sliding:", "sliding:12x", "window:8", "full,", "", "sliding:-3,full", "Full"}) {
        TrainConfig c = preset_config("tiny");
        const std::string error = error_of([&] { apply_settings(c, {{"window-pattern", bad}}, "command line"); });
        EXPECT_NE(error.find("window-pattern"), std::string::npos) << bad << ": " << error;
    }
    TrainConfig c = preset_config("tiny");
    apply_settings(c, {{"window-pattern", "sliding:300,full"}}, "command line");
    EXPECT_NE(error_of([&] { c.validate(); }).find("a window of 300 is longer than seq-len (256)"), std::string::npos);
    apply_settings(c, {{"window-pattern", "sliding:32,full"}, {"window", "8"}}, "command line");
    EXPECT_NE(error_of([&] { c.validate(); }).find("give one"), std::string::npos);
}

TEST(ByteData, WindowsWithAndWithoutBos) {
    const uint8_t bytes[] = {10, 11, 12, 13, 14};
    int32_t tokens[4], targets[4];
    fill_window(bytes, 4, false, tokens, targets);
    EXPECT_EQ(std::vector<int32_t>(tokens, tokens + 4), (std::vector<int32_t>{10, 11, 12, 13}));
    EXPECT_EQ(std::vector<int32_t>(targets, targets + 4), (std::vector<int32_t>{11, 12, 13, 14}));
    fill_window(bytes, 4, true, tokens, targets);
    EXPECT_EQ(std::vector<int32_t>(tokens, tokens + 4), (std::vector<int32_t>{kByteBos, 10, 11, 12}));
    EXPECT_EQ(std::vector<int32_t>(targets, targets + 4), (std::vector<int32_t>{10, 11, 12, 13}));
}

TEST(ByteData, ValidationWindowsCoverTheSplitWithoutOverlap) {
    // 1001 bytes, T = 100, no BOS: windows at 0, 100, ..., 900 (each reads 101 bytes).
    auto all = validation_windows(1001, 100, false, 0);
    ASSERT_EQ(all.size(), 10u);
    EXPECT_EQ(all.back(), 900u);
    EXPECT_EQ(validation_windows(1000, 100, false, 0).size(), 9u);
    EXPECT_EQ(validation_windows(1000, 100, true, 0).size(), 10u);
    auto some = validation_windows(1001, 100, false, 3);
    EXPECT_EQ(some, (std::vector<size_t>{0, 300, 600}));
}

TEST(ByteData, FolderConcatenatesTxtInNameOrderAndSplits) {
    const test::ScratchDir scratch;
    const fs::path& dir = scratch.path();
    write(dir / "b.txt", "BBBBB");
    write(dir / "a.txt", "AAAAA");
    write(dir / "ignored.md", "xxxx");
    ByteCorpus c = load_byte_corpus(dir, 0.2);
    EXPECT_EQ(std::string(c.train.begin(), c.train.end()), "AAAAABBB");
    EXPECT_EQ(std::string(c.val.begin(), c.val.end()), "BB");
}

TEST(ByteData, MissingOrEmptyDataIsAClearError) {
    const test::ScratchDir scratch;
    const fs::path& dir = scratch.path();
    EXPECT_NE(error_of([&] { load_byte_corpus(dir / "nope", 0.05); }).find("no such file"), std::string::npos);
    EXPECT_NE(error_of([&] { load_byte_corpus(dir, 0.05); }).find("no *.txt files"), std::string::npos);
    write(dir / "empty.txt", "");
    EXPECT_NE(error_of([&] { load_byte_corpus(dir / "empty.txt", 0.05); }).find("no data"), std::string::npos);
}

TEST(Schedule, WarmupThenCosineToMinimum) {
    EXPECT_FLOAT_EQ(learning_rate_at(1, 10, 110, 1.0f, 0.1f), 0.1f);
    EXPECT_FLOAT_EQ(learning_rate_at(10, 10, 110, 1.0f, 0.1f), 1.0f);
    EXPECT_NEAR(learning_rate_at(60, 10, 110, 1.0f, 0.1f), 0.55f, 1e-6);
    EXPECT_FLOAT_EQ(learning_rate_at(110, 10, 110, 1.0f, 0.1f), 0.1f);
}

}  // namespace
}  // namespace sinklab
