// Nothing lost, nothing stuck: a run killed before its first checkpoint starts over, a run that
// spikes stops with its last good checkpoint intact and loadable, a checkpoint that cannot be
// written (a file-size limit standing in for a full disk) keeps the previous one, and checkpoints
// also come by wall-clock time.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../support/measured_run.h"
#include "../support/scratch_dir.h"
#include "cli/cli_test_support.h"
#include "model/checkpoint.h"

namespace sinklab::testing {
namespace {

namespace fs = std::filesystem;

std::string run_flags(const fs::path& data, int steps) {
    return "--data " + data.string() + " --steps " + std::to_string(steps) +
           " --d-model 32 --layers 2 --heads 2 --seq-len 32 --batch 4 --warmup 4 --eval-every 6"
           " --eval-windows 8 --threads 2";
}

// The training losses of a log, by step, as text (bit-exact comparisons).
std::vector<std::string> losses(const fs::path& run) {
    std::vector<std::string> out;
    for (const auto& j : train_log_lines(run))
        if (j.contains("loss")) out.push_back(j["step"].dump() + " " + j["loss"].dump());
    return out;
}

long checkpoint_step(const fs::path& run) {
    return nlohmann::json::parse(read_file(run / "checkpoint" / "trainer_state.json"))["step"].get<long>();
}

TEST(TrainFaults, KilledBeforeTheFirstCheckpointResumesByStartingOver) {
    test::ScratchDir dir;
    const fs::path data = write_corpus(dir.path(), 400);
    const CommandResult full = run_sinklab("train --quiet " + run_flags(data, 12) + " --out " + (dir / "full").string());
    ASSERT_EQ(full.exit_code, 0) << full.output;

    for (const char* how : {"--resume", "--out"}) {
        SCOPED_TRACE(how);
        const fs::path run = dir / (std::string("killed") + how);
        const CommandResult killed =
            run_sinklab("train --quiet " + run_flags(data, 12) + " --out " + run.string() + " --kill-after-step 0");
        ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.output;
        ASSERT_TRUE(fs::exists(run / "train_log.jsonl"));
        ASSERT_FALSE(fs::exists(run / "checkpoint"));
        const std::string again = std::string(how) == "--resume"
                                      ? "train --quiet --resume " + run.string()
                                      : "train --quiet " + run_flags(data, 12) + " --out " + run.string();
        const CommandResult resumed = run_sinklab(again);
        ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
        EXPECT_NE(resumed.output.find(run.string() + ": the run there stopped before its first checkpoint; starting "
                                                     "over from step 0"),
                  std::string::npos)
            << resumed.output;
        EXPECT_EQ(losses(run), losses(dir / "full"));
        EXPECT_EQ(read_file(run / "checkpoint" / "model.safetensors"),
                  read_file(dir / "full" / "checkpoint" / "model.safetensors"));
    }
}

TEST(TrainFaults, ASpikeStopsTheRunAndKeepsTheLastGoodCheckpoint) {
    test::ScratchDir dir;
    const fs::path data = write_corpus(dir.path(), 400);
    const fs::path run = dir / "spike";
    // Progress lines on (stderr is a pipe: one plain line per update), as a user sees them.
    const CommandResult r = run_sinklab("train " + run_flags(data, 24) + " --lr 1e4 --out " + run.string());
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("error: [train] " + run.string() + ": diverged at step "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("the last good checkpoint, " + (run / "checkpoint").string() + " (step 0), is kept"),
              std::string::npos)
        << r.output;
    // The progress line of the run ends with "diverged" and does not claim the steps it never took.
    const size_t progress_end = r.output.find("  diverged\n");
    ASSERT_NE(progress_end, std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("24/24"), std::string::npos) << r.output;

    const std::vector<nlohmann::json> lines = train_log_lines(run);
    ASSERT_FALSE(lines.empty());
    EXPECT_TRUE(lines.back().value("diverged", false)) << lines.back().dump();
    const long diverged_at = lines.back()["step"].get<long>();
    EXPECT_GT(diverged_at, 1);
    EXPECT_LT(diverged_at, 24);
    EXPECT_NE(lines.back()["reason"].get<std::string>().find("spike-factor 10"), std::string::npos)
        << lines.back().dump();

    // The checkpoint is the initial state, loads, and has finite weights.
    EXPECT_EQ(checkpoint_step(run), 0);
    const auto model = load_model_folder(run);
    for (size_t i = 0; i < model->num_params(); ++i) ASSERT_TRUE(std::isfinite(model->param_data()[i])) << i;
    const CommandResult probe =
        run_sinklab("probe --model " + run.string() + " --input random --samples 2 --seq-len 16 --quiet");
    EXPECT_EQ(probe.exit_code, 0) << probe.output;
}

TEST(TrainFaults, AFailingCheckpointWriteKeepsThePreviousOne) {
    test::ScratchDir dir;
    const fs::path data = write_corpus(dir.path(), 400);
    const fs::path run = dir / "run";
    // Checkpoints of the states after steps 0 and 6; killed after step 8.
    const CommandResult killed =
        run_sinklab("train --quiet " + run_flags(data, 24) + " --out " + run.string() + " --kill-after-step 8");
    ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.output;
    ASSERT_EQ(checkpoint_step(run), 6);
    const std::string weights_before = read_file(run / "checkpoint" / "model.safetensors");
    const std::string state_before = read_file(run / "checkpoint" / "trainer_state.json");
    ASSERT_GT(weights_before.size(), 64u * 1024);

    // The resumed run's next checkpoint (step 12) cannot be written under a 64 KiB file-size limit.
    const test::MeasuredRun resumed = test::run_measured(sinklab_binary() + " train --quiet --resume " + run.string(),
                                                         test::RunLimits{.file_size_bytes = 64 * 1024});
    EXPECT_EQ(resumed.exit_code, 1) << resumed.output;
    EXPECT_NE(resumed.output.find("error: [train] cannot write the checkpoint of step 12: "), std::string::npos)
        << resumed.output;
    EXPECT_NE(resumed.output.find("the previous checkpoint " + (run / "checkpoint").string() + " (step 6) is kept"),
              std::string::npos)
        << resumed.output;
    EXPECT_EQ(read_file(run / "checkpoint" / "model.safetensors"), weights_before);
    EXPECT_EQ(read_file(run / "checkpoint" / "trainer_state.json"), state_before);
    EXPECT_FALSE(fs::exists(run / "checkpoint.tmp"));

    // Without the limit the run resumes from step 6 and finishes.
    const CommandResult finished = run_sinklab("train --quiet --resume " + run.string());
    EXPECT_EQ(finished.exit_code, 0) << finished.output;
    EXPECT_EQ(checkpoint_step(run), 24);
}

TEST(TrainFaults, CheckpointsAlsoComeByWallClockTime) {
    test::ScratchDir dir;
    const fs::path data = write_corpus(dir.path(), 400);
    const fs::path run = dir / "run";
    // No step-based checkpoints (no evaluations, checkpoint-every beyond the run); one every 10 ms.
    const CommandResult killed = run_sinklab("train --quiet " + run_flags(data, 40) +
                                             " --eval-every 0 --checkpoint-every 1000 --checkpoint-minutes 0.0002"
                                             " --out " + run.string() + " --kill-after-step 30");
    ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.output;
    EXPECT_GT(checkpoint_step(run), 0);
    EXPECT_LE(checkpoint_step(run), 30);
}

TEST(TrainFaults, StepsZeroEvaluatesOnlyTheEvalWindows) {
    test::ScratchDir dir;
    const fs::path data = write_corpus(dir.path(), 2000);  // a validation split of many windows
    const fs::path run = dir / "run";
    const CommandResult r =
        run_sinklab("train --quiet " + run_flags(data, 0) + " --eval-windows 3 --out " + run.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::vector<nlohmann::json> lines = train_log_lines(run);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_TRUE(lines[1].value("final", false));
    EXPECT_EQ(lines[1]["eval_windows"], 3);
    EXPECT_EQ(checkpoint_step(run), 0);
}

}  // namespace
}  // namespace sinklab::testing
