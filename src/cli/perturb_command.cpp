// `sinklab perturb`: the over-mixing test, on one or several models, with and without their sink.
// The work is in src/lab/perturb_models.h; this file maps flags onto it.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/threads_option.h"
#include "core/error.h"
#include "core/files.h"
#include "core/threads.h"
#include "lab/perturb_models.h"

namespace sinklab::cli {

namespace {

struct PerturbArgs {
    std::vector<std::string> models;
    std::string prompt, replace;
    int position = 0;
    int64_t token = -1;
    int random = 200;
    int per_window = 4;
    int seq_len = 64;
    std::string data;
    std::string bos = "auto";
    uint64_t seed = 1234;
    std::vector<std::string> without_sink;
    std::string json;
    int threads = 0;
    bool quiet = false;
};

void run_perturb_command(const PerturbArgs& a) {
    set_threads(a.threads);
    // Everything the flags say is checked before a model is loaded.
    PerturbRequest r;
    r.prompt = a.prompt;
    r.replace = a.replace;
    r.position = a.position;
    r.token = a.token;
    r.random = a.random;
    r.per_window = a.per_window;
    r.seq_len = a.seq_len;
    r.seed = a.seed;
    r.bos = parse_bos_mode(a.bos);
    for (const std::string& mode : a.without_sink)
        r.without_sink.push_back(SinkIntervention::parse(mode, "--without-sink", without_sink_kinds()));
    r.progress = !a.quiet;
    r.validate();
    SINKLAB_CHECK(!r.uses_prompt() || a.data.empty(), "perturb", "--data gives the windows of --random; a --prompt needs none");
    if (!r.uses_prompt())
        r.text = a.data.empty() ? default_validation_text() : NamedText{read_text_file(a.data, "perturb"), a.data};

    const std::vector<ModelOverMixing> models = perturb_models(a.models, r);
    std::printf("over-mixing: ||h_l,t(x') - h_l,t(x)|| / ||h_l,t(x)|| at the positions t after the perturbed tokens "
                "(encoders: on both sides, at |d|; residual stream at each block's output; heads: each head's output)\n");
    std::vector<OverMixingRun> runs;
    for (const ModelOverMixing& m : models) {
        std::printf("%s (%s %s, attention %s): %s\n", m.model.c_str(), m.source.c_str(), m.architecture.c_str(),
                    m.design.c_str(), m.input.c_str());
        if (m.runs.front().result.distance_convention == kBidirectionalDistances)
            std::printf("  bidirectional attention: the positions on both sides of the perturbed tokens, at distance "
                        "|d|; the frame is never replaced\n");
        runs.insert(runs.end(), m.runs.begin(), m.runs.end());
    }
    std::printf("%s", over_mixing_table(runs).c_str());
    for (const ModelOverMixing& m : models) {
        if (m.loss_input.empty()) continue;
        std::printf("%s: %s\n", m.model.c_str(), m.loss_input.c_str());
        for (const OverMixingRun& run : m.runs)
            if (!run.result.loss.empty())
                std::printf("  %-14s %.4f nats (%+.4f)\n", run.condition.c_str(), run.result.loss_value,
                            run.result.loss_value - m.runs.front().result.loss_value);
    }
    if (!a.json.empty()) {
        nlohmann::json j = perturb_models_json(models);
        j["parameters"] = {{"models", a.models},   {"prompt", a.prompt},         {"replace", a.replace},
                           {"position", a.position}, {"token", a.token},       {"random", a.random},
                           {"per_window", a.per_window}, {"seq_len", a.seq_len}, {"data", a.data},
                           {"bos", a.bos},         {"seed", a.seed},             {"without_sink", a.without_sink},
                           {"threads", a.threads}};
        write_file_atomic(a.json, j.dump(1) + "\n");
        std::printf("wrote %s\n", a.json.c_str());
    }
}

}  // namespace

void add_perturb_command(CLI::App& app) {
    auto a = std::make_shared<PerturbArgs>();
    CLI::App* cmd = app.add_subcommand("perturb",
        "The over-mixing test (Barbero, Gu et al. 2025): replace a token and measure how much every later\n"
        "position's residual stream and every head's output change, per layer (encoders: every other\n"
        "position, both sides, at |d|; their frame is never replaced, and each run reports the masked-LM loss),\n"
        "||h_l,t(x') - h_l,t(x)|| / ||h_l,t(x)||: mean and 90th percentile, and the decay with distance.\n"
        "--without-sink runs the same perturbations with the sink removed, side by side; several --model\n"
        "give one table. Definitions and the JSON schema: docs/perturb.md.\n"
        "  sinklab perturb --model runs/demo/softmax --random 200 --without-sink mask-first:1\n"
        "  sinklab perturb --model M --prompt 'the greatest day' --replace greatest=best");
    cmd->add_option("--model", a->models, "model folders, training runs or llama2.c .bin files (one table for all)")
        ->required()
        ->expected(1, -1);
    CLI::Option* prompt =
        cmd->add_option("--prompt", a->prompt, "a prompt to perturb (through the model's tokenizer, BOS as --bos says)");
    cmd->add_option("--replace", a->replace,
                    "OLD=NEW: replace the first OLD of the prompt by NEW (both must give the same number of tokens)");
    cmd->add_option("--position", a->position, "the prompt's position P to replace (from 1, BOS included)");
    cmd->add_option("--token", a->token, "the token id written at --position");
    cmd->add_option("--random", a->random,
                    "without --prompt: N random single-token substitutions over natural windows (decoders: never the "
                    "first token, nor BOS, nor the first token after BOS; encoders: never their frame, nor a special id)")
        ->capture_default_str()
        ->excludes(prompt);
    cmd->add_option("--per-window", a->per_window,
                    "substitutions per window (each window's clean forward is shared by them)")
        ->capture_default_str();
    cmd->add_option("--seq-len", a->seq_len, "tokens per window T")->capture_default_str();
    cmd->add_option("--data", a->data,
                    "text file of the windows (default: the validation split of the default corpus)");
    cmd->add_option("--bos", a->bos, "auto|on|off: the model's BOS token first, an encoder's [CLS] ... [SEP] frame (auto: as its tokenizer does)")
        ->capture_default_str();
    cmd->add_option("--seed", a->seed, "seed of the substitutions")->capture_default_str();
    cmd->add_option("--without-sink", a->without_sink,
                    "drop-bos (BOS left out), mask-first:K (no query after the first K keys sees them; rows "
                    "renormalised), mask-slot (the slot column or sink token removed); repeat or comma-separate")
        ->delimiter(',');
    cmd->add_option("--json", a->json, "write every number, its definition and the parameters to this file");
    add_threads_option(*cmd, a->threads);
    cmd->add_flag("--quiet", a->quiet, "no progress line");
    cmd->callback([a] { run_perturb_command(*a); });
}

}  // namespace sinklab::cli
