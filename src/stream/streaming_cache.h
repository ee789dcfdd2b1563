#pragma once
// StreamingCache: a model reading an endless stream in constant memory. It owns the model's KV cache
// and a policy (cache_policy.h); before each step the policy names the tokens to drop, and the
// tokens kept are re-indexed: their positions become their places in the cache, so a cache holding
// the tokens [0,1,2,3,6,7,8] decodes token 9 at positions 0..7 (StreamingLLM section 3.2). The
// cache holds keys before RoPE and the kernel rotates each at its position, so re-indexing moves
// no data. `absolute` keeps each token's original position instead, to show why re-indexing matters.
//
// The same engine runs every step (Transformer::forward_step); nothing here computes attention.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/kv_cache.h"
#include "model/transformer.h"
#include "ops/kv_quant.h"
#include "stream/cache_policy.h"

namespace sinklab {

enum class StreamPositions {
    reindexed,  // a held token's position is its place in the cache (StreamingLLM, llama.cpp's shift)
    absolute,   // a held token keeps its position in the stream
};
StreamPositions parse_stream_positions(const std::string& text, const std::string& flag = "--positions");
std::string to_string(StreamPositions positions);

// Tokens a quantized cache keeps in float32 (IntactKV, KVQuant keep the first tokens exact):
// none; the first S of the stream; or the S with the highest sink score when a key group is
// quantized (among the group and the tokens kept so far; the others are quantized then, once).
struct ExactTokens {
    enum class Kind { none, first, automatic } kind = Kind::none;
    int count = 0;
};
ExactTokens parse_exact_tokens(const std::string& text, const std::string& flag = "--kv-exact");
std::string to_string(const ExactTokens& exact);

struct StreamingOptions {
    StreamPositions positions = StreamPositions::reindexed;
    // Dense's bound in tokens; 0: the model's positions for learned or sinusoidal ones, else
    // kDefaultDenseTokens.
    int max_cache = 0;
    // The cache's precision (ops/kv_quant.h): keys per channel in groups of kKvGroup tokens, values
    // per token in groups of kKvGroup channels; a token waits in float32 until its key group is
    // complete. recompute keeps no cache between tokens and computes in float32.
    KvPrecision kv = KvPrecision::f32;
    ExactTokens exact{};
};
inline constexpr int kDefaultDenseTokens = 8192;

class StreamingCache {
public:
    // Throws, naming the policy, when the model cannot run it: a cache larger than learned positions
    // allow, absolute positions past a position table, a cache larger than this machine's memory.
    StreamingCache(Transformer& model, const CachePolicy& policy, const StreamingOptions& options = {});
    ~StreamingCache();
    StreamingCache(const StreamingCache&) = delete;
    StreamingCache& operator=(const StreamingCache&) = delete;

    // Whether a step of n more tokens can run: false only for dense at its bound.
    bool can_take(int n) const;
    // Runs the stream's next n tokens (in steps the policy can make room for) and returns their
    // logits (n, V), valid until the next call.
    const float* step(const int32_t* tokens, int n);

    // The policy with the model's numbers filled in (shift's context, dense's bound).
    const CachePolicy& policy() const { return policy_; }
    const StreamingOptions& options() const { return options_; }
    int64_t tokens_seen() const { return seen_; }
    int held() const { return static_cast<int>(order_.size()); }
    // The stream index of every held token, oldest first.
    std::vector<int64_t> held_tokens() const;
    // Bytes of keys and values the cache holds room for (its whole allocation; recompute's too).
    size_t cache_bytes() const { return cache_.bytes(); }
    const KVCache& cache() const { return cache_; }
    // The rows of the cache in stream order (row of the oldest held token first); a sink_token
    // model's learned token (row 0) is not a stream token and is not among them.
    const std::vector<int>& rows_in_order() const { return order_; }

private:
    class AttentionTally;  // the sink scores of held rows, from the kernel's attention weights
    void evict_for(int incoming);
    // Quantized caches: quantizes each complete key group of float rows (the oldest first).
    void quantize_complete_groups();
    const float* run_chunk(const int32_t* tokens, int n);
    const float* recompute_step(int32_t token);
    int position_of(int rank, int64_t stream_index) const;

    Transformer& model_;
    CachePolicy policy_;
    StreamingOptions options_;
    int learned_sink_;  // 1 for a sink_token model: its learned token is the cache's row 0, never dropped
    KVCache cache_;
    std::unique_ptr<AttentionTally> tally_;  // sink:auto only
    std::vector<int> order_;                 // physical rows in stream order
    std::vector<int64_t> stream_index_;      // per physical row
    std::vector<char> exact_;                // per physical row: kept in float32 (--kv-exact)
    std::vector<int32_t> history_;           // recompute: the last `window` tokens, oldest first
    std::vector<int> step_positions_;
    // scratch of evict_for, kept between steps so that a step allocates nothing
    std::vector<double> scores_;
    std::vector<int> dropped_rows_;
    std::vector<std::pair<int, int>> moves_;
    std::vector<int> new_row_;  // identity, but for the rows moving during one eviction
    std::vector<float> logits_;              // (n, V) of the last step() made of several chunks
    int64_t seen_ = 0;
};

}  // namespace sinklab
