// End-to-end tests of data-parallel `sinklab train` and distributed `sinklab sweep` under mpirun
// (docs/scale-out.md): 2 ranks train the curve of 1 process with the same global batch, resume
// exactly, end together when one rank dies, and say one clear line on bad input. Built with MPI,
// they run the job through the launcher CMake found; built without it, they check that the
// distributed commands say so.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "cli/cli_test_support.h"

namespace sinklab::testing {
namespace {

namespace fs = std::filesystem;

// The tiny preset made smaller (fewer layers, shorter windows) so that 100 steps take a second or
// two; --log-every 1 logs every step's loss. One thread per rank: the machine's 2 cores.
std::string small_run_flags(const fs::path& data, int steps) {
    return "--data " + data.string() + " --steps " + std::to_string(steps) +
           " --d-model 32 --layers 2 --heads 2 --seq-len 32 --batch 4 --warmup 4 --eval-every 25"
           " --eval-windows 8 --log-every 1 --threads 1 --quiet";
}

// Each logged step's training loss in the log of the run in `run`, in step order.
std::vector<double> training_losses(const fs::path& run) {
    std::vector<double> losses;
    for (const nlohmann::json& j : train_log_lines(run))
        if (j.contains("loss")) losses.push_back(j["loss"].get<double>());
    return losses;
}

// The log of the run in `run` without what depends on the clock (tokens/s, time in the all-reduce).
std::vector<nlohmann::json> log_without_timings(const fs::path& run) {
    std::vector<nlohmann::json> lines = train_log_lines(run);
    for (nlohmann::json& j : lines) {
        j.erase("tokens_per_s");
        j.erase("allreduce_ms");
    }
    return lines;
}

#ifdef SINKLAB_MPIEXEC

// The launcher as the tests start it: the environment lets OpenMPI run as root (CI's containers run
// as root) and copy between the ranks through shared memory without the kernel's cross-process
// copy, which a container without CAP_SYS_PTRACE refuses ("Read -1, expected ..., errno = 1",
// open-mpi/ompi#4948); --oversubscribe lets 2 ranks share fewer cores.
std::string mpiexec() {
    return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none " +
           std::string(SINKLAB_MPIEXEC) + " --oversubscribe";
}

// `sinklab ARGS` on `ranks` ranks of one machine.
CommandResult run_mpi(int ranks, const std::string& args) {
    return test::run_command(mpiexec() + " -np " + std::to_string(ranks) + " " + sinklab_binary() + " " + args);
}

TEST(DistributedCli, TwoRanksTrainTheCurveOfOneProcess) {
    fs::path dir = fresh_temp_dir("dp_curve");
    fs::path data = write_corpus(dir, 400);
    auto one = run_sinklab("train " + small_run_flags(data, 100) + " --out " + (dir / "one").string());
    ASSERT_EQ(one.exit_code, 0) << one.output;
    auto two = run_mpi(2, "train " + small_run_flags(data, 100) + " --out " + (dir / "two").string());
    ASSERT_EQ(two.exit_code, 0) << two.output;

    const std::vector<double> expected = training_losses(dir / "one");
    const std::vector<double> got = training_losses(dir / "two");
    ASSERT_EQ(expected.size(), 100u);
    ASSERT_EQ(got.size(), expected.size());
    // The ranks sum their halves of the batch before the ranks' sums are added: the same numbers
    // in another order, so equal to float rounding (not bitwise), step after step.
    for (size_t i = 0; i < expected.size(); ++i)
        EXPECT_LE(std::abs(got[i] - expected[i]), 1e-5 * std::abs(expected[i])) << "step " << i + 1;
    EXPECT_LT(got.back(), got.front() - 0.5);  // it learned

    // Rank 0 alone wrote the run folder: one log line per step and evaluation, the all-reduce time in it.
    const auto lines = log_without_timings(dir / "two");
    EXPECT_EQ(lines.size(), log_without_timings(dir / "one").size());
    EXPECT_NE(read_file(dir / "two" / "train_log.jsonl").find("\"allreduce_ms\""), std::string::npos);
    const auto state = nlohmann::json::parse(read_file(dir / "two" / "checkpoint" / "trainer_state.json"));
    EXPECT_EQ(state["ranks"], 2);
}

TEST(DistributedCli, ResumeAfterSigkillOfTheJobContinuesTheCurve) {
    fs::path dir = fresh_temp_dir("dp_resume");
    fs::path data = write_corpus(dir, 400);
    const std::string flags = small_run_flags(data, 30) + " --eval-every 6";
    auto full = run_mpi(2, "train " + flags + " --out " + (dir / "full").string());
    ASSERT_EQ(full.exit_code, 0) << full.output;

    // Every rank killed after step 15: the last checkpoint is step 12, steps 13-15 are redone.
    auto killed = run_mpi(2, "train " + flags + " --out " + (dir / "killed").string() + " --kill-after-step 15");
    ASSERT_NE(killed.exit_code, 0) << killed.output;
    EXPECT_FALSE(fs::exists(dir / "killed" / "checkpoint.tmp"));
    auto resumed = run_mpi(2, "train --quiet --threads 1 --resume " + (dir / "killed").string());
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    EXPECT_EQ(log_without_timings(dir / "killed"), log_without_timings(dir / "full"));
    EXPECT_EQ(read_file(dir / "full" / "checkpoint" / "model.safetensors"),
              read_file(dir / "killed" / "checkpoint" / "model.safetensors"));

    // Saved by 2 ranks, resumed by 1: the same global batches, so the curve of the 2-rank run to
    // float rounding.
    auto killed_again = run_mpi(2, "train " + flags + " --out " + (dir / "n_to_m").string() + " --kill-after-step 15");
    ASSERT_NE(killed_again.exit_code, 0) << killed_again.output;
    auto on_one = run_sinklab("train --quiet --threads 1 --resume " + (dir / "n_to_m").string());
    ASSERT_EQ(on_one.exit_code, 0) << on_one.output;
    EXPECT_NE(on_one.output.find("resuming a run of 2 ranks on 1"), std::string::npos) << on_one.output;
    const std::vector<double> expected = training_losses(dir / "full");
    const std::vector<double> got = training_losses(dir / "n_to_m");
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i)
        EXPECT_LE(std::abs(got[i] - expected[i]), 1e-5 * std::abs(expected[i])) << "step " << i + 1;
}

TEST(DistributedCli, ARankThatDiesEndsTheJobNamingIt) {
    fs::path dir = fresh_temp_dir("dp_rank_dies");
    fs::path data = write_corpus(dir, 400);
    const auto started = std::chrono::steady_clock::now();
    auto r = run_mpi(2, "train " + small_run_flags(data, 40) + " --eval-every 6 --out " + (dir / "run").string() +
                            " --kill-after-step 15 --kill-rank 1");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    EXPECT_NE(r.exit_code, 0) << r.output;
    // mpirun names the rank that died ("process rank 1 ... exited on signal 9 (Killed)") and ends the others.
    EXPECT_NE(r.output.find("rank 1"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("signal 9"), std::string::npos) << r.output;
    EXPECT_LT(seconds, 60.0) << r.output;  // not a hang: rank 0 waits for rank 1 in the all-reduce
    // The last checkpoint (step 12) is whole: it loads and resumes to the end.
    EXPECT_FALSE(fs::exists(dir / "run" / "checkpoint.tmp"));
    const auto state = nlohmann::json::parse(read_file(dir / "run" / "checkpoint" / "trainer_state.json"));
    EXPECT_EQ(state["step"], 12);
    auto probed = run_sinklab("probe --model " + (dir / "run").string() + " --quiet --threads 1 --input random "
                              "--seq-len 16 --samples 1");
    EXPECT_EQ(probed.exit_code, 0) << probed.output;
    auto resumed = run_mpi(2, "train --quiet --threads 1 --resume " + (dir / "run").string());
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    EXPECT_EQ(training_losses(dir / "run").size(), 40u);
}

// A bad input under mpirun: one line from rank 0 alone, and a non-zero exit, no rank left waiting.
// mpirun adds its own notice that a process exited with a non-zero status (`mpirun -q` leaves it
// out), before or after the line: the ranks' output and the launcher's are not ordered.
void expect_one_line(const CommandResult& r, const std::string& needle) {
    EXPECT_NE(r.exit_code, 0) << r.output;
    std::vector<std::string> errors;
    std::istringstream in(r.output);
    for (std::string line; std::getline(in, line);)
        if (line.rfind("error: ", 0) == 0) errors.push_back(line);
    ASSERT_EQ(errors.size(), 1u) << r.output;
    EXPECT_NE(errors[0].find(needle), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
}

TEST(DistributedCli, ADivergedRunStopsEveryRankAtTheStepOneProcessStops) {
    fs::path dir = fresh_temp_dir("dp_diverge");
    fs::path data = write_corpus(dir, 400);
    // A learning rate far too high: the loss spikes within a few steps. Every rank judges rank 0's
    // loss and norm, so they stop together (a rank that went on would wait in the all-reduce forever).
    const std::string flags = small_run_flags(data, 24) + " --lr 1e4";
    auto one = run_sinklab("train " + flags + " --out " + (dir / "one").string());
    ASSERT_EQ(one.exit_code, 1) << one.output;
    const auto started = std::chrono::steady_clock::now();
    auto two = run_mpi(2, "train " + flags + " --out " + (dir / "two").string());
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), 60.0) << two.output;
    expect_one_line(two, "error: [train] " + (dir / "two").string() + ": diverged at step ");
    EXPECT_NE(two.output.find("the last good checkpoint, " + (dir / "two" / "checkpoint").string() + " (step 0), is kept"),
              std::string::npos)
        << two.output;
    // The same step as one process, and the same rule (the reason's figures may differ in their last digits).
    const nlohmann::json last_one = log_without_timings(dir / "one").back();
    const nlohmann::json last_two = log_without_timings(dir / "two").back();
    EXPECT_EQ(last_two.value("diverged", false), true) << last_two.dump();
    EXPECT_EQ(last_two["step"], last_one["step"]) << last_one.dump() << "\n" << last_two.dump();
    const std::string reason = last_one["reason"].get<std::string>();
    EXPECT_EQ(last_two["reason"].get<std::string>().substr(0, reason.find(' ')), reason.substr(0, reason.find(' ')));
    // Rank 0 wrote the one checkpoint there is, the initial state: it loads.
    auto probed = run_sinklab("probe --model " + (dir / "two").string() + " --quiet --threads 1 --input random "
                              "--seq-len 16 --samples 1");
    EXPECT_EQ(probed.exit_code, 0) << probed.output;
}

TEST(DistributedCli, BadInputIsOneClearLine) {
    fs::path dir = fresh_temp_dir("dp_bad");
    fs::path data = write_corpus(dir, 400);
    const std::string flags = small_run_flags(data, 6);
    expect_one_line(run_mpi(2, "train " + flags + " --batch 5 --out " + (dir / "a").string()),
                    "error: [train] --batch 5 does not divide among 2 ranks");
    EXPECT_FALSE(fs::exists(dir / "a"));

    // A rank whose machine has no data file (here: rank 1 is given a path that does not exist).
    const std::string missing = (dir / "elsewhere" / "corpus.txt").string();
    auto r = test::run_command(mpiexec() + " -np 1 " + sinklab_binary() + " train " + flags + " --out " +
                               (dir / "b").string() + " : -np 1 " + sinklab_binary() + " train " + flags +
                               " --data " + missing + " --out " + (dir / "b").string() + " 2>&1");
    expect_one_line(r, "error: [data] rank 1 of 2");
    EXPECT_NE(r.output.find(missing + ": no such file"), std::string::npos) << r.output;

    // A rank that reads another file under the same name.
    std::ofstream(dir / "other.txt") << read_file(data) << "one more line\n";
    r = test::run_command(mpiexec() + " -np 1 " + sinklab_binary() + " train " + flags + " --out " +
                          (dir / "c").string() + " : -np 1 " + sinklab_binary() + " train " + flags + " --data " +
                          (dir / "other.txt").string() + " --out " + (dir / "c").string() + " 2>&1");
    expect_one_line(r, "the ranks read different data");

    // Resume of a run whose checkpoint holds another architecture than its trainer state.
    auto ok = run_mpi(2, "train " + flags + " --out " + (dir / "run").string());
    ASSERT_EQ(ok.exit_code, 0) << ok.output;
    make_byte_model(dir, "other_model");
    fs::copy_file(dir / "other_model" / "config.json", dir / "run" / "checkpoint" / "config.json",
                  fs::copy_options::overwrite_existing);
    expect_one_line(run_mpi(2, "train --quiet --resume " + (dir / "run").string()), "another architecture");

    // Commands that run on one process refuse a launcher.
    expect_one_line(run_mpi(2, "probe --model " + (dir / "run").string() + " --quiet"),
                    "sinklab probe runs as one process");
}

TEST(DistributedCli, SweepOfFourRunsOnTwoRanksFinishesEachOnce) {
    fs::path dir = fresh_temp_dir("dp_sweep");
    fs::path data = write_corpus(dir, 400);
    std::ofstream(dir / "sweep.toml") << "[base]\ndata = \"" << data.string()
                                      << "\"\nsteps = 8\nd-model = 32\nlayers = 1\nheads = 2\nseq-len = 32\n"
                                         "batch = 4\neval-every = 4\neval-windows = 4\n"
                                         "[axes]\nattention = [\"softmax\", \"gated\"]\nseed = [1, 2]\n";
    const std::string sweep = "sweep " + (dir / "sweep.toml").string() + " --threads 1 --out " + (dir / "out").string();
    auto r = run_mpi(2, sweep);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto results = nlohmann::json::parse(read_file(dir / "out" / "results.json"));
    ASSERT_EQ(results["runs"].size(), 4u) << results.dump();
    int on_rank[2] = {0, 0};
    for (const std::string rank : {"0", "1"}) {
        size_t at = 0;
        while ((at = r.output.find(" on rank " + rank + " ", at)) != std::string::npos) {
            ++on_rank[rank == "1"];
            ++at;
        }
    }
    EXPECT_EQ(on_rank[0] + on_rank[1], 4) << r.output;  // each run started once
    for (const auto& row : results["runs"]) {
        EXPECT_EQ(row["status"], "ok") << row.dump();
        const auto lines = log_without_timings(dir / "out" / row["run"].get<std::string>());
        EXPECT_EQ(lines.back()["step"], 8) << row.dump();
        EXPECT_EQ(lines.back()["final"], true) << row.dump();
    }
    // Run again: every run finished earlier, nothing trains.
    r = run_mpi(2, sweep);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("4 finished earlier, 0 to train"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(" on rank "), std::string::npos) << r.output;

    // --ranks-per-run 2: each run data parallel over both ranks.
    r = run_mpi(2, sweep + "-pairs --ranks-per-run 2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("on ranks 0-1"), std::string::npos) << r.output;
    EXPECT_EQ(nlohmann::json::parse(read_file(dir / "out-pairs" / "results.json"))["runs"].size(), 4u);
    expect_one_line(run_mpi(2, sweep + "-bad --ranks-per-run 3"), "--ranks-per-run 3 does not divide the 2 ranks");
}

#else  // built without MPI

TEST(DistributedCli, ALauncherWithoutMpiIsOneClearLine) {
    fs::path dir = fresh_temp_dir("no_mpi");
    fs::path data = write_corpus(dir, 400);
    // What mpirun tells each process it starts, without mpirun.
    auto r = test::run_command("OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 " + sinklab_binary() + " train " +
                               small_run_flags(data, 4) + " --out " + (dir / "run").string() + " 2>&1");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("MPI is not available"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir / "run"));
    // Without a launcher, training is what it always was.
    r = run_sinklab("train " + small_run_flags(data, 4) + " --out " + (dir / "run").string());
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(training_losses(dir / "run").size(), 4u);
}

#endif

}  // namespace
}  // namespace sinklab::testing
