// End-to-end tests of `sinklab sweep`: run folders and results, skip on rerun, resume of an
// interrupted run, command-line overrides, divergence, and bad input as one clear error.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_test_support.h"

namespace sinklab::testing {
namespace {

namespace fs = std::filesystem;

fs::path make_corpus(const fs::path& dir) { return write_corpus(dir, 400); }

// A small model so that a run takes a fraction of a second.
std::string base_table(const fs::path& data) {
    return "[base]\ndata = \"" + data.string() +
           "\"\nd-model = 32\nlayers = 2\nheads = 2\nseq-len = 32\nbatch = 4\nsteps = 10\nwarmup = 2\n"
           "eval-every = 3\neval-windows = 8\n";
}

fs::path write(const fs::path& path, const std::string& text) {
    std::ofstream(path) << text;
    return path;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

const std::vector<std::string> kRuns = {"lr=0.001,wd=0", "lr=0.001,wd=0.1", "lr=0.003,wd=0", "lr=0.003,wd=0.1"};

TEST(SweepCli, GridTrainsEachRunInItsFolderAndSkipsThemOnRerun) {
    const fs::path dir = fresh_temp_dir("sweep_grid");
    const fs::path file = write(dir / "grid.toml", base_table(make_corpus(dir)) +
                                                       "[axes]\nmode = \"grid\"\nlr = [1e-3, 3e-3]\nwd = [0.0, 0.1]\n");
    const fs::path out = dir / "out";
    // --steps overrides the base's 10 in every run
    const std::string command = "sweep " + file.string() + " --steps 6 --threads 1 --out " + out.string();
    const CommandResult first = run_sinklab(command + " --quiet");
    ASSERT_EQ(first.exit_code, 0) << first.output;

    for (const std::string& run : kRuns) {
        ASSERT_TRUE(fs::exists(out / run / "checkpoint" / "model.safetensors")) << run;
        const auto log = lines_of(read_file(out / run / "train_log.jsonl"));
        const auto final_line = nlohmann::json::parse(log.back());
        EXPECT_TRUE(final_line.value("final", false)) << run;
        EXPECT_EQ(final_line["step"], 6) << run;
        EXPECT_TRUE(final_line.contains("massive_ratio")) << run;
    }
    const auto csv = lines_of(read_file(out / "results.csv"));
    ASSERT_EQ(csv.size(), 5u) << read_file(out / "results.csv");
    EXPECT_EQ(csv[0], "run,lr,wd,status,val_loss,sink_star,sink1,massive_ratio,tokens_per_s,steps,params");
    for (size_t i = 0; i < kRuns.size(); ++i) {
        EXPECT_EQ(csv[i + 1].rfind("\"" + kRuns[i] + "\",", 0), 0u) << csv[i + 1];  // a comma: quoted
        EXPECT_NE(csv[i + 1].find(",ok,"), std::string::npos) << csv[i + 1];
    }
    const auto results = nlohmann::json::parse(read_file(out / "results.json"));
    ASSERT_EQ(results["runs"].size(), 4u);
    for (const auto& row : results["runs"]) {
        EXPECT_EQ(row["steps"], 6);
        EXPECT_GT(row["val_loss"].get<double>(), 0.0);
        EXPECT_GT(row["massive_ratio"].get<double>(), 1.0);
        EXPECT_TRUE(row["sink_star"].is_null());  // softmax has no slot
    }
    ASSERT_EQ(results["unigram_entropy"].size(), 1u);
    const double entropy = results["unigram_entropy"].begin().value().get<double>();
    EXPECT_GT(entropy, 2.0);
    EXPECT_LT(entropy, std::log(256.0));
    EXPECT_EQ(read_file(out / "results.md").find("Unigram entropy of the training bytes"), 0u);
    // stdout: the reference line and the table
    EXPECT_NE(first.output.find("Unigram entropy of the training bytes"), std::string::npos) << first.output;
    EXPECT_NE(first.output.find("| run "), std::string::npos) << first.output;

    // Rerun: every run is finished, nothing trains, the logs are untouched, the table is the same.
    const std::string log_before = read_file(out / kRuns[0] / "train_log.jsonl");
    const auto time_before = fs::last_write_time(out / kRuns[0] / "train_log.jsonl");
    const std::string csv_before = read_file(out / "results.csv");
    const CommandResult second = run_sinklab(command);
    ASSERT_EQ(second.exit_code, 0) << second.output;
    EXPECT_NE(second.output.find("4 runs in " + out.string() + ", 4 finished earlier, 0 to train"), std::string::npos)
        << second.output;
    EXPECT_EQ(second.output.find("train "), std::string::npos) << second.output;  // no training progress
    EXPECT_EQ(read_file(out / kRuns[0] / "train_log.jsonl"), log_before);
    EXPECT_EQ(fs::last_write_time(out / kRuns[0] / "train_log.jsonl"), time_before);
    EXPECT_EQ(read_file(out / "results.csv"), csv_before);

    // Other settings over finished runs: refused before anything trains.
    const CommandResult changed = run_sinklab("sweep " + file.string() + " --steps 8 --quiet --out " + out.string());
    EXPECT_NE(changed.exit_code, 0);
    EXPECT_NE(changed.output.find("holds a run with other settings (/steps: 6 there, 8 in this sweep)"), std::string::npos)
        << changed.output;
    EXPECT_EQ(read_file(out / kRuns[0] / "train_log.jsonl"), log_before);
}

TEST(SweepCli, ResumesAnInterruptedRunAndRecordsFailures) {
    const fs::path dir = fresh_temp_dir("sweep_resume");
    const fs::path data = make_corpus(dir);
    const fs::path file = write(dir / "s.toml", base_table(data) + "[axes]\nmode = \"list\"\nattention = [\"softmax\"]\n"
                                                                  "lr = [1e-3]\n");
    const fs::path out = dir / "out";
    // The same run started by `sinklab train` and killed after step 5 (checkpoint at step 3).
    const CommandResult killed = run_sinklab(
        "train --data " + data.string() +
        " --d-model 32 --layers 2 --heads 2 --seq-len 32 --batch 4 --steps 10 --warmup 2 --eval-every 3 --eval-windows 8"
        " --attention softmax --lr 1e-3 --threads 1 --quiet --kill-after-step 5 --out " +
        (out / "attention=softmax,lr=0.001").string());
    ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.output;
    const CommandResult resumed = run_sinklab("sweep " + file.string() + " --threads 1 --out " + out.string());
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    EXPECT_NE(resumed.output.find("sweep 1/1: attention=softmax,lr=0.001, resuming"), std::string::npos) << resumed.output;
    std::vector<long> steps;
    for (const std::string& line : lines_of(read_file(out / "attention=softmax,lr=0.001" / "train_log.jsonl"))) {
        const auto j = nlohmann::json::parse(line);
        if (j.contains("loss")) steps.push_back(j["step"].get<long>());
    }
    EXPECT_EQ(steps, (std::vector<long>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));

    // A run that diverges and a run that fails (its validation split is shorter than a window) get
    // rows that say so; the sweep goes on.
    std::ofstream(dir / "short.txt") << std::string(600, 'x');
    const fs::path bad = write(dir / "bad.toml", base_table(data) + "[axes]\nmode = \"list\"\nlr = [1e30, 1e-3]\n"
                                                                    "data = [\"" + data.string() + "\", \"" +
                                                                    (dir / "short.txt").string() + "\"]\n");
    const CommandResult mixed = run_sinklab("sweep " + bad.string() + " --threads 1 --quiet --out " + (dir / "bad").string());
    ASSERT_EQ(mixed.exit_code, 0) << mixed.output;
    const auto results = nlohmann::json::parse(read_file(dir / "bad" / "results.json"));
    ASSERT_EQ(results["runs"].size(), 2u);
    EXPECT_EQ(results["runs"][0]["status"].get<std::string>().rfind("diverged at step ", 0), 0u) << results.dump();
    EXPECT_TRUE(results["runs"][0]["val_loss"].is_null());
    EXPECT_EQ(results["runs"][1]["status"], "failed: [data] the validation split (30 bytes) is shorter than one window "
                                            "of seq-len 32") << results.dump();
    EXPECT_EQ(results["unigram_entropy"].size(), 2u);
}

// One clear line naming the problem, a non-zero exit, and no run folder.
void expect_clean_failure(const CommandResult& r, const std::vector<std::string>& needles, const fs::path& out) {
    EXPECT_NE(r.exit_code, 0) << r.output;
    for (const std::string& needle : needles) EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_FALSE(fs::exists(out)) << out;
}

TEST(SweepCli, BadInputIsOneClearError) {
    const fs::path dir = fresh_temp_dir("sweep_bad");
    const std::string base = base_table(make_corpus(dir));
    const fs::path out = dir / "out";
    auto sweep = [&](const std::string& name, const std::string& text) {
        return run_sinklab("sweep " + write(dir / name, text).string() + " --quiet --out " + out.string());
    };
    expect_clean_failure(sweep("base.toml", base + "learning_rate = 0.1\n[axes]\nlr = [1e-3]\n"),
                         {"base.toml [base]", "unknown key 'learning_rate'"}, out);
    expect_clean_failure(sweep("axis.toml", base + "[axes]\nlearning_rate = [1e-3]\n"),
                         {"axis.toml [axes]", "unknown key 'learning_rate'"}, out);
    expect_clean_failure(sweep("design.toml", base + "[axes]\nattention = [\"softmax\", \"nope\"]\n"),
                         {"run 2 of 2 (attention=nope)", "unknown attention design 'nope'"}, out);
    expect_clean_failure(sweep("window.toml", base + "[axes]\nwindow = [16, 64]\n"),
                         {"run 2 of 2 (window=64)", "window (64) is longer than seq-len (32)"}, out);
    expect_clean_failure(sweep("broken.toml", base + "[axes]\nlr = [1e-3,\n"), {"broken.toml:", "not valid TOML"}, out);
    expect_clean_failure(run_sinklab("sweep " + write(dir / "ok.toml", base + "[axes]\nlr = [1e-3]\n").string() +
                                     " --prefix 99 --quiet --out " + out.string()),
                         {"run 1 of 1 (lr=0.001)", "prefix (99) is longer than seq-len (32)"}, out);
}

}  // namespace
}  // namespace sinklab::testing
