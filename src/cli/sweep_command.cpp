// `sinklab sweep`: train the runs of a sweep file and tabulate them (results.csv, .md, .json); under
// an MPI launcher the runs go to the ranks as they free up.
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/threads_option.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "core/files.h"
#include "distributed/communicator.h"
#include "report/csv.h"
#include "train/sweep.h"

namespace sinklab::cli {

namespace {

namespace fs = std::filesystem;

struct SweepArgs {
    std::string file;
    std::map<std::string, std::string> values;  // training flags given on the command line
    std::string out;
    int threads = 0;
    bool quiet = false;
    std::string json;
    int ranks_per_run = 1;
    double bucket_mb = static_cast<double>(kDefaultBucketBytes) / (1 << 20);
};

std::string cell(const nlohmann::ordered_json& value) {
    if (value.is_null()) return "";
    if (value.is_string()) return value.get<std::string>();
    return value.dump();
}

Table results_table(const SweepResult& result) {
    std::vector<std::string> header;
    const nlohmann::ordered_json first = result.rows.front().to_json();
    for (const auto& [key, value] : first.items()) header.push_back(key);
    Table table(header);
    for (const SweepRow& row : result.rows) {
        const nlohmann::ordered_json j = row.to_json();
        std::vector<std::string> cells;
        for (const auto& [key, value] : j.items()) cells.push_back(cell(value));
        table.add_row(std::move(cells));
    }
    return table;
}

// The reference above the table: a model that trains ends below the unigram entropy of its corpus.
std::string reference_lines(const SweepResult& result) {
    std::string text;
    for (const auto& [data, entropy] : result.unigram_entropy)
        text += fmt::format("Unigram entropy of the training bytes of {}: {} nats/byte (a run that learned more than "
                            "byte frequencies ends with a lower val_loss).\n",
                            data, format_number(entropy));
    return text;
}

void run_sweep_command(const SweepArgs& args) {
    if (args.ranks_per_run > 1 && !mpi_available())
        throw AgreedError(fmt::format("[sweep] --ranks-per-run {}: MPI is not available (this sinklab was built without "
                                      "it; scripts/setup.sh installs OpenMPI, then build again)",
                                      args.ranks_per_run));
    // Rank 0 hands out the runs from a thread of its own while its main thread trains (MPI_THREAD_MULTIPLE).
    const Communicator& ranks = start_job(true);
    const SweepPlan plan = ranks.agree([&] { return read_sweep(args.file, args.values); });
    const fs::path out = args.out.empty() ? fs::path("runs") / ("sweep-" + fs::path(args.file).stem().string())
                                          : fs::path(args.out);
    SweepOptions options;
    options.out = out;
    options.threads = args.threads;
    options.progress = !args.quiet;
    options.ranks = ranks;
    options.ranks_per_run = args.ranks_per_run;
    options.bucket_bytes = static_cast<size_t>(args.bucket_mb * (1 << 20));
    const SweepResult result = run_sweep(plan, options);
    if (!ranks.is_root()) return;  // rank 0 has every row

    const Table table = results_table(result);
    const std::string markdown = reference_lines(result) + "\n" + to_markdown(table);
    nlohmann::ordered_json json = {{"sweep", args.file}, {"out", out.string()}, {"unigram_entropy", result.unigram_entropy}};
    json["runs"] = nlohmann::ordered_json::array();
    for (const SweepRow& row : result.rows) json["runs"].push_back(row.to_json());
    fs::create_directories(out);  // when no run got as far as its folder
    write_csv(out / "results.csv", table);
    write_file_atomic(out / "results.md", markdown);
    write_file_atomic(out / "results.json", json.dump(2) + "\n");
    if (!args.json.empty()) write_file_atomic(args.json, json.dump(2) + "\n");
    if (!args.quiet) std::fprintf(stderr, "results: %s/results.{csv,md,json}\n", out.c_str());
    std::fputs(markdown.c_str(), stdout);
}

}  // namespace

void add_sweep_command(CLI::App& app) {
    auto args = std::make_shared<SweepArgs>();
    CLI::App* cmd = app.add_subcommand("sweep",
        "Train many runs from a sweep file and tabulate them.\n"
        "The file has [base] (settings of `sinklab train`) and either [axes] (key = [values...]; mode = \"grid\"\n"
        "(the default) runs every combination, \"list\" zips the axes) or [[runs]] (one table of settings per run).\n"
        "Training flags given here override [base] in every run; a run's own values override both.\n"
        "Each run trains in OUT/<run name>/; running the sweep again skips finished runs and resumes interrupted ones.\n"
        "Writes OUT/results.csv, results.md and results.json (one row per run) and prints the table.\n"
        "On several processes or machines: `mpirun -np N sinklab sweep FILE.toml` hands the runs to the ranks as they\n"
        "free up (OUT on a filesystem every rank sees; docs/scale-out.md).");
    cmd->add_option("file", args->file, "sweep file (TOML)")->required();
    cmd->add_option("--out", args->out, "sweep folder (default: runs/sweep-<file name without .toml>)");
    add_threads_option(*cmd, args->threads)
        ->description("threads per process (0 = all cores; under mpirun, the cores of a machine divided among its ranks)");
    cmd->add_option("--ranks-per-run", args->ranks_per_run,
                    "under mpirun: train each run data parallel on this many ranks (the job's ranks a multiple of it)")
        ->check(CLI::Range(1, 1 << 24))
        ->capture_default_str();
    cmd->add_option("--bucket-mb", args->bucket_mb,
                    "with --ranks-per-run above 1: size of the gradient all-reduce buckets (0 = one after backward)")
        ->check(CLI::Range(0.0, 4096.0))
        ->capture_default_str();
    cmd->add_option("--json", args->json, "also write the results as JSON to this file");
    cmd->add_flag("--quiet", args->quiet, "no progress lines");
    add_train_setting_flags(*cmd, args->values);
    cmd->callback([args] { run_sweep_command(*args); });
}

}  // namespace sinklab::cli
