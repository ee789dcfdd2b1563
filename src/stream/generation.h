#pragma once
// Generation with a KV cache: the prompt in one pass, then one cached step per new token, each
// picked from the last logits greedily or by nucleus sampling (Holtzman et al. 2019). The same
// Transformer as training and probing (forward_step).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "model/transformer.h"
#include "stream/streaming_cache.h"

namespace sinklab {

struct SamplingOptions {
    bool greedy = false;       // the most likely token (the first of equal maxima)
    double temperature = 0.8;  // softmax(logits / temperature); > 0
    double top_p = 0.95;       // the smallest set of most likely tokens whose probability reaches top_p; (0, 1]
};

// The next token from logits (V): greedy, or sampled from softmax(logits / temperature) restricted to
// the nucleus of probability top_p (ties in probability broken by the smaller id).
int32_t sample_next_token(const float* logits, int V, const SamplingOptions& options, Rng& rng);

struct GenerationOptions {
    int max_new_tokens = 128;
    SamplingOptions sampling;
    uint64_t seed = 0;                // of the sampler
    std::vector<int32_t> eos_ids{};   // generation stops after one of them
    bool ignore_eos = false;          // keep going past them
    // The KV cache (stream/streaming_cache.h): dense holds the prompt and every new token (up to the
    // learned positions); any other policy generates in constant memory for any max_new_tokens.
    CachePolicy cache = DenseCache{};
    StreamingOptions streaming{};  // positions, precision, exact tokens (its max_cache is set here for dense)
};

struct Generation {
    std::vector<int32_t> generated;  // the new tokens
    std::string stop;                // why it stopped: "max-new-tokens", "end of sequence", "the model's context (N tokens)"
    double prefill_seconds = 0.0;    // the prompt's pass
    double decode_seconds = 0.0;     // the cached steps
    std::string cache;               // the cache: its policy, positions, precision and bytes, in words
};

// Throws naming the flag for options generate cannot run with.
void check_generation_options(const GenerationOptions& options);

// The line saying that prompt + new tokens run past max_seq_len on positions that extrapolate, or
// empty (learned positions stop at max_seq_len instead).
std::string beyond_context_note(const ModelConfig& config, int prompt_tokens, int max_new_tokens);

// Generates after `prompt` (at least one token; at most max_seq_len for learned positions, which
// also stop the generation there; other positions extrapolate past it). `on_tokens`, when
// given, sees the prompt and then the prompt with each new token as it is picked (to stream text).
Generation generate(Transformer& model, const std::vector<int32_t>& prompt, const GenerationOptions& options,
                    const std::function<void(const std::vector<int32_t>& ids)>& on_tokens = {});

}  // namespace sinklab
