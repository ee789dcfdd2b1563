#include "stream/streaming_cache.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <numeric>

#include <fmt/format.h>

#include "core/error.h"

namespace sinklab {

StreamPositions parse_stream_positions(const std::string& text, const std::string& flag) {
    if (text == "reindexed") return StreamPositions::reindexed;
    if (text == "absolute") return StreamPositions::absolute;
    fail("stream", "{} '{}': expected reindexed (positions inside the cache, StreamingLLM) or absolute (each "
         "token keeps its position in the stream)", flag, text);
}

std::string to_string(StreamPositions positions) {
    return positions == StreamPositions::reindexed ? "reindexed" : "absolute";
}

ExactTokens parse_exact_tokens(const std::string& text, const std::string& flag) {
    if (text == "none") return {};
    const size_t colon = text.find(':');
    const std::string kind = text.substr(0, colon), count = colon == std::string::npos ? "" : text.substr(colon + 1);
    int n = -1;
    const auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
    SINKLAB_CHECK((kind == "first" || kind == "auto") && !count.empty() && ec == std::errc() &&
                      end == count.data() + count.size() && n >= 1 && n <= 4096,
                  "stream", "{} '{}': expected none, first:S or auto:S with S from 1 to 4096", flag, text);
    return {kind == "first" ? ExactTokens::Kind::first : ExactTokens::Kind::automatic, n};
}

std::string to_string(const ExactTokens& exact) {
    switch (exact.kind) {
        case ExactTokens::Kind::none: return "none";
        case ExactTokens::Kind::first: return fmt::format("first:{}", exact.count);
        case ExactTokens::Kind::automatic: return fmt::format("auto:{}", exact.count);
    }
    return "none";
}

// The attention each held row has received, summed over the layers, heads and queries that saw
// it, from the weights the cache kernel computes anyway (Tap::attn_weights (1, NH, n, K), column j =
// cache row j). The sink score of a row is the mean: its alpha over everything that saw it.
class StreamingCache::AttentionTally : public TensorObserver {
public:
    explicit AttentionTally(int capacity) : sum_(capacity, 0.0), count_(capacity, 0.0) {}

    void begin_step(int first_new, int n) {
        std::fill(sum_.begin() + first_new, sum_.begin() + first_new + n, 0.0);
        std::fill(count_.begin() + first_new, count_.begin() + first_new + n, 0.0);
    }
    void move(int from, int to) {
        sum_[to] = sum_[from];
        count_[to] = count_[from];
    }
    double score(int row) const { return count_[row] > 0 ? sum_[row] / count_[row] : 0.0; }

    void observe(Tap tap, int layer, const float* w, const Shape& shape) override {
        if (tap != Tap::attn_weights) return;
        const int NH = static_cast<int>(shape[1]), n = static_cast<int>(shape[2]), K = static_cast<int>(shape[3]);
        const int first = K - n;
        for (int h = 0; h < NH; ++h)
            for (int i = 0; i < n; ++i) {
                const float* row = w + (static_cast<long>(h) * n + i) * K;
                for (int j = 0; j <= first + i; ++j) sum_[j] += row[j];
            }
        // query i sees rows 0 .. first + i: row j is seen by every query when held, by n - (j - first) when new
        for (int j = 0; j < K; ++j) count_[j] += static_cast<double>(NH) * (j < first ? n : n - (j - first));
    }

private:
    std::vector<double> sum_, count_;  // (capacity)
};

namespace {

// A learned position table has no row past max_seq_len; every other kind of position is a formula
// (RoPE, sinusoidal) or a distance (ALiBi, relative) and goes on (Transformer::check_positions).
bool table_positions(const ModelConfig& c) { return c.positions == PositionKind::learned; }

// The policy with the model's numbers: shift's context (n_ctx) defaults to the model's context,
// dense's bound to --max-cache, else the model's positions (or kDefaultDenseTokens past them).
CachePolicy resolve_policy(CachePolicy policy, const ModelConfig& c, const StreamingOptions& options) {
    if (auto* shift = std::get_if<ContextShift>(&policy); shift && !shift->context_given) {
        shift->context = c.max_seq_len;
        SINKLAB_CHECK(shift->context >= shift->keep + 3, "stream",
                      "{}: the model's context ({} tokens) must exceed the kept tokens by at least 3", shift->name(),
                      c.max_seq_len);
    }
    if (auto* dense = std::get_if<DenseCache>(&policy))
        dense->max_tokens = options.max_cache > 0 ? options.max_cache
                            : table_positions(c)  ? c.max_seq_len
                                                  : kDefaultDenseTokens;
    return policy;
}

size_t physical_memory_bytes() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
}

int checked_capacity(const CachePolicy& policy, const ModelConfig& c, const StreamingOptions& options) {
    const int capacity = policy_capacity(policy);
    const std::string name = policy_name(policy);
    SINKLAB_CHECK(capacity >= 1, "stream", "{}: the cache would hold no token", name);
    if (table_positions(c)) {
        SINKLAB_CHECK(options.positions == StreamPositions::reindexed || std::holds_alternative<DenseCache>(policy),
                      "stream",
                      "{} with --positions absolute: {} positions end at the model's max_seq_len ({}); absolute "
                      "positions need RoPE, sinusoidal, ALiBi, relative or no positions",
                      name, to_string(c.positions), c.max_seq_len);
        SINKLAB_CHECK(capacity <= c.max_seq_len, "stream",
                      "{} attends over up to {} tokens, but this model has {} positions for {} (max_seq_len): "
                      "choose a cache of at most {} tokens{}",
                      name, capacity, to_string(c.positions), c.max_seq_len, c.max_seq_len,
                      std::holds_alternative<DenseCache>(policy) ? " (--max-cache)" : " (for sink:S+W, S + W + 1)");
    }
    // The cache kernel's mask reads key indices, and an evicting cache holds its rows out of stream
    // order: a model's sliding window must cover the whole cache (then it hides nothing, as the
    // re-indexed distances stay below it), and a prefix-LM's prefix cannot be evicted.
    if (!std::holds_alternative<DenseCache>(policy)) {
        SINKLAB_CHECK(c.prefix == 0, "stream", "{}: a prefix-LM model (prefix {}) streams with dense only", name,
                      c.prefix);
        for (int l = 0; l < c.n_layers; ++l)
            SINKLAB_CHECK(c.window_of(l) == 0 || (capacity <= c.window_of(l) &&
                                                  options.positions == StreamPositions::reindexed),
                          "stream",
                          "{} attends over up to {} tokens, beyond layer {}'s sliding window of {}: choose a cache "
                          "within the window (with re-indexed positions)",
                          name, capacity, l, c.window_of(l));
    }
    // A typo must not allocate the machine away: refuse a cache beyond half its memory.
    const size_t bytes = static_cast<size_t>(capacity) * c.n_layers * c.n_kv_heads * c.hs() * 2 * sizeof(float);
    const size_t memory = physical_memory_bytes();
    SINKLAB_CHECK(memory == 0 || bytes <= memory / 2, "stream",
                  "{} needs {:.1f} GiB for its KV cache ({} tokens); this machine has {:.1f} GiB", name,
                  bytes / 1073741824.0, capacity, memory / 1073741824.0);
    return capacity;
}

// recompute keeps no cache between tokens: it computes in float32 whatever --kv says.
StreamingOptions effective_options(const CachePolicy& policy, StreamingOptions options) {
    if (std::holds_alternative<RecomputeWindow>(policy)) {
        options.kv = KvPrecision::f32;
        options.exact = {};
    }
    if (options.kv == KvPrecision::f32) options.exact = {};
    return options;
}

// The most tokens one step runs: as many as the policy can make room for; a quantized cache's steps
// bring at most one key group, so that the float32 room for them stays small (a prompt runs in
// pieces of kKvGroup tokens) and the cache's allocation stays below a float32 cache's.
int step_tokens(const CachePolicy& policy, const StreamingOptions& options) {
    const int most = policy_max_step(policy);
    return options.kv == KvPrecision::f32 ? most : std::min(most, kKvGroup);
}

// A quantized cache's float32 rows: the exact tokens, a key group waiting to be complete, a step.
KvStorage storage_for(const CachePolicy& policy, const StreamingOptions& options, int learned_sink) {
    return {options.kv, learned_sink + options.exact.count + kKvGroup + step_tokens(policy, options)};
}

}  // namespace

StreamingCache::StreamingCache(Transformer& model, const CachePolicy& policy, const StreamingOptions& options)
    : model_(model),
      policy_(resolve_policy(policy, model.config(), options)),
      options_(effective_options(policy_, options)),
      learned_sink_(model.config().attention.uses_sink_token() ? 1 : 0),
      cache_(model.config(), checked_capacity(policy_, model.config(), options_) + learned_sink_,
             storage_for(policy_, options_, learned_sink_)) {
    stream_index_.assign(static_cast<size_t>(cache_.capacity()), -1);
    exact_.assign(static_cast<size_t>(cache_.capacity()), 0);
    new_row_.resize(static_cast<size_t>(cache_.capacity()));
    std::iota(new_row_.begin(), new_row_.end(), 0);
    order_.reserve(static_cast<size_t>(cache_.capacity()));
    if (std::holds_alternative<AutoSinkCache>(policy_) || options_.exact.kind == ExactTokens::Kind::automatic)
        tally_ = std::make_unique<AttentionTally>(cache_.capacity());
}

StreamingCache::~StreamingCache() = default;

bool StreamingCache::can_take(int n) const {
    if (const auto* dense = std::get_if<DenseCache>(&policy_)) return held() + n <= dense->max_tokens;
    return true;
}

std::vector<int64_t> StreamingCache::held_tokens() const {
    if (std::holds_alternative<RecomputeWindow>(policy_)) {
        std::vector<int64_t> held(history_.size());
        std::iota(held.begin(), held.end(), seen_ - static_cast<int64_t>(history_.size()));
        return held;
    }
    std::vector<int64_t> held;
    held.reserve(order_.size());
    for (int row : order_) held.push_back(stream_index_[row]);
    return held;
}

int StreamingCache::position_of(int rank, int64_t stream_index) const {
    // a sink_token model's learned token holds position 0
    return learned_sink_ + (options_.positions == StreamPositions::reindexed ? rank : static_cast<int>(stream_index));
}

void StreamingCache::evict_for(int incoming) {
    scores_.clear();
    if (tally_)
        for (int row : order_) scores_.push_back(tally_->score(row));
    const std::vector<int> ranks = ranks_to_evict(policy_, held(), incoming, scores_);
    if (ranks.empty()) return;
    dropped_rows_.clear();
    for (int r : ranks) dropped_rows_.push_back(order_[r]);
    // the order without the dropped ranks (in place), then each survivor that moved follows its row
    size_t kept = 0;
    for (size_t r = 0, k = 0; r < order_.size(); ++r) {
        if (k < ranks.size() && ranks[k] == static_cast<int>(r))
            ++k;
        else
            order_[kept++] = order_[r];
    }
    order_.resize(kept);
    moves_.clear();
    cache_.remove_rows(dropped_rows_, [&](int from, int to) {
        moves_.emplace_back(from, to);
        stream_index_[to] = stream_index_[from];
        exact_[to] = exact_[from];
        if (tally_) tally_->move(from, to);
    });
    if (!moves_.empty()) {
        // rows move from the top of the cache into holes: map each survivor through them
        for (const auto& [from, to] : moves_) new_row_[from] = to;
        for (int& row : order_) row = new_row_[row];
        for (const auto& [from, to] : moves_) new_row_[from] = from;
    }
    if (options_.positions == StreamPositions::reindexed)
        for (int r = 0; r < held(); ++r) cache_.set_position(order_[r], position_of(r, 0));
}

const float* StreamingCache::run_chunk(const int32_t* tokens, int n) {
    evict_for(n);
    const int rank = held();
    step_positions_.resize(n);
    for (int i = 0; i < n; ++i) step_positions_[i] = position_of(rank + i, seen_ + i);
    // the rows this step adds: its tokens, after the learned sink token on a sink_token model's first step
    const int added = n + (learned_sink_ && cache_.length() == 0 ? 1 : 0);
    if (tally_) tally_->begin_step(cache_.length(), added);
    const float* logits = model_.forward_step(tokens, step_positions_.data(), n, cache_, tally_.get());
    const int first = cache_.length() - n;
    for (int i = 0; i < n; ++i) {
        order_.push_back(first + i);
        stream_index_[first + i] = seen_ + i;
        exact_[first + i] = options_.exact.kind == ExactTokens::Kind::first && seen_ + i < options_.exact.count;
    }
    seen_ += n;
    if (options_.kv != KvPrecision::f32) quantize_complete_groups();
    return logits;
}

void StreamingCache::quantize_complete_groups() {
    for (;;) {
        // the float rows that wait for their key group, oldest first
        std::vector<int> waiting;
        for (int row : order_)
            if (cache_.is_float(row) && !exact_[row]) waiting.push_back(row);
        if (static_cast<int>(waiting.size()) < kKvGroup) return;
        std::vector<int> group(waiting.begin(), waiting.begin() + kKvGroup);
        if (options_.exact.kind == ExactTokens::Kind::automatic) {
            // the tokens kept exact so far and this group compete: the S highest sink scores stay
            // float32 (ties: the older token), the rest are quantized now, together
            std::vector<int> candidates;
            for (int row : order_)
                if (exact_[row] || std::find(group.begin(), group.end(), row) != group.end()) candidates.push_back(row);
            std::stable_sort(candidates.begin(), candidates.end(),
                             [&](int a, int b) { return tally_->score(a) > tally_->score(b); });
            group.clear();
            for (size_t i = 0; i < candidates.size(); ++i) {
                exact_[candidates[i]] = static_cast<int>(i) < options_.exact.count;
                if (!exact_[candidates[i]]) group.push_back(candidates[i]);
            }
        }
        cache_.quantize(group);
    }
}

const float* StreamingCache::recompute_step(int32_t token) {
    const int window = std::get<RecomputeWindow>(policy_).window;
    if (static_cast<int>(history_.size()) == window) history_.erase(history_.begin());
    history_.push_back(token);
    const int n = static_cast<int>(history_.size());
    step_positions_.resize(n);
    for (int i = 0; i < n; ++i) step_positions_[i] = position_of(i, seen_ + 1 - n + i);  // a fresh cache each token
    cache_.clear();
    const float* logits = model_.forward_step(history_.data(), step_positions_.data(), n, cache_);
    ++seen_;
    return logits + static_cast<size_t>(n - 1) * model_.config().vocab_size;
}

const float* StreamingCache::step(const int32_t* tokens, int n) {
    SINKLAB_CHECK(n > 0, "stream", "a step needs at least one token");
    SINKLAB_CHECK(can_take(n), "stream",
                  "dense: the cache is full ({} tokens, its bound; --max-cache sets it) and {} more were given",
                  held(), n);
    const size_t V = static_cast<size_t>(model_.config().vocab_size);
    const bool recompute = std::holds_alternative<RecomputeWindow>(policy_);
    const int chunk = recompute ? 1 : step_tokens(policy_, options_);
    if (n <= chunk) return recompute ? recompute_step(tokens[0]) : run_chunk(tokens, n);
    logits_.resize(static_cast<size_t>(n) * V);
    for (int start = 0; start < n; start += chunk) {
        const int m = std::min(chunk, n - start);
        const float* logits = recompute ? recompute_step(tokens[start]) : run_chunk(tokens + start, m);
        std::memcpy(logits_.data() + static_cast<size_t>(start) * V, logits, static_cast<size_t>(m) * V * sizeof(float));
    }
    return logits_.data();
}

}  // namespace sinklab
