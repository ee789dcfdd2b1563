#pragma once
// Sweeps: many training runs from one file. A sweep file has a [base] table of `sinklab train`
// settings and either [axes] (a list of values per key, combined as a grid or zipped as a list) or
// [[runs]] tables (one per run). Each run trains in OUT/<run name>/; a finished run is read back
// from its train_log.jsonl and an interrupted one resumes, so a sweep can be run again until done.
// Under an MPI launcher the runs go to the ranks as they free up, each run on ranks_per_run ranks.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "distributed/communicator.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace sinklab {

// (key, value) settings as on the command line, keys as train_settings() spells them.
using SettingValues = std::vector<std::pair<std::string, std::string>>;

struct SweepRun {
    std::string name;      // from the values, "attention=kv_bias,lr=0.001", safe as a folder name
    SettingValues values;  // what the run sets over the base, in file order
    TrainConfig config;    // tiny preset, [base], command line, then values; prepared and validated
};

struct SweepPlan {
    std::filesystem::path file;
    std::vector<std::string> keys;  // the keys the runs set, in file order
    std::vector<SweepRun> runs;
};

// The most runs one sweep file may hold (a grid's combinations are counted before any is made): a
// thousand runs of even the tiny preset take days, and a typo in a grid (seven axes of ten values)
// should be an error, not 10^7 runs.
constexpr size_t kMaxSweepRuns = 1000;

// Reads and expands a sweep file. `overrides` (command-line settings) replace [base] keys in every
// run; a run's own values replace both. Every run's configuration is built and validated here, so a
// bad value fails before anything trains; errors name the file, the key and the run.
SweepPlan read_sweep(const std::filesystem::path& file, const std::map<std::string, std::string>& overrides);

// "key=value,key=value" with the characters a folder name should not hold replaced by '_'
// ("base" when there are no values).
std::string sweep_run_name(const SettingValues& values);

// What a run's train_log.jsonl says once the run is over.
struct RunRecord {
    std::string status;  // "ok", "diverged at step N: reason" or "failed: message"
    std::optional<double> val_loss, sink_star, sink1, massive_ratio, tokens_per_s;
    std::optional<long> steps, params;
    nlohmann::json to_json() const;  // what a rank tells the sweep's scheduler
    static RunRecord from_json(const nlohmann::json& j);
};
// The record of the run in `run_dir`; nullopt while its log has neither a final evaluation nor a
// divergence line.
std::optional<RunRecord> read_run_record(const std::filesystem::path& run_dir);

struct SweepRow {
    std::string run;
    SettingValues values;  // every key of the plan, "" where the run keeps the base value
    RunRecord record;
    // The row as results.csv/md/json show it: run, the plan's keys, status, val_loss, sink_star,
    // sink1, massive_ratio, tokens_per_s, steps, params (null where there is no value).
    nlohmann::ordered_json to_json() const;
};

struct SweepOptions {
    std::filesystem::path out;
    int threads = 0;
    bool progress = true;  // a line per run and (on one rank) each run's progress line, on stderr
    // The ranks of the sweep: runs go to groups of ranks_per_run ranks as the groups free up, each
    // run data parallel over its group. One rank by default: the runs in plan order.
    Communicator ranks;
    int ranks_per_run = 1;
    size_t bucket_bytes = kDefaultBucketBytes;  // TrainOptions::bucket_bytes of every run
};

struct SweepResult {
    std::vector<SweepRow> rows;
    // Per corpus of the runs: the entropy of its training bytes' frequencies, in nats per byte,
    // the validation loss of a model that learned only those frequencies.
    std::map<std::string, double> unigram_entropy;
};

// Trains the runs of `plan` in OUT/<run name>/, in plan order: finished runs are read back,
// interrupted ones resume from their checkpoint. A run that throws or diverges gets a row that says
// so and the sweep goes on. Throws before training anything when a run folder holds a run with
// other settings, or a corpus cannot be read. Collective over options.ranks: rank 0 hands the runs
// out and gets every row; the other ranks get none.
SweepResult run_sweep(const SweepPlan& plan, const SweepOptions& options);

// Entropy of the byte frequencies of `bytes`, in nats.
double unigram_entropy(const std::vector<uint8_t>& bytes);

}  // namespace sinklab
