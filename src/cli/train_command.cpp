// `sinklab train`: train a model from a TOML config and/or flags, or resume a run; on several ranks
// when an MPI launcher starts it (data parallel, docs/scale-out.md).
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/attention_flags.h"
#include "cli/commands.h"
#include "cli/threads_option.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "core/files.h"
#include "core/threads.h"
#include "distributed/communicator.h"
#include "train/trainer.h"

namespace sinklab::cli {

namespace {

struct TrainArgs {
    std::string config_file;
    std::map<std::string, std::string> values;  // flags given on the command line
    std::string out;
    std::string resume;
    int threads = 0;
    std::string attention_kernel = "auto";
    std::string json;
    bool quiet = false;
    double bucket_mb = static_cast<double>(kDefaultBucketBytes) / (1 << 20);
    long kill_after_step = -1;
    int kill_rank = -1;
};

std::string default_out_dir(const std::string& preset) {
    std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
    return fmt::format("runs/{}-{}", preset, stamp);
}

std::string threads_note() { return fmt::format("{} thread{}", num_threads(), num_threads() == 1 ? "" : "s"); }

int run_train(const TrainArgs& args) {
    const Communicator& ranks = start_job();
    TrainOptions options;
    options.threads = args.threads;
    options.attention_kernel = parse_attention_kernel(args.attention_kernel);
    options.progress = !args.quiet;
    options.ranks = ranks;
    options.bucket_bytes = static_cast<size_t>(args.bucket_mb * (1 << 20));
    options.kill_after_step = args.kill_after_step;
    options.kill_rank = args.kill_rank;
    // Every rank parses the same flags and files; a failure there is every rank's (agree).
    const bool speaks = ranks.is_root();  // rank 0 alone prints and writes
    std::unique_ptr<Trainer> trainer;
    std::string ranks_note;
    if (!args.resume.empty()) {
        ranks.agree([&] {
            SINKLAB_CHECK(args.values.empty() && args.config_file.empty(), "train",
                          "--resume continues a run with its saved configuration; drop the other training flags");
        });
        trainer = Trainer::resume(args.resume, options);
        if (ranks.distributed()) ranks_note = fmt::format(" on {} ranks x {}", ranks.size(), threads_note());
        if (speaks) std::fprintf(stderr, "resuming %s%s\n", args.resume.c_str(), ranks_note.c_str());
    } else {
        const TrainConfig config = ranks.agree([&] {
            TrainConfig c = preset_config("tiny");
            if (!args.config_file.empty()) apply_settings(c, read_toml_settings(args.config_file), args.config_file);
            apply_settings(c, args.values, "command line");
            return c;
        });
        // Every rank names the run folder from rank 0's clock.
        const std::string out = ranks.broadcast(args.out.empty() ? default_out_dir(config.preset) : args.out);
        trainer = std::make_unique<Trainer>(config, out, options);
        const TrainConfig& c = trainer->config();
        if (ranks.distributed())
            ranks_note = fmt::format(" on {} ranks x {} ({} sequences each)", ranks.size(), threads_note(),
                                     c.batch / ranks.size());
        if (speaks)
            std::fprintf(stderr, "training %s: %s style, d %d, %d layers, %d heads (%d kv), %zu parameters; T %d, B %d, %ld steps%s -> %s\n",
                         c.preset.c_str(), c.model.style.c_str(), c.model.d_model, c.model.n_layers, c.model.n_heads,
                         c.model.n_kv_heads, trainer->model().num_params(), c.seq_len, c.batch, c.steps,
                         ranks_note.c_str(), out.c_str());
    }
    TrainResult result = trainer->run();
    if (!speaks) return result.diverged.empty() ? 0 : 1;
    if (!result.diverged.empty()) {
        if (!args.json.empty())
            write_file_atomic(args.json, nlohmann::json{{"out", result.out.string()},
                                                        {"steps", result.steps},
                                                        {"diverged", result.diverged},
                                                        {"last_good_step", result.last_good_step
                                                                               ? nlohmann::json(*result.last_good_step)
                                                                               : nlohmann::json()}}.dump(2) + "\n");
        const std::string kept =
            result.last_good_step ? fmt::format("the last good checkpoint, {} (step {}), is kept",
                                                (result.out / "checkpoint").string(), *result.last_good_step)
                                  : std::string("no checkpoint was written");
        // Every rank diverged at the same step (the loss and norm are rank 0's): one line, by rank 0.
        throw AgreedError(fmt::format("[train] {}: diverged at step {}: {}; {} (a lower --lr may help)",
                                      result.out.string(), result.steps, result.diverged, kept));
    }
    nlohmann::json summary = {{"out", result.out.string()},
                              {"steps", result.steps},
                              {"val_loss", result.final_val_loss},
                              {"sink1", result.final_sink1},
                              {"tokens_per_s", result.tokens_per_s}};
    std::printf("%s: %ld steps, final val_loss %.4f nats/byte, Sink_1 %.1f%%, %.0f tokens/s\n",
                result.out.c_str(), result.steps, result.final_val_loss, result.final_sink1, result.tokens_per_s);
    if (!args.json.empty()) write_file_atomic(args.json, summary.dump(2) + "\n");
    return 0;
}

}  // namespace

void add_train_command(CLI::App& app) {
    auto args = std::make_shared<TrainArgs>();
    CLI::App* cmd = app.add_subcommand("train",
        "Train a model on text (default: the bundled State of the Union corpus, byte-level).\n"
        "Settings come from --preset (tiny by default), then CONFIG.toml, then flags.\n"
        "Writes OUT/train_log.jsonl (one JSON object per log step and evaluation) and OUT/checkpoint/\n"
        "(config.json, model.safetensors, optimizer state), replaced atomically.\n"
        "Data parallel on several processes or machines: `mpirun -np N sinklab train ...` (or srun): each rank\n"
        "trains on batch / N sequences of the global --batch, the gradients are averaged over the ranks, and\n"
        "rank 0 writes the run folder (docs/scale-out.md).");
    cmd->add_option("config", args->config_file, "TOML file of settings (keys as the flags, without --)");
    cmd->add_option("--out", args->out, "run folder (default: runs/<preset>-<time>)");
    cmd->add_option("--resume", args->resume, "continue the run in this folder exactly where its checkpoint left off");
    add_threads_option(*cmd, args->threads)
        ->description("threads per process (0 = all cores; under mpirun, the cores of a machine divided among its ranks)");
    cmd->add_option("--bucket-mb", args->bucket_mb,
                    "under mpirun: size of the gradient all-reduce buckets, each started while backward computes the "
                    "rest (0 = one all-reduce after backward)")
        ->check(CLI::Range(0.0, 4096.0))
        ->capture_default_str();
    add_attention_kernel_option(cmd, args->attention_kernel);
    cmd->add_option("--json", args->json, "also write a JSON summary of the run to this file");
    cmd->add_flag("--quiet", args->quiet, "no progress line");
    cmd->add_option("--kill-after-step", args->kill_after_step,
                    "fault injection for resume tests: SIGKILL this process right after step N (0: before step 1)")
        ->group("Testing");
    cmd->add_option("--kill-rank", args->kill_rank, "with --kill-after-step under mpirun: only this rank kills itself")
        ->group("Testing");
    add_train_setting_flags(*cmd, args->values);
    cmd->callback([args] {
        int rc = run_train(*args);
        if (rc != 0) throw CLI::RuntimeError(rc);
    });
}

}  // namespace sinklab::cli
