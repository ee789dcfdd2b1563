#pragma once
// Long-stream evaluation, as StreamingLLM measures it (examples/eval_long_ppl.py): the text goes
// through the model one token at a time, through a streaming cache, and every token's negative
// log-likelihood of the next token is recorded; perplexity = exp(mean NLL). Every `every`
// predictions a sample records the running perplexity, the perplexity of the tokens since the last
// sample, the speed and the process's resident memory.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/transformer.h"
#include "stream/cache_policy.h"
#include "stream/streaming_cache.h"

namespace sinklab {

struct StreamSample {
    int64_t tokens = 0;         // predictions so far
    double ppl = 0.0;           // exp(mean NLL) over all of them
    double ppl_recent = 0.0;    // over those since the previous sample
    double tokens_per_s = 0.0;  // since the previous sample
    size_t rss_bytes = 0;       // the process's resident memory
};

struct PolicyStream {
    CachePolicy policy;  // with the model's numbers (StreamingCache::policy)
    StreamingOptions options;
    std::vector<float> nll;  // one per prediction, in nats
    std::vector<StreamSample> samples;
    double seconds = 0.0;
    size_t cache_bytes = 0;
    size_t peak_rss_bytes = 0;
    std::string stopped;  // empty when every token was read; else why the policy stopped early

    double mean_nll() const;
    double ppl() const;
    double tokens_per_s() const;
};

struct LongStreamOptions {
    int every = 1000;  // predictions between samples
    StreamingOptions streaming;
    bool progress = true;  // a progress bar with ETA on stderr
    std::function<void(const PolicyStream&, const StreamSample&)> on_sample;  // called as samples are taken
};

// Feeds tokens[0..N] one at a time: token t's logits predict token t + 1, so N = tokens.size() - 1
// predictions. A dense cache that reaches its bound stops there (PolicyStream::stopped).
PolicyStream run_policy_stream(Transformer& model, const CachePolicy& policy, std::span<const int32_t> tokens,
                               const LongStreamOptions& options);

// {"policy", "kind", "settings": {...}, "summary": {...}, "samples": [...], "nll": [...]}; NLL values
// are rounded to 1e-6 nats (the JSON stays a few bytes per token).
nlohmann::json to_json(const PolicyStream& run);

}  // namespace sinklab
