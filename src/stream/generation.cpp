#include "stream/generation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "core/error.h"

namespace sinklab {

int32_t sample_next_token(const float* logits, int V, const SamplingOptions& options, Rng& rng) {
    if (options.greedy) return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);  // the first maximum
    const double max_logit = *std::max_element(logits, logits + V);
    std::vector<double> p(V);
    double total = 0.0;
    for (int i = 0; i < V; ++i) total += p[i] = std::exp((logits[i] - max_logit) / options.temperature);
    std::vector<int32_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    size_t kept = 0;
    double mass = 0.0;
    while (kept < order.size() && (kept == 0 || mass < options.top_p * total)) mass += p[order[kept++]];
    double r = rng.uniform() * mass;
    for (size_t i = 0; i < kept; ++i) {
        r -= p[order[i]];
        if (r < 0) return order[i];
    }
    return order[kept - 1];
}

void check_generation_options(const GenerationOptions& options) {
    SINKLAB_CHECK(options.max_new_tokens >= 0, "generate", "--max-new-tokens must be >= 0");
    SINKLAB_CHECK(options.sampling.greedy ||
                      (options.sampling.temperature > 0 && std::isfinite(options.sampling.temperature)),
                  "generate", "--temperature must be positive (use --greedy for argmax decoding)");
    SINKLAB_CHECK(options.sampling.top_p > 0 && options.sampling.top_p <= 1, "generate", "--top-p must be in (0, 1]");
}

Generation generate(Transformer& model, const std::vector<int32_t>& prompt, const GenerationOptions& options,
                    const std::function<void(const std::vector<int32_t>& ids)>& on_tokens) {
    const ModelConfig& c = model.config();
    const int V = c.vocab_size, P = static_cast<int>(prompt.size());
    SINKLAB_CHECK(P >= 1, "generate", "the prompt is empty");
    // Learned positions end at max_seq_len; the others (RoPE, sinusoidal, ALiBi, relative, none)
    // extrapolate, and the generation goes on past it.
    // A policy other than dense streams past them in constant memory.
    const bool bounded = c.positions == PositionKind::learned;
    const bool dense = std::holds_alternative<DenseCache>(options.cache);
    SINKLAB_CHECK(!dense || !bounded || P <= c.max_seq_len, "generate",
                  "the prompt has {} tokens; the model's learned positions end at {} (a --cache policy other than "
                  "dense streams past them)",
                  P, c.max_seq_len);
    check_generation_options(options);
    auto is_eos = [&](int32_t id) {
        return !options.ignore_eos && std::find(options.eos_ids.begin(), options.eos_ids.end(), id) != options.eos_ids.end();
    };
    auto show = [&](const std::vector<int32_t>& ids) {
        if (on_tokens) on_tokens(ids);
    };

    StreamingOptions streaming = options.streaming;
    // dense holds the prompt and what is generated, never more than needed
    const int needed = P + std::max(options.max_new_tokens, 1);
    if (dense) streaming.max_cache = bounded ? std::min(c.max_seq_len, needed) : needed;
    StreamingCache cache(model, options.cache, streaming);
    Rng rng(options.seed);
    std::vector<int32_t> ids = prompt;
    show(ids);
    Generation g;
    g.stop = "max-new-tokens";
    g.cache = fmt::format("{}, {} positions, {} (exact: {}), {} bytes", policy_name(cache.policy()),
                          to_string(cache.options().positions), to_string(cache.options().kv),
                          to_string(cache.options().exact), cache.cache_bytes());
    const auto prefill_start = std::chrono::steady_clock::now();
    const float* logits = cache.step(prompt.data(), P) + static_cast<size_t>(P - 1) * V;
    const auto decode_start = std::chrono::steady_clock::now();
    while (static_cast<int>(g.generated.size()) < options.max_new_tokens) {
        const int32_t next = sample_next_token(logits, V, options.sampling, rng);
        g.generated.push_back(next);
        ids.push_back(next);
        show(ids);
        if (is_eos(next)) {
            g.stop = "end of sequence";
            break;
        }
        if (static_cast<int>(g.generated.size()) == options.max_new_tokens) break;
        if (dense && static_cast<int>(ids.size()) >= streaming.max_cache) {  // learned positions: the context is full
            g.stop = fmt::format("the model's context ({} tokens)", c.max_seq_len);
            break;
        }
        logits = cache.step(&next, 1);
    }
    const auto end = std::chrono::steady_clock::now();
    g.prefill_seconds = std::chrono::duration<double>(decode_start - prefill_start).count();
    g.decode_seconds = std::chrono::duration<double>(end - decode_start).count();
    return g;
}

std::string beyond_context_note(const ModelConfig& c, int prompt_tokens, int max_new_tokens) {
    const int longest = prompt_tokens + max_new_tokens;
    if (c.positions == PositionKind::learned || longest <= c.max_seq_len) return "";
    return fmt::format("up to {} tokens exceed the model's max_seq_len {}: its {} positions extrapolate", longest,
                       c.max_seq_len, to_string(c.positions));
}

}  // namespace sinklab
