// `sinklab generate`: text from a model with a KV cache, greedy or sampled (temperature, top-p),
// streamed to stdout; timings to stderr. `--json` prints {"prompt_ids": [...], "generated_ids": [...]}
// instead, for scripts. `--cache POLICY` runs the streaming caches of src/stream: with any policy but
// dense, generation goes on in constant memory for any --max-new-tokens.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/streaming_flags.h"
#include "cli/threads_option.h"
#include "cli/tokenizer_choice.h"
#include "core/error.h"
#include "core/text.h"
#include "core/threads.h"
#include "model/hf_loader.h"
#include "stream/generation.h"

namespace sinklab::cli {

namespace {

struct GenerateArgs {
    std::string model;
    std::string tokenizer;
    std::string prompt;
    bool has_prompt = false;
    std::string prompt_ids;
    int max_new_tokens = 128;
    bool greedy = false;
    double temperature = 0.8;
    double top_p = 0.95;
    uint64_t seed = 0;
    bool no_bos = false;
    bool ignore_eos = false;
    bool json = false;
    std::string cache = "dense";
    StreamingFlags streaming;
    int threads = 0;
};

std::vector<int32_t> parse_ids(const std::string& text, int vocab_size) {
    std::vector<int32_t> ids;
    for (const std::string& item : split_list(text)) {
        size_t used = 0;
        long long id = -1;
        try {
            id = std::stoll(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        SINKLAB_CHECK(used == item.size() && !item.empty(), "generate",
                      "--prompt-ids: '{}' is not a token id (expected comma-separated integers, e.g. 1,17,200)", item);
        SINKLAB_CHECK(id >= 0 && id < vocab_size, "generate",
                      "--prompt-ids: id {} is outside the model's vocabulary (ids 0..{})", id, vocab_size - 1);
        ids.push_back(static_cast<int32_t>(id));
    }
    return ids;
}

// Shows each new id as the text it adds: the ids so far are decoded again and what is beyond the
// text already on the screen is printed, which keeps each format's rules (SentencePiece's leading
// space, UTF-8 characters split across tokens) right. Without a tokenizer the ids themselves.
class TextStream {
public:
    explicit TextStream(const Tokenizer* tokenizer) : tokenizer_(tokenizer) {}
    // Shows ids[shown..] (the ids added since the last call).
    void show(const std::vector<int32_t>& ids) {
        for (size_t i = shown_; i < ids.size(); ++i) {
            if (!tokenizer_) {
                std::printf("%s%d", i ? " " : "", ids[i]);
            } else if (ids[i] < tokenizer_->vocab_size()) {
                decoded_.push_back(ids[i]);
            } else {  // a padded embedding row beyond the tokenizer's vocabulary (Qwen2 has some)
                print_new_text();
                std::printf("[%d]", ids[i]);
            }
        }
        print_new_text();
        shown_ = ids.size();
        std::fflush(stdout);
    }

private:
    void print_new_text() {
        if (!tokenizer_) return;
        const std::string text = tokenizer_->decode(decoded_);
        if (text.size() > printed_.size() && text.compare(0, printed_.size(), printed_) == 0)
            std::fwrite(text.data() + printed_.size(), 1, text.size() - printed_.size(), stdout);
        printed_ = text;
    }

    const Tokenizer* tokenizer_;
    std::vector<int32_t> decoded_;  // the ids shown so far that the tokenizer knows
    std::string printed_;           // their text, as far as it is on the screen
    size_t shown_ = 0;
};

int run_generate(const GenerateArgs& args) {
    SINKLAB_CHECK(args.has_prompt != !args.prompt_ids.empty(), "generate",
                  "give the prompt as --prompt TEXT or as --prompt-ids 1,17,200 (exactly one of them)");
    GenerationOptions options;
    options.max_new_tokens = args.max_new_tokens;
    options.sampling = {args.greedy, args.temperature, args.top_p};
    options.seed = args.seed;
    options.ignore_eos = args.ignore_eos;
    options.cache = parse_cache_policy(args.cache, "--cache");
    options.streaming = parse_streaming_flags(args.streaming);
    check_generation_options(options);
    set_threads(args.threads);

    ModelInfo info;
    const auto load_start = std::chrono::steady_clock::now();
    auto model = load_model(args.model, &info);
    const ModelConfig& c = model->config();
    SINKLAB_CHECK(c.causal, "generate",
                  "{} is an encoder ({}, bidirectional attention): it predicts masked tokens, not the next one, so it "
                  "cannot generate; use probe, analyze or report",
                  args.model, info.architecture);
    const int V = c.vocab_size;
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
    std::fprintf(stderr, "%s (%s, %s weights, %zu parameters) loaded in %.2f s\n", info.path.c_str(),
                 info.architecture.c_str(), info.dtype.c_str(), model->num_params(), load_s);

    const std::unique_ptr<Tokenizer> tokenizer = choose_tokenizer(args.tokenizer, args.model);
    std::vector<int32_t> prompt;
    if (args.has_prompt) {
        SINKLAB_CHECK(tokenizer != nullptr, "generate",
                      "no tokenizer found for {}: pass --tokenizer PATH, or give the prompt as --prompt-ids",
                      args.model);
        const std::optional<int32_t> bos = tokenizer->bos_id ? tokenizer->bos_id : info.bos_id;
        if (!args.no_bos && bos && tokenizer->add_bos_by_default) prompt.push_back(*bos);
        const std::vector<int32_t> text_ids = tokenizer->encode(args.prompt);
        prompt.insert(prompt.end(), text_ids.begin(), text_ids.end());
        SINKLAB_CHECK(!prompt.empty(), "generate", "the prompt is empty and the tokenizer adds no BOS token");
        for (int32_t id : prompt)
            SINKLAB_CHECK(id >= 0 && id < V, "generate",
                          "the tokenizer gave id {}, outside the model's vocabulary (ids 0..{}): does --tokenizer "
                          "belong to this model?",
                          id, V - 1);
    } else {
        prompt = parse_ids(args.prompt_ids, V);
    }
    options.eos_ids = info.eos_ids;
    if (tokenizer && tokenizer->eos_id) options.eos_ids.push_back(*tokenizer->eos_id);

    if (const std::string note = beyond_context_note(model->config(), static_cast<int>(prompt.size()), options.max_new_tokens);
        !note.empty() && std::holds_alternative<DenseCache>(options.cache))
        std::fprintf(stderr, "%s\n", note.c_str());
    TextStream stream(args.json ? nullptr : tokenizer.get());
    const Generation g = generate(*model, prompt, options, [&](const std::vector<int32_t>& ids) {
        if (!args.json) stream.show(ids);
    });
    std::fprintf(stderr, "KV cache: %s\n", g.cache.c_str());
    if (args.json) {
        std::printf("%s\n", nlohmann::json{{"prompt_ids", prompt}, {"generated_ids", g.generated}}.dump().c_str());
    } else {
        std::printf("\n");
    }
    // Each generated token but the first costs one cached step; the first comes from the prompt's pass.
    const int P = static_cast<int>(prompt.size());
    const size_t steps = g.generated.empty() ? 0 : g.generated.size() - 1;
    std::fprintf(stderr, "prompt: %d tokens in %.3f s (%.0f tokens/s); generated %zu tokens in %.3f s (%.1f tokens/s); "
                 "stopped at %s\n",
                 P, g.prefill_seconds, P / std::max(g.prefill_seconds, 1e-9), g.generated.size(), g.decode_seconds,
                 steps / std::max(g.decode_seconds, 1e-9), g.stop.c_str());
    return 0;
}

}  // namespace

void add_generate_command(CLI::App& app) {
    auto args = std::make_shared<GenerateArgs>();
    CLI::App* cmd = app.add_subcommand("generate",
        "Generate text with a KV cache: greedy (--greedy) or sampled with temperature and top-p.\n"
        "--model takes a Hugging Face folder, a sinklab model or run folder, or a llama2.c .bin file.\n"
        "The text streams to stdout and timings go to stderr; --json prints only\n"
        "{\"prompt_ids\": [...], \"generated_ids\": [...]} on stdout.");
    cmd->add_option("--model", args->model, "model folder, training run, or llama2.c .bin")->required();
    cmd->add_option("--tokenizer", args->tokenizer,
                    "tokenizer (default: the model's own; llama2.c: tokenizer.bin or tok<vocab>.bin beside it)");
    cmd->add_option_function<std::string>("--prompt", [args](const std::string& v) {
        args->prompt = v;
        args->has_prompt = true;
    }, "prompt text (a BOS token is added when the tokenizer asks for one)");
    cmd->add_option("--prompt-ids", args->prompt_ids, "prompt as comma-separated token ids, used as given: 1,17,200");
    cmd->add_option("--max-new-tokens", args->max_new_tokens, "tokens to generate at most")->capture_default_str();
    cmd->add_flag("--greedy", args->greedy, "always take the most likely token (argmax)");
    cmd->add_option("--temperature", args->temperature, "sampling temperature")->capture_default_str();
    cmd->add_option("--top-p", args->top_p, "nucleus sampling: keep the most likely tokens up to this probability")
        ->capture_default_str();
    cmd->add_option("--seed", args->seed, "seed of the sampler")->capture_default_str();
    cmd->add_flag("--no-bos", args->no_bos, "do not add the tokenizer's BOS token before --prompt");
    cmd->add_flag("--ignore-eos", args->ignore_eos, "keep generating past end-of-sequence tokens");
    cmd->add_flag("--json", args->json, "print {\"prompt_ids\": [...], \"generated_ids\": [...]} instead of text");
    cmd->add_option("--cache", args->cache,
                    "KV-cache policy: dense (stops at learned positions) or a streaming one that goes on in constant "
                    "memory: window:W, sink:S+W, sink:auto+W, shift:K, recompute:W (docs/streaming.md)")
        ->capture_default_str();
    add_streaming_flags(cmd, args->streaming);
    add_threads_option(*cmd, args->threads);
    cmd->callback([args] {
        int rc = run_generate(*args);
        if (rc != 0) throw CLI::RuntimeError(rc);
    });
}

}  // namespace sinklab::cli
