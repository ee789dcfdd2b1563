// `sinklab train`: train a model from a TOML config and/or flags, or resume a run.
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
    long kill_after_step = -1;
};

std::string default_out_dir(const std::string& preset) {
    std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
    return fmt::format("runs/{}-{}", preset, stamp);
}

int run_train(const TrainArgs& args) {
    TrainOptions options;
    options.threads = args.threads;
    options.attention_kernel = parse_attention_kernel(args.attention_kernel);
    options.progress = !args.quiet;
    options.kill_after_step = args.kill_after_step;
    std::unique_ptr<Trainer> trainer;
    if (!args.resume.empty()) {
        SINKLAB_CHECK(args.values.empty() && args.config_file.empty(), "train",
                      "--resume continues a run with its saved configuration; drop the other training flags");
        trainer = Trainer::resume(args.resume, options);
        std::fprintf(stderr, "resuming %s\n", args.resume.c_str());
    } else {
        TrainConfig config = preset_config("tiny");
        if (!args.config_file.empty()) apply_settings(config, read_toml_settings(args.config_file), args.config_file);
        apply_settings(config, args.values, "command line");
        const std::string out = args.out.empty() ? default_out_dir(config.preset) : args.out;
        trainer = std::make_unique<Trainer>(config, out, options);
        const TrainConfig& c = trainer->config();
        std::fprintf(stderr, "training %s: %s style, d %d, %d layers, %d heads (%d kv), %zu parameters; T %d, B %d, %ld steps -> %s\n",
                     c.preset.c_str(), c.model.style.c_str(), c.model.d_model, c.model.n_layers, c.model.n_heads,
                     c.model.n_kv_heads, trainer->model().num_params(), c.seq_len, c.batch, c.steps, out.c_str());
    }
    TrainResult result = trainer->run();
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
        fail("train", "{}: diverged at step {}: {}; {} (a lower --lr may help)", result.out.string(), result.steps,
             result.diverged, kept);
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
        "(config.json, model.safetensors, optimizer state), replaced atomically.");
    cmd->add_option("config", args->config_file, "TOML file of settings (keys as the flags, without --)");
    cmd->add_option("--out", args->out, "run folder (default: runs/<preset>-<time>)");
    cmd->add_option("--resume", args->resume, "continue the run in this folder exactly where its checkpoint left off");
    add_threads_option(*cmd, args->threads);
    add_attention_kernel_option(cmd, args->attention_kernel);
    cmd->add_option("--json", args->json, "also write a JSON summary of the run to this file");
    cmd->add_flag("--quiet", args->quiet, "no progress line");
    cmd->add_option("--kill-after-step", args->kill_after_step,
                    "fault injection for resume tests: SIGKILL this process right after step N (0: before step 1)")
        ->group("Testing");
    add_train_setting_flags(*cmd, args->values);
    cmd->callback([args] {
        int rc = run_train(*args);
        if (rc != 0) throw CLI::RuntimeError(rc);
    });
}

}  // namespace sinklab::cli
