// `sinklab generate`: text from a model with a KV cache, greedy or sampled (temperature, top-p),
// streamed to stdout; timings to stderr. `--json` prints {"prompt_ids": [...], "generated_ids": [...]}
// instead, for scripts.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/tokenizer_choice.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "model/hf_loader.h"
#include "model/kv_cache.h"

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
    int threads = 0;
};

std::vector<int32_t> parse_ids(const std::string& text, int vocab_size) {
    std::vector<int32_t> ids;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t comma = std::min(text.find(',', start), text.size());
        const std::string item = text.substr(start, comma - start);
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
        start = comma + 1;
    }
    return ids;
}

// Samples from softmax(logits / temperature), restricted to the smallest set of most likely tokens
// whose probability reaches top_p (nucleus sampling, Holtzman et al. 2019).
int32_t sample(const float* logits, int V, double temperature, double top_p, Rng& rng) {
    const double max_logit = *std::max_element(logits, logits + V);
    std::vector<double> p(V);
    double total = 0.0;
    for (int i = 0; i < V; ++i) total += p[i] = std::exp((logits[i] - max_logit) / temperature);
    std::vector<int32_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    size_t kept = 0;
    double mass = 0.0;
    while (kept < order.size() && (kept == 0 || mass < top_p * total)) mass += p[order[kept++]];
    double r = rng.uniform() * mass;
    for (size_t i = 0; i < kept; ++i) {
        r -= p[order[i]];
        if (r < 0) return order[i];
    }
    return order[kept - 1];
}

int32_t greedy_pick(const float* logits, int V) {
    return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);  // the first maximum
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
    SINKLAB_CHECK(args.max_new_tokens >= 0, "generate", "--max-new-tokens must be >= 0");
    SINKLAB_CHECK(args.greedy || (args.temperature > 0 && std::isfinite(args.temperature)), "generate",
                  "--temperature must be positive (use --greedy for argmax decoding)");
    SINKLAB_CHECK(args.top_p > 0 && args.top_p <= 1, "generate", "--top-p must be in (0, 1]");
    set_threads(args.threads);

    ModelInfo info;
    const auto load_start = std::chrono::steady_clock::now();
    auto model = load_model(args.model, &info);
    const ModelConfig& c = model->config();
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
    const int P = static_cast<int>(prompt.size());
    SINKLAB_CHECK(P <= c.max_seq_len, "generate", "the prompt has {} tokens; the model's context is {}", P,
                  c.max_seq_len);
    const int capacity = std::min(c.max_seq_len, P + args.max_new_tokens);

    std::vector<int32_t> eos = info.eos_ids;
    if (tokenizer && tokenizer->eos_id) eos.push_back(*tokenizer->eos_id);
    auto is_eos = [&](int32_t id) { return !args.ignore_eos && std::find(eos.begin(), eos.end(), id) != eos.end(); };

    KVCache cache(c, capacity);
    Rng rng(args.seed);
    TextStream stream(args.json ? nullptr : tokenizer.get());
    std::vector<int32_t> ids = prompt;
    if (!args.json) stream.show(ids);

    const auto prefill_start = std::chrono::steady_clock::now();
    std::vector<int> positions(P);
    std::iota(positions.begin(), positions.end(), 0);
    const float* logits = model->forward_step(prompt.data(), positions.data(), P, cache) + static_cast<size_t>(P - 1) * V;
    const auto decode_start = std::chrono::steady_clock::now();
    std::vector<int32_t> generated;
    std::string stop = "max-new-tokens";
    while (static_cast<int>(generated.size()) < args.max_new_tokens) {
        const int32_t next = args.greedy ? greedy_pick(logits, V) : sample(logits, V, args.temperature, args.top_p, rng);
        generated.push_back(next);
        ids.push_back(next);
        if (!args.json) stream.show(ids);
        if (is_eos(next)) {
            stop = "end of sequence";
            break;
        }
        if (static_cast<int>(ids.size()) >= c.max_seq_len) {
            stop = fmt::format("the model's context ({} tokens)", c.max_seq_len);
            break;
        }
        if (static_cast<int>(generated.size()) == args.max_new_tokens) break;
        const int position = static_cast<int>(ids.size()) - 1;
        logits = model->forward_step(&next, &position, 1, cache);
    }
    const auto end = std::chrono::steady_clock::now();
    const double prefill_s = std::chrono::duration<double>(decode_start - prefill_start).count();
    const double decode_s = std::chrono::duration<double>(end - decode_start).count();

    if (args.json) {
        std::printf("%s\n", nlohmann::json{{"prompt_ids", prompt}, {"generated_ids", generated}}.dump().c_str());
    } else {
        std::printf("\n");
    }
    // Each generated token but the first costs one cached step; the first comes from the prompt's pass.
    const size_t steps = generated.empty() ? 0 : generated.size() - 1;
    std::fprintf(stderr, "prompt: %d tokens in %.3f s (%.0f tokens/s); generated %zu tokens in %.3f s (%.1f tokens/s); "
                 "stopped at %s\n",
                 P, prefill_s, P / std::max(prefill_s, 1e-9), generated.size(), decode_s,
                 steps / std::max(decode_s, 1e-9), stop.c_str());
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
    cmd->add_option("--threads", args->threads, "threads (0 = all cores)")->check(CLI::NonNegativeNumber);
    cmd->callback([args] {
        int rc = run_generate(*args);
        if (rc != 0) throw CLI::RuntimeError(rc);
    });
}

}  // namespace sinklab::cli
