#pragma once
// KV-cache policies of a stream: which tokens a cache keeps when it is full. Each policy is a small
// value type; all of them drive the same cache and the same attention kernel (streaming_cache.h).
//
// A policy sees the held tokens in stream order (rank 0 = the oldest held) and, before a step of
// `incoming` new tokens, names the ranks to drop so that the step fits its capacity. StreamingLLM
// evicts after each step (streaming_llm/kv_cache.py, docs/streaming.md); dropping before the next
// step is the same thing: a step attends over what is held plus the new tokens.
//
// | policy          | holds between steps          | a one-token step attends over |
// |-----------------|------------------------------|-------------------------------|
// | dense           | everything (up to a bound)   | every token so far            |
// | window:W        | the last W tokens            | W + 1                         |
// | sink:S+W        | the first S and the last W   | S + W + 1 (StartRecentKVCache)|
// | sink:auto[S]+W  | the S most attended, last W  | S + W + 1                     |
// | shift:K[/N]     | llama.cpp context shift      | at most N - 1                 |
// | recompute:W     | nothing: each step recomputes the last W tokens from scratch | W |
#include <span>
#include <string>
#include <variant>
#include <utility>
#include <vector>

namespace sinklab {

inline constexpr int kDefaultSinkTokens = 4;  // StreamingLLM's four initial tokens

// Every policy answers the same questions:
//   name()       the text parse_cache_policy reads back;
//   capacity()   the rows a cache needs for a one-token step (what is held plus the new token);
//   max_step()   the most tokens one step may bring so that room can always be made for them;
//   evict(held, incoming, sink_scores)
//                the ranks (stream order, 0 = the oldest held) to drop before a step of `incoming`
//                tokens when `held` are held: sorted, distinct, leaving held' + incoming within
//                capacity(). sink_scores (one per held rank) feed sink:auto.

// Keep everything; a step that would hold more than `max_tokens` cannot run (a clear stop).
struct DenseCache {
    int max_tokens = 0;  // 0 until the stream sets it from --max-cache or the model (StreamingCache)
    std::string name() const { return "dense"; }
    int capacity() const { return max_tokens; }
    int max_step() const { return max_tokens; }
    std::vector<int> evict(int held, int incoming, std::span<const double> sink_scores) const { return {}; }
};

// The last `recent` tokens.
struct WindowCache {
    int recent = 0;
    std::string name() const;
    int capacity() const { return recent + 1; }
    int max_step() const { return recent + 1; }
    std::vector<int> evict(int held, int incoming, std::span<const double> sink_scores) const;
};

// The first `sinks` tokens of the stream and the last `recent` (StreamingLLM's StartRecentKVCache).
struct SinkCache {
    int sinks = kDefaultSinkTokens;
    int recent = 0;
    std::string name() const;
    int capacity() const { return sinks + recent + 1; }
    int max_step() const { return recent + 1; }
    std::vector<int> evict(int held, int incoming, std::span<const double> sink_scores) const;
};

// The `sinks` older tokens that have received the most attention so far (their sink score: the
// mean weight over the queries, layers and heads that saw them; ties keep the older token), and
// the last `recent`. No anchor: the kept tokens need not be the first ones.
struct AutoSinkCache {
    int sinks = kDefaultSinkTokens;
    int recent = 0;
    std::string name() const;
    int capacity() const { return sinks + recent + 1; }
    int max_step() const { return recent + 1; }
    std::vector<int> evict(int held, int incoming, std::span<const double> sink_scores) const;
};

// llama.cpp's context shift (tools/main/main.cpp, docs/streaming.md): when the held tokens and the
// step reach the context (n_past + n >= n_ctx), keep the first `keep`, drop the older half of the
// rest (n_discard = (n_past - n_keep) / 2), and the survivors move down by n_discard.
struct ContextShift {
    int keep = 0;
    int context = 0;  // n_ctx; 0 until the stream sets it to the model's context (max_seq_len)
    bool context_given = false;  // written as shift:K/N
    std::string name() const;
    int capacity() const { return context - 1; }
    int max_step() const { return context - keep - 2; }
    std::vector<int> evict(int held, int incoming, std::span<const double> sink_scores) const;
};

// No cache between steps: every token recomputes the last `window` tokens, itself included, from
// scratch (StreamingLLM's "sliding window with re-computation", its quality oracle; slow by design).
struct RecomputeWindow {
    int window = 0;
    std::string name() const;
    int capacity() const { return window; }
    int max_step() const { return 1; }
    std::vector<int> evict(int held, int incoming, std::span<const double> sink_scores) const { return {}; }
};

using CachePolicy = std::variant<DenseCache, WindowCache, SinkCache, AutoSinkCache, ContextShift, RecomputeWindow>;

// Parses one policy name: dense, window:W, sink:S+W, sink:W (S = 4), sink:auto+W, sink:autoS+W,
// shift:K, shift:K/N, recompute:W. Throws naming `flag` with the accepted forms.
CachePolicy parse_cache_policy(const std::string& text, const std::string& flag = "--policy");
// A comma-separated list of them.
std::vector<CachePolicy> parse_cache_policies(const std::string& list, const std::string& flag = "--policy");
std::string policy_name(const CachePolicy& policy);
// "dense", "window", "sink", "sink_auto", "shift", "recompute".
std::string policy_kind(const CachePolicy& policy);
// The policy's numbers by name (recent, sinks, keep, context, window, max_tokens), for JSON.
std::vector<std::pair<std::string, int>> policy_settings(const CachePolicy& policy);
int policy_capacity(const CachePolicy& policy);
int policy_max_step(const CachePolicy& policy);
std::vector<int> ranks_to_evict(const CachePolicy& policy, int held, int incoming, std::span<const double> sink_scores);
// The forms, for --help.
std::string cache_policy_help();

}  // namespace sinklab
