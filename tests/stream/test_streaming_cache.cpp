// The streaming cache in the one engine: exact where it must be exact.
// - While a stream is shorter than the cache, sink, window and shift give dense's logits (1e-5).
// - recompute:W equals a plain forward over the last W tokens (1e-5).
// - A cached key is held before RoPE and, once re-indexed, is the pre-rotation key rotated at its
//   new position (1e-6).
// - In a one-layer RoPE model a token's keys and values depend on the token alone, so every step of
//   every policy equals a fresh forward over the tokens the cache kept, at positions 0..n (1e-5):
//   eviction and re-indexing together, end to end.
// - Every design of AttentionSpec streams, in the gpt2 style (learned positions) and the llama style
//   (RoPE), and softmax with ALiBi and relative positions (distances inside the cache): the slot
//   designs see their slot, the learned sink token's row stays (at position 0, every stream token
//   moves up by one).
// - The kept tokens are the policy's: the first S and the last W, llama.cpp's halving, the most
//   attended; memory stays what was allocated; bad settings are clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "model/hf_loader.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "stream/streaming_cache.h"
#include "stream_test_support.h"

namespace sinklab {
namespace {

constexpr double kTol = 1e-5;
constexpr double kSignedNormaliserTol = 1e-4;  // identity_norm across two kernels (see its use)

ModelConfig small_model(const std::string& style, int layers, int max_seq_len = 128) {
    ModelConfig c = ModelConfig::for_style(style);
    c.vocab_size = 37;
    c.d_model = 32;
    c.n_layers = layers;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.max_seq_len = max_seq_len;
    c.init_std = 0.3f;  // attention far from uniform, so positions matter
    return c;
}

using test::random_ids;

double max_abs_diff(const float* a, const float* b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
    return m;
}

// max |a - b| / (tol + tol |b|) <= 1 is all_close(a, b, tol, tol) of the KvCache tests: a one-token
// step (a matrix-vector product) against a forward over many tokens (sgemm) rounds differently.
double max_error_over_bound(const float* a, const float* b, size_t n, double tol) {
    double m = 0.0;
    for (size_t i = 0; i < n; ++i)
        m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]) / (tol + tol * std::fabs(static_cast<double>(b[i]))));
    return m;
}

// The logits of the last token of a plain forward over `ids`.
std::vector<float> last_logits_of_forward(Transformer& model, const std::vector<int32_t>& ids) {
    const int T = static_cast<int>(ids.size()), V = model.config().vocab_size;
    model.forward(ids.data(), nullptr, 1, T, ForwardOptions{false});
    return std::vector<float>(model.logits() + static_cast<size_t>(T - 1) * V, model.logits() + static_cast<size_t>(T) * V);
}

// Streams `ids` one token at a time; returns every step's logits (T, V).
std::vector<float> stream_logits(Transformer& model, const CachePolicy& policy, const std::vector<int32_t>& ids,
                                  StreamingOptions options = {}) {
    StreamingCache cache(model, policy, options);
    const int V = model.config().vocab_size;
    std::vector<float> all;
    for (int32_t id : ids) {
        const float* logits = cache.step(&id, 1);
        all.insert(all.end(), logits, logits + V);
    }
    return all;
}

// Every design in both styles, and softmax with the score-bias positions.
std::vector<std::pair<std::string, ModelConfig>> streamed_designs(int layers, int max_seq_len = 128) {
    std::vector<std::pair<std::string, ModelConfig>> designs;
    for (const char* style : {"gpt2", "llama"}) {
        for (const std::string& attention : AttentionSpec::known_names()) {
            ModelConfig c = small_model(style, layers, max_seq_len);
            c.attention = AttentionSpec::parse(attention);
            designs.emplace_back(std::string(style) + " " + attention, c);
        }
    }
    for (const PositionKind positions : {PositionKind::alibi, PositionKind::relative}) {
        ModelConfig c = small_model("llama", layers, max_seq_len);
        c.positions = positions;
        designs.emplace_back("llama " + to_string(positions), c);
    }
    return designs;
}

TEST(StreamingCache, ShorterThanTheCacheEveryPolicyIsDense) {
    for (const auto& [name, config] : streamed_designs(2)) {
        SCOPED_TRACE(name);
        Transformer model(config);
        model.init_weights(7);
        const std::vector<int32_t> ids = random_ids(40, model.config().vocab_size, 3);
        const std::vector<float> dense = stream_logits(model, DenseCache{}, ids);
        // the same logits as the whole-sequence forward: another kernel and other products (1e-5
        // absolute plus relative, as the KvCache tests), whose rounding identity_norm amplifies (it
        // divides by max(|S|, 1), S a sum of signed scores that cancels; the kernel tests'
        // kSignedNormaliserTolerance): 2.3e-5 here, so 1e-4 for it
        model.forward(ids.data(), nullptr, 1, static_cast<int>(ids.size()), ForwardOptions{false});
        const double forward_tol = name.ends_with("identity_norm") ? kSignedNormaliserTol : kTol;
        EXPECT_LE(max_error_over_bound(dense.data(), model.logits(), dense.size(), forward_tol), 1.0);
        for (const char* name : {"sink:4+60", "window:64", "shift:4", "sink:auto+60", "sink:0+40"}) {
            SCOPED_TRACE(name);
            const std::vector<float> streamed = stream_logits(model, parse_cache_policy(name), ids);
            EXPECT_LT(max_abs_diff(streamed.data(), dense.data(), dense.size()), kTol);
        }
    }
}

TEST(StreamingCache, RecomputeIsAPlainForwardOverTheLastW) {
    for (const auto& [name, config] : streamed_designs(2)) {
        SCOPED_TRACE(name);
        Transformer model(config);
        model.init_weights(11);
        const int W = 9, V = model.config().vocab_size;
        const std::vector<int32_t> ids = random_ids(30, V, 5);
        const std::vector<float> streamed = stream_logits(model, RecomputeWindow{W}, ids);
        for (int t = 0; t < static_cast<int>(ids.size()); ++t) {
            const int first = std::max(0, t + 1 - W);
            const std::vector<float> plain =
                last_logits_of_forward(model, std::vector<int32_t>(ids.begin() + first, ids.begin() + t + 1));
            EXPECT_LT(max_abs_diff(streamed.data() + static_cast<size_t>(t) * V, plain.data(), V), kTol) << "token " << t;
        }
    }
}

// Captures layer 0's qkv rows of a forward.
struct QkvTap : TensorObserver {
    std::vector<float> qkv;
    void observe(Tap tap, int layer, const float* data, const Shape& shape) override {
        if (tap == Tap::qkv && layer == 0) qkv.assign(data, data + shape_numel(shape));
    }
};

TEST(StreamingCache, AReRotatedKeyIsThePreRotationKeyAtItsNewPosition) {
    ModelConfig c = small_model("llama", 2);
    c.n_kv_heads = c.n_heads;
    Transformer model(c);
    model.init_weights(13);
    const int HS = c.hs(), QKV = c.qkv_width();
    const std::vector<int32_t> ids = random_ids(25, c.vocab_size, 9);
    StreamingCache stream(model, SinkCache{2, 5});
    for (int32_t id : ids) stream.step(&id, 1);
    const KVCache& cache = stream.cache();
    const RopeTable table = RopeTable::build(RopeTable::default_inv_freq(c.rope_dim(), c.rope_theta), c.max_seq_len);
    const std::vector<int64_t> held = stream.held_tokens();
    ASSERT_EQ(held, (std::vector<int64_t>{0, 1, 19, 20, 21, 22, 23, 24}));
    const std::vector<int>& rows = stream.rows_in_order();
    std::vector<float> scratch(static_cast<size_t>(64) * HS);
    int moved = 0;
    for (size_t rank = 0; rank < held.size(); ++rank) {
        const int row = rows[rank];
        EXPECT_EQ(cache.positions()[row], static_cast<int>(rank));  // re-indexed: its place in the cache
        if (held[rank] != static_cast<int64_t>(rank)) ++moved;
        // The pre-rotation key of layer 0 depends on the token alone: a forward of the token at
        // position 0 (RoPE's identity) shows it.
        QkvTap tap;
        model.forward(&ids[held[rank]], nullptr, 1, 1, ForwardOptions{false, &tap});
        for (int h = 0; h < c.n_kv_heads; ++h) {
            std::vector<float> expected(tap.qkv.begin() + c.n_heads * HS + h * HS,
                                        tap.qkv.begin() + c.n_heads * HS + (h + 1) * HS);
            const float* stored = cache.key_row(0, row) + h * HS;
            EXPECT_LT(max_abs_diff(stored, expected.data(), HS), 1e-6) << "the cache holds the key before RoPE";
            const int position = static_cast<int>(rank);
            rope_forward(expected.data(), &position, 1, 1, HS, HS, table);
            long stride = 0;
            const float* attended =
                cache.key_tile(0, h, HS, row, row + 1, cache.positions().data(), &table, scratch.data(), stride);
            EXPECT_LT(max_abs_diff(attended, expected.data(), HS), 1e-6) << "rank " << rank << " head " << h;
        }
    }
    EXPECT_EQ(moved, 6) << "the window's tokens moved to new positions";
    (void)QKV;
}

// One layer, RoPE: each step equals a fresh forward over the tokens the cache kept.
void expect_steps_equal_fresh_forwards(Transformer& model, const CachePolicy& policy, const std::vector<int32_t>& ids) {
    StreamingCache stream(model, policy);
    const int V = model.config().vocab_size;
    for (size_t t = 0; t < ids.size(); ++t) {
        const float* logits = stream.step(&ids[t], 1);
        const std::vector<float> got(logits, logits + V);
        std::vector<int32_t> kept;
        for (int64_t i : stream.held_tokens()) kept.push_back(ids[static_cast<size_t>(i)]);
        ASSERT_EQ(stream.held_tokens().back(), static_cast<int64_t>(t));
        const std::vector<float> fresh = last_logits_of_forward(model, kept);
        ASSERT_LE(max_error_over_bound(got.data(), fresh.data(), V, kTol), 1.0) << policy_name(policy) << " token " << t;
    }
}

TEST(StreamingCache, OneLayerRopeStepsEqualFreshForwardsOverTheKeptTokens) {
    for (const char* attention : {"softmax", "sink_token", "gated"}) {
        SCOPED_TRACE(attention);
        ModelConfig c = small_model("llama", 1, 64);
        c.attention = AttentionSpec::parse(attention);
        Transformer model(c);
        model.init_weights(17);
        const std::vector<int32_t> ids = random_ids(90, c.vocab_size, 21);
        for (const char* name : {"sink:4+10", "sink:1+12", "window:12", "shift:3/20", "sink:auto2+9"}) {
            SCOPED_TRACE(name);
            expect_steps_equal_fresh_forwards(model, parse_cache_policy(name), ids);
        }
    }
}

TEST(StreamingCache, KeptTokensFollowThePolicy) {
    Transformer model(small_model("llama", 2));
    model.init_weights(5);
    const std::vector<int32_t> ids = random_ids(70, model.config().vocab_size, 2);
    StreamingCache sink(model, SinkCache{3, 8});
    StreamingCache window(model, WindowCache{8});
    StreamingCache shift(model, ContextShift{2, 16, true});
    const size_t bytes = sink.cache_bytes();
    int n_past = 0;  // llama.cpp's counter, simulated
    for (size_t t = 0; t < ids.size(); ++t) {
        sink.step(&ids[t], 1);
        window.step(&ids[t], 1);
        shift.step(&ids[t], 1);
        const int64_t now = static_cast<int64_t>(t);
        std::vector<int64_t> want;
        for (int64_t i = 0; i <= now; ++i)
            if (i < 3 || i > now - 9) want.push_back(i);
        EXPECT_EQ(sink.held_tokens(), want) << t;
        want.clear();
        for (int64_t i = std::max<int64_t>(0, now - 8); i <= now; ++i) want.push_back(i);
        EXPECT_EQ(window.held_tokens(), want) << t;
        if (n_past + 1 >= 16) n_past -= (n_past - 2) / 2;
        ++n_past;
        EXPECT_EQ(shift.held(), n_past) << t;
        EXPECT_EQ(shift.held_tokens().front(), 0);
        EXPECT_EQ(shift.held_tokens().back(), now);
        EXPECT_EQ(sink.cache_bytes(), bytes);
    }
}

TEST(StreamingCache, AutoFindsTheSinkOfAPretrainedModel) {
    // stories260K (llama2.c's pretrained model, tests/fixtures) puts its spare attention on the BOS
    // token; sink:auto, told nothing about positions, keeps that token once it leaves the window.
    auto model = load_model(std::string(SINKLAB_SOURCE_DIR) + "/tests/fixtures/llama2c/stories260K.bin");
    std::vector<int32_t> ids = random_ids(120, model->config().vocab_size, 6);
    ids[0] = 1;  // BOS
    for (size_t i = 1; i < ids.size(); ++i)
        if (ids[i] < 3) ids[i] += 3;  // no other BOS, EOS or unknown token
    StreamingCache stream(*model, AutoSinkCache{1, 16});
    for (int32_t id : ids) stream.step(&id, 1);
    const std::vector<int64_t> held = stream.held_tokens();
    ASSERT_EQ(held.size(), 18u);
    EXPECT_EQ(held.front(), 0) << "the BOS token stays";
    EXPECT_EQ(held[1], 103);
}

TEST(StreamingCache, AbsolutePositionsDifferOnceTokensAreDropped) {
    Transformer model(small_model("llama", 2));
    model.init_weights(29);
    const int V = model.config().vocab_size;
    const std::vector<int32_t> ids = random_ids(40, V, 8);
    const std::vector<float> reindexed = stream_logits(model, SinkCache{2, 6}, ids);
    const std::vector<float> absolute =
        stream_logits(model, SinkCache{2, 6}, ids, StreamingOptions{.positions = StreamPositions::absolute});
    const size_t full = 9 * static_cast<size_t>(V);  // until the cache first drops a token they agree
    EXPECT_LT(max_abs_diff(reindexed.data(), absolute.data(), full), kTol);
    EXPECT_GT(max_abs_diff(reindexed.data() + full, absolute.data() + full, reindexed.size() - full), 1e-3);
}

TEST(StreamingCache, ChunkedStepsRunThePolicyInPieces) {
    Transformer model(small_model("llama", 2));
    model.init_weights(31);
    const int V = model.config().vocab_size;
    const std::vector<int32_t> ids = random_ids(50, V, 10);
    StreamingCache stream(model, SinkCache{2, 10});
    const float* logits = stream.step(ids.data(), 50);  // 50 tokens in steps of at most 11
    EXPECT_EQ(stream.tokens_seen(), 50);
    EXPECT_EQ(stream.held(), 13);  // the last piece of 6 made room by keeping 2 + 5, then added 6
    // the first step's 11 tokens saw an empty cache: a plain forward
    model.forward(ids.data(), nullptr, 1, 11, ForwardOptions{false});
    EXPECT_LT(max_abs_diff(logits, model.logits(), static_cast<size_t>(11) * V), kTol);
}

std::string error_of(Transformer& model, const CachePolicy& policy, StreamingOptions options = {}) {
    try {
        StreamingCache cache(model, policy, options);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(StreamingCache, CachesTheModelCannotHoldAreClearErrors) {
    Transformer gpt2(small_model("gpt2", 1, 32));
    gpt2.init_weights(1);
    EXPECT_NE(error_of(gpt2, SinkCache{4, 28}).find("positions for 32"), std::string::npos)
        << error_of(gpt2, SinkCache{4, 28});
    EXPECT_EQ(error_of(gpt2, SinkCache{4, 27}), "");  // 4 + 27 + 1 = 32
    EXPECT_NE(error_of(gpt2, WindowCache{8}, {.positions = StreamPositions::absolute}).find("absolute"), std::string::npos);
    EXPECT_NE(error_of(gpt2, DenseCache{}, {.max_cache = 64}).find("--max-cache"), std::string::npos);
    Transformer llama(small_model("llama", 1, 32));
    llama.init_weights(1);
    EXPECT_EQ(error_of(llama, SinkCache{4, 200}), "");  // RoPE goes past the trained length
    EXPECT_NE(error_of(llama, WindowCache{100'000'000}).find("GiB"), std::string::npos);
    // dense stops at its bound with a clear error, and says it can take no more first
    StreamingCache dense(llama, DenseCache{}, {.max_cache = 3});
    const std::vector<int32_t> ids = {1, 2, 3, 4};
    dense.step(ids.data(), 3);
    EXPECT_FALSE(dense.can_take(1));
    EXPECT_THROW(dense.step(ids.data() + 3, 1), Error);
}

}  // namespace
}  // namespace sinklab
