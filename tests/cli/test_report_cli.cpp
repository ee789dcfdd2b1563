// End to end: `sinklab report` on a run and on bad input, `sinklab train --max-minutes`, and a
// `sinklab demo` with a budget of seconds on a small corpus.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_test_support.h"

namespace sinklab::testing {
namespace {

namespace fs = std::filesystem;

fs::path make_corpus(const fs::path& dir) { return write_corpus(dir, 3000); }

const std::string kTinyShape = " --d-model 32 --layers 2 --heads 2 --seq-len 32 --batch 4 --warmup 2 --threads 2 --quiet";

nlohmann::json last_log_line(const fs::path& run) {
    std::istringstream in(read_file(run / "train_log.jsonl"));
    std::string line, last;
    while (std::getline(in, line))
        if (!line.empty()) last = line;
    return nlohmann::json::parse(last);
}

TEST(ReportCli, ReportsARunAndSaysWhatAnEmptyFolderHolds) {
    const fs::path dir = fresh_temp_dir("report");
    const fs::path data = make_corpus(dir);
    auto train = run_sinklab("train --steps 0 --data " + data.string() + kTinyShape + " --out " + (dir / "run").string());
    ASSERT_EQ(train.exit_code, 0) << train.output;
    auto report = run_sinklab("report " + (dir / "run").string() + " --out " + (dir / "report").string() +
                              " --seq-len 16 --samples 2 --analysis-samples 1 --quiet --threads 2");
    ASSERT_EQ(report.exit_code, 0) << report.output;
    EXPECT_NE(report.output.find("report: " + (dir / "report" / "index.html").string()), std::string::npos)
        << report.output;
    EXPECT_NE(report.output.find("run: val loss"), std::string::npos) << report.output;
    EXPECT_TRUE(fs::exists(dir / "report" / "report.json"));
    EXPECT_TRUE(fs::exists(dir / "report" / "runs.csv"));

    fs::create_directories(dir / "empty");
    auto empty = run_sinklab("report " + (dir / "empty").string() + " --out " + (dir / "empty-report").string());
    EXPECT_EQ(empty.exit_code, 1) << empty.output;
    EXPECT_NE(empty.output.find("an empty folder; nothing to report"), std::string::npos) << empty.output;
    EXPECT_NE(empty.output.find("error: [report] nothing to report in"), std::string::npos) << empty.output;
    EXPECT_TRUE(fs::exists(dir / "empty-report" / "index.html"));

    auto bad = run_sinklab("report " + (dir / "run").string() + " --inputs natural,noise --out " + (dir / "x").string());
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.output.find("--inputs: unknown input 'noise'"), std::string::npos) << bad.output;
}

TEST(TrainCli, MaxMinutesStopsWithAFinalEvaluationAndCheckpoint) {
    const fs::path dir = fresh_temp_dir("max_minutes");
    const fs::path data = make_corpus(dir);
    auto train = run_sinklab("train --steps 1000000 --max-minutes 0.02 --eval-every 0 --data " + data.string() +
                             kTinyShape + " --out " + (dir / "run").string());
    ASSERT_EQ(train.exit_code, 0) << train.output;
    const auto last = last_log_line(dir / "run");
    EXPECT_TRUE(last.value("final", false)) << last.dump();
    EXPECT_LT(last["step"].get<long>(), 1000000);
    EXPECT_NE(last.value("stopped", "").find("max-minutes 0.02 reached"), std::string::npos) << last.dump();
    EXPECT_TRUE(fs::exists(dir / "run" / "checkpoint" / "model.safetensors"));

    auto negative = run_sinklab("train --max-minutes -1 --data " + data.string() + kTinyShape + " --out " +
                                (dir / "bad").string());
    EXPECT_EQ(negative.exit_code, 1);
    EXPECT_NE(negative.output.find("max-minutes must be >= 0"), std::string::npos) << negative.output;
}

TEST(DemoCli, TrainsBothModelsAndWritesTheReport) {
    const fs::path dir = fresh_temp_dir("demo");
    const fs::path data = make_corpus(dir);
    auto demo = run_sinklab("demo --minutes 0.04 --pretrained none --quiet --threads 2 --data " + data.string() +
                            " --out " + (dir / "demo").string());
    ASSERT_EQ(demo.exit_code, 0) << demo.output;
    EXPECT_TRUE(fs::exists(dir / "demo" / "report" / "index.html"));
    EXPECT_TRUE(last_log_line(dir / "demo" / "softmax").value("final", false));
    EXPECT_TRUE(last_log_line(dir / "demo" / "gated").value("final", false));
    // The report path, then a line per model (the reference model of models/ included: its sink shows
    // whatever the live runs' budget), a line per live run that formed no sink, and the total.
    const size_t at = demo.output.find("report: " + (dir / "demo" / "report" / "index.html").string());
    ASSERT_NE(at, std::string::npos) << demo.output;
    std::istringstream summary(demo.output.substr(at));
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(summary, line)) lines.push_back(line);
    ASSERT_EQ(lines.size(), 9u) << demo.output;
    EXPECT_NE(lines[2].find("softmax: val loss"), std::string::npos) << demo.output;
    EXPECT_NE(lines[2].find("no sink formed"), std::string::npos) << demo.output;
    EXPECT_NE(lines[3].find("gated: val loss"), std::string::npos) << demo.output;
    EXPECT_NE(lines[4].find("reference: val loss 1.72; on natural input, a first-token sink in 1 of 8 heads: "
                            "layer 0 head 0"),
              std::string::npos)
        << demo.output;
    EXPECT_NE(lines[6].find("softmax formed no sink in its"), std::string::npos) << demo.output;
    EXPECT_NE(lines[6].find("The reference model reference, trained 4000 steps, has a first-token sink"),
              std::string::npos)
        << demo.output;
    EXPECT_NE(lines[8].find("Total"), std::string::npos) << demo.output;
    const std::string page = read_file(dir / "demo" / "report" / "index.html");
    EXPECT_NE(page.find("softmax formed no sink in its"), std::string::npos);

    // Run again: both runs are finished, so they are reused rather than trained.
    auto again = run_sinklab("demo --minutes 0.04 --pretrained none --quiet --threads 2 --data " + data.string() +
                             " --out " + (dir / "demo").string());
    ASSERT_EQ(again.exit_code, 0) << again.output;
    EXPECT_NE(again.output.find("a finished run, reused"), std::string::npos) << again.output;

    // Another budget in the same folder is refused before anything is trained: reusing the runs would
    // report one budget and show another.
    const auto log_before = read_file(dir / "demo" / "softmax" / "train_log.jsonl");
    auto longer = run_sinklab("demo --minutes 0.05 --pretrained none --quiet --threads 2 --data " + data.string() +
                              " --out " + (dir / "demo").string());
    EXPECT_EQ(longer.exit_code, 1) << longer.output;
    EXPECT_NE(longer.output.find("holds the demo of --minutes 0.04"), std::string::npos) << longer.output;
    EXPECT_NE(longer.output.find("this one asks for --minutes 0.05"), std::string::npos) << longer.output;
    EXPECT_EQ(read_file(dir / "demo" / "softmax" / "train_log.jsonl"), log_before);

    // A record that is not one: a clear error, nothing trained.
    std::ofstream(dir / "demo" / "demo.json") << "[0.04]";
    auto foreign = run_sinklab("demo --minutes 0.04 --pretrained none --quiet --threads 2 --data " + data.string() +
                               " --out " + (dir / "demo").string());
    EXPECT_EQ(foreign.exit_code, 1) << foreign.output;
    EXPECT_NE(foreign.output.find("demo.json: not a demo record"), std::string::npos) << foreign.output;

    // Runs that no demo record describes (an older sinklab's, or `sinklab train`'s) are not overwritten either.
    fs::remove(dir / "demo" / "demo.json");
    auto unrecorded = run_sinklab("demo --minutes 0.04 --pretrained none --quiet --threads 2 --data " + data.string() +
                                  " --out " + (dir / "demo").string());
    EXPECT_EQ(unrecorded.exit_code, 1) << unrecorded.output;
    EXPECT_NE(unrecorded.output.find("softmax exists, but no"), std::string::npos) << unrecorded.output;
    EXPECT_EQ(read_file(dir / "demo" / "softmax" / "train_log.jsonl"), log_before);
}

}  // namespace
}  // namespace sinklab::testing
