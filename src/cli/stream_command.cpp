// `sinklab stream`: long-stream perplexity through KV-cache policies (lab/stream_run.h).
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/streaming_flags.h"
#include "cli/threads_option.h"
#include "core/threads.h"
#include "report/csv.h"
#include "lab/stream_run.h"

namespace sinklab::cli {

namespace {

struct StreamArgs {
    std::string model;
    std::string data;
    std::string tokenizer;
    std::string policies;
    int64_t tokens = 10000;
    int every = 0;
    StreamingFlags streaming;
    int max_cache = 0;
    std::string json;
    std::string csv;
    int threads = 0;
    bool quiet = false;
};

void run_stream_command(const StreamArgs& a) {
    set_threads(a.threads);
    StreamRunOptions o;
    o.model = a.model;
    o.data = a.data;
    o.tokenizer = a.tokenizer;
    o.policies = parse_cache_policies(a.policies);
    o.tokens = a.tokens;
    o.every = a.every;
    o.streaming = parse_streaming_flags(a.streaming);
    o.streaming.max_cache = a.max_cache;
    o.json = a.json;
    o.csv = a.csv;
    o.progress = !a.quiet;
    // A line printed while the progress bar is drawn on the same terminal clears the bar first.
    const bool shared_terminal = o.progress && ::isatty(STDOUT_FILENO) && ::isatty(STDERR_FILENO);
    o.say = [shared_terminal](const std::string& line) {
        if (shared_terminal) std::fputs("\r\033[K", stderr);
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
    };
    const StreamRunResult result = run_stream(o);
    std::printf("\n%s", to_markdown(result.table).c_str());
    if (!a.json.empty()) std::printf("per-token NLL of every policy: %s\n", a.json.c_str());
    if (!a.csv.empty()) std::printf("samples: %s\n", a.csv.c_str());
}

}  // namespace

void add_stream_command(CLI::App& app) {
    auto a = std::make_shared<StreamArgs>();
    CLI::App* cmd = app.add_subcommand("stream",
        "Long-stream perplexity with KV-cache policies, as StreamingLLM measures it: the text goes through\n"
        "the model one token at a time and every next-token NLL is recorded, for each policy on the same\n"
        "tokens. Policies (comma-separated): dense (everything, up to --max-cache), window:W (the last W),\n"
        "sink:S+W (the first S and the last W; sink:W keeps S = 4), sink:auto+W (the 4 most attended tokens\n"
        "and the last W; sink:autoS+W for S of them), shift:K (llama.cpp's context shift: keep K, drop half\n"
        "of the rest when the model's context is full; shift:K/N for a context of N), recompute:W (every\n"
        "token recomputes the last W from scratch: the quality oracle, slow by design). Kept tokens are\n"
        "re-indexed (positions inside the cache) unless --positions absolute. Prints a sample every --every\n"
        "tokens and a table; --json keeps every token's NLL per policy, --csv the samples. docs/streaming.md");
    cmd->add_option("--model", a->model, "model folder, training run, Hugging Face folder or llama2.c .bin")->required();
    cmd->add_option("--data", a->data,
                    "text file or folder of *.txt (default: the default corpus's validation split, the last 5%)");
    cmd->add_option("--tokenizer", a->tokenizer, "tokenizer (default: the model's own; bytes for sinklab models)");
    cmd->add_option("--policy", a->policies, "comma-separated policies, e.g. dense,window:252,sink:4+252,recompute:256")
        ->required();
    cmd->add_option("--tokens", a->tokens, "predictions per policy (the text must hold one more token)")
        ->capture_default_str();
    cmd->add_option("--every", a->every, "tokens between samples (default: about 20 samples)");
    cmd->add_option("--max-cache", a->max_cache,
                    "dense's bound in tokens (default: the model's positions when learned or sinusoidal, else 8192)");
    add_streaming_flags(cmd, a->streaming);
    cmd->add_option("--json", a->json, "write settings, summary, samples and per-token NLL of every policy");
    cmd->add_option("--csv", a->csv, "write the samples (policy, tokens, ppl, ppl_recent, tokens/s, RSS, cache bytes)");
    add_threads_option(*cmd, a->threads);
    cmd->add_flag("--quiet", a->quiet, "no progress bar");
    cmd->callback([a] { run_stream_command(*a); });
}

}  // namespace sinklab::cli
