// Generation with a KV cache gives the logits of recomputing the whole prefix: for each model, a
// sequence is fed as a prompt chunk, single tokens and a multi-token chunk, and every logit matches
// a full forward over the whole sequence within 1e-5 (absolute, plus 1e-5 relative). The models
// cover learned and rotary positions, partial rotary, sliding windows (the sequence is longer than
// the window), soft-capping and the sandwich norms, QK-norm, GQA, gpt-oss (learned sinks, experts),
// and a sinklab-initialised model.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "attention/cached_attention.h"
#include "core/rng.h"
#include "hf_test_support.h"
#include "model/hf_loader.h"
#include "model/kv_cache.h"

namespace sinklab {
namespace {

using test::all_close;
using test::fixture;

constexpr double kTol = 1e-5;

// Feeds `ids` through forward_step in chunks of the given sizes and compares each chunk's logits
// with the rows of a full forward.
void expect_cached_logits_match_full(Transformer& model, const std::vector<int32_t>& ids,
                                     const std::vector<int>& chunks) {
    const int T = static_cast<int>(ids.size()), V = model.config().vocab_size;
    model.forward(ids.data(), nullptr, 1, T, ForwardOptions{false});
    const std::vector<float> full(model.logits(), model.logits() + static_cast<size_t>(T) * V);

    KVCache cache(model.config(), T);
    int start = 0;
    for (int n : chunks) {
        std::vector<int> positions(n);
        for (int i = 0; i < n; ++i) positions[i] = start + i;
        const float* logits = model.forward_step(ids.data() + start, positions.data(), n, cache);
        EXPECT_TRUE(all_close(logits, full.data() + static_cast<size_t>(start) * V, static_cast<size_t>(n) * V, kTol,
                              kTol))
            << "tokens " << start << ".." << start + n - 1;
        start += n;
    }
    ASSERT_EQ(start, T);
    EXPECT_EQ(cache.length(), T);
    EXPECT_EQ(cache.positions().back(), T - 1);
}

std::vector<int32_t> random_ids(int n, int vocab, uint64_t seed) {
    Rng rng(seed);
    std::vector<int32_t> ids(n);
    for (auto& id : ids) id = static_cast<int32_t>(rng.below(vocab));
    return ids;
}

class KvCacheFixtures : public ::testing::TestWithParam<const char*> {};

TEST_P(KvCacheFixtures, CachedStepsGiveTheFullRecomputeLogits) {
    auto model = load_model(fixture("hf/" + std::string(GetParam())));
    // 30 tokens: past gemma2's and mistral's window of 8, and past phi3_longrope's switch at 16
    // inside the first chunk (its cached and full forwards then use the same long factors).
    const std::vector<int32_t> ids = random_ids(30, model->config().vocab_size, 7);
    expect_cached_logits_match_full(*model, ids, {17, 1, 1, 5, 1, 4, 1});
}

INSTANTIATE_TEST_SUITE_P(Fixtures, KvCacheFixtures,
                         ::testing::Values("gpt2", "llama", "mistral", "qwen3", "gpt_neox", "gemma2", "phi3_longrope",
                                           "olmo2"),
                         [](const auto& info) { return std::string(info.param); });

TEST(KvCache, GptOssWithItsLearnedSinksAndExperts) {
    auto model = load_model(fixture("gpt_oss"));
    const std::vector<int32_t> ids = random_ids(30, model->config().vocab_size, 7);  // past its window of 8
    expect_cached_logits_match_full(*model, ids, {17, 1, 1, 5, 1, 4, 1});
}

TEST(KvCache, Stories260K) {
    auto model = load_model(fixture("llama2c/stories260K.bin"));
    std::vector<int32_t> ids = random_ids(40, model->config().vocab_size, 11);
    ids[0] = 1;  // BOS
    expect_cached_logits_match_full(*model, ids, {1, 1, 1, 20, 1, 16});
}

TEST(KvCache, SinklabStylesWithAWindow) {
    for (const char* style : {"gpt2", "llama"}) {
        SCOPED_TRACE(style);
        ModelConfig c = ModelConfig::for_style(style);
        c.vocab_size = 61;
        c.d_model = 32;
        c.n_layers = 2;
        c.n_heads = 4;
        c.n_kv_heads = 2;
        c.max_seq_len = 32;
        c.window = 6;
        c.init_std = 0.2f;
        Transformer model(c);
        model.init_weights(3);
        expect_cached_logits_match_full(model, random_ids(20, c.vocab_size, 5), {3, 1, 8, 1, 7});
    }
}

// The cached kernel reads the first-key edits of the mask (attention_spec.h) as the reference kernel
// does: an empty cache gives the reference's weights and output, for softmax rows (ln F on key 0's
// score) and for an unnormalised one (sigmoid: key 0's weight F times as large).
TEST(KvCache, KernelReadsFirstKeyEditsAsTheReferenceKernel) {
    const AttentionDims d{1, 40, 4, 2, 8};
    Rng rng(11);
    std::vector<float> qkv(static_cast<size_t>(d.T) * d.qkv_stride());
    for (float& x : qkv) x = static_cast<float>(1.5 * rng.normal());
    for (const char* design : {"softmax", "sigmoid"})
        for (const AttentionMask& mask : {AttentionMask{0, 0, {.hidden = 3}}, AttentionMask{0, 0, {.factor = 0.1f}},
                                          AttentionMask{9, 0, {.hidden = 1, .factor = 3.0f}}}) {
            SCOPED_TRACE(design);
            const AttentionSpec spec = AttentionSpec::parse(design);
            const size_t out_n = static_cast<size_t>(d.T) * d.out_stride(), w_n = static_cast<size_t>(d.NH) * d.T * d.T;
            std::vector<float> ref_out(out_n), ref_w(w_n), out(out_n), w(w_n);
            attention_forward(ref_out.data(), ref_w.data(), AttentionInputs{qkv.data(), {}}, d, spec, mask);
            const float* q = qkv.data();
            CachedAttentionInputs in;
            in.q = q;
            in.q_stride = d.qkv_stride();
            in.k = q + d.NH * d.HS;
            in.v = q + (d.NH + d.NKV) * d.HS;
            in.kv_stride = d.qkv_stride();
            cached_attention_forward({out.data(), d.out_stride(), w.data()}, in, {}, {d.NH, d.NKV, d.HS, d.T, d.T, 0},
                                     spec, mask);
            EXPECT_TRUE(all_close(w.data(), ref_w.data(), w_n, 1e-6, 1e-6)) << "weights";
            EXPECT_TRUE(all_close(out.data(), ref_out.data(), out_n, 1e-5, 1e-5)) << "output";
        }
}

TEST(KvCache, RejectsMisuse) {
    auto model = load_model(fixture("hf/llama"));
    KVCache cache(model->config(), 4);
    const std::vector<int32_t> ids = {1, 2, 3};
    const std::vector<int> positions = {0, 1, 2};
    model->forward_step(ids.data(), positions.data(), 3, cache);
    try {
        model->forward_step(ids.data(), positions.data(), 2, cache);
        ADD_FAILURE() << "overfilled the cache";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("KV cache is full"), std::string::npos) << e.what();
    }
    const int32_t outside = model->config().vocab_size;
    const int position = 3;
    EXPECT_THROW(model->forward_step(&outside, &position, 1, cache), Error);
    KVCache other(load_model(fixture("hf/gpt2"))->config(), 4);
    EXPECT_THROW(model->forward_step(ids.data(), positions.data(), 1, other), Error);
    // a learned position table ends at max_seq_len (RoPE's angles go on: docs/probe.md, any length)
    auto gpt2 = load_model(fixture("hf/gpt2"));
    KVCache learned(gpt2->config(), 4);
    const int far = gpt2->config().max_seq_len;
    EXPECT_THROW(gpt2->forward_step(ids.data(), &far, 1, learned), Error);
}

TEST(KvCache, RemovingRowsMovesTheLastRowsIntoTheHoles) {
    auto model = load_model(fixture("hf/llama"));
    const std::vector<int32_t> ids = random_ids(10, model->config().vocab_size, 19);
    KVCache cache(model->config(), 12);
    std::vector<int> positions(10);
    for (int i = 0; i < 10; ++i) positions[i] = i;
    model->forward_step(ids.data(), positions.data(), 10, cache);
    const std::vector<float> row8(cache.key_row(1, 8), cache.key_row(1, 8) + cache.row_width());
    const std::vector<int> rows = {5, 2, 9, 3};
    std::vector<std::pair<int, int>> moves;
    cache.remove_rows(rows, [&](int from, int to) { moves.emplace_back(from, to); });
    // holes 2, 3 and 5 below the 6 kept rows take rows 6, 7 and 8 (9 was dropped)
    EXPECT_EQ(moves, (std::vector<std::pair<int, int>>{{6, 2}, {7, 3}, {8, 5}}));
    EXPECT_EQ(cache.positions(), (std::vector<int>{0, 1, 6, 7, 4, 8}));
    EXPECT_EQ(std::vector<float>(cache.key_row(1, 5), cache.key_row(1, 5) + cache.row_width()), row8);
}

}  // namespace
}  // namespace sinklab
