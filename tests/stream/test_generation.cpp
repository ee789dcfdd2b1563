// Generation: the sampler's greedy and nucleus rules on hand-made logits (the distribution it draws
// from counted over many seeded draws), and generate() against a loop of full forwards.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "stream/generation.h"

namespace sinklab {
namespace {

TEST(Sampler, GreedyTakesTheFirstMaximum) {
    const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f};
    Rng rng(1);
    EXPECT_EQ(sample_next_token(logits.data(), 4, {.greedy = true}, rng), 1);
}

TEST(Sampler, DrawsFromTheTemperedSoftmaxInsideTheNucleus) {
    // p = softmax(logits / 0.5) = (0.6652, 0.2447, 0.0900) for logits (1, 0.5, 0); top_p 0.9 keeps the
    // two most likely (0.910 of the mass) and renormalises them: 0.731 and 0.269.
    const std::vector<float> logits = {1.0f, 0.5f, 0.0f};
    const SamplingOptions options{.greedy = false, .temperature = 0.5, .top_p = 0.9};
    Rng rng(7);
    std::vector<int> counts(3, 0);
    const int draws = 20000;
    for (int i = 0; i < draws; ++i) ++counts[sample_next_token(logits.data(), 3, options, rng)];
    const double w0 = std::exp(2.0), w1 = std::exp(1.0);  // exp(logit / 0.5): e^2, e^1, e^0
    EXPECT_EQ(counts[2], 0);  // outside the nucleus
    // binomial standard deviation sqrt(p (1 - p) / n) = 0.0031: within 5 of them
    EXPECT_NEAR(counts[0] / static_cast<double>(draws), w0 / (w0 + w1), 0.016);
}

TEST(Sampler, TopPOfOneKeepsEveryTokenAndATinyTopPOnlyTheMostLikely) {
    const std::vector<float> logits = {0.0f, 0.1f, 0.2f};
    Rng rng(3);
    std::vector<int> seen(3, 0);
    for (int i = 0; i < 3000; ++i) ++seen[sample_next_token(logits.data(), 3, {.temperature = 1.0, .top_p = 1.0}, rng)];
    for (int count : seen) EXPECT_GT(count, 500);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(sample_next_token(logits.data(), 3, {.temperature = 1.0, .top_p = 1e-6}, rng), 2);
}

ModelConfig tiny_llama() {
    ModelConfig c = ModelConfig::for_style("llama");
    c.vocab_size = 40;
    c.d_model = 16;
    c.n_layers = 2;
    c.n_heads = 2;
    c.n_kv_heads = 1;
    c.max_seq_len = 12;
    c.init_std = 0.3f;
    return c;
}

// Greedy generation against full forwards of the growing sequence, from the prompt to the end.
void expect_greedy_is_the_argmax(Transformer& model, std::vector<int32_t> ids, const Generation& g) {
    const int V = model.config().vocab_size;
    for (int32_t next : g.generated) {
        const int T = static_cast<int>(ids.size());
        model.forward(ids.data(), nullptr, 1, T, ForwardOptions{false});
        const float* last = model.logits() + static_cast<size_t>(T - 1) * V;
        EXPECT_EQ(next, static_cast<int32_t>(std::max_element(last, last + V) - last)) << "after " << T << " tokens";
        ids.push_back(next);
    }
}

// Learned positions end at max_seq_len: the generation stops at the context.
TEST(Generate, GreedyIsTheArgmaxOfFullForwardsAndStopsAtTheContext) {
    ModelConfig c = tiny_llama();
    c.positions = PositionKind::learned;
    Transformer model(c);
    model.init_weights(5);
    const std::vector<int32_t> prompt = {3, 1, 4};
    GenerationOptions options;
    options.max_new_tokens = 20;  // more than the context holds
    options.sampling.greedy = true;
    std::vector<size_t> shown;
    const Generation g = generate(model, prompt, options, [&](const std::vector<int32_t>& ids) { shown.push_back(ids.size()); });
    ASSERT_EQ(g.generated.size(), 9u);  // 3 + 9 = the context of 12
    EXPECT_EQ(g.stop, "the model's context (12 tokens)");
    EXPECT_EQ(shown.front(), 3u);
    EXPECT_EQ(shown.back(), 12u);
    EXPECT_EQ(beyond_context_note(c, 3, 20), "");
    expect_greedy_is_the_argmax(model, prompt, g);
}

// RoPE positions extrapolate: the generation goes past max_seq_len, still the argmax of full
// forwards, and the note says so.
TEST(Generate, RopeModelsGenerateBeyondMaxSeqLen) {
    Transformer model(tiny_llama());
    model.init_weights(5);
    const std::vector<int32_t> prompt = {3, 1, 4};
    GenerationOptions options;
    options.max_new_tokens = 20;
    options.sampling.greedy = true;
    const Generation g = generate(model, prompt, options);
    ASSERT_EQ(g.generated.size(), 20u);
    EXPECT_EQ(g.stop, "max-new-tokens");
    EXPECT_EQ(beyond_context_note(model.config(), 3, 20),
              "up to 23 tokens exceed the model's max_seq_len 12: its rope positions extrapolate");
    expect_greedy_is_the_argmax(model, prompt, g);
}

// A streaming cache (sink:2+6: 9 tokens attended) takes a learned-position model past its context of
// 12 in constant memory: while the sequence fits the cache, every token is dense's; after it, each
// is the argmax of the cache's own logits, and the cache's bytes do not grow.
TEST(Generate, AStreamingCacheGoesPastTheContextInConstantMemory) {
    Transformer model([] {
        ModelConfig c = tiny_llama();
        c.positions = PositionKind::learned;
        return c;
    }());
    model.init_weights(5);
    const std::vector<int32_t> prompt = {3, 1, 4};
    GenerationOptions options{.max_new_tokens = 40, .sampling = {.greedy = true}, .cache = parse_cache_policy("sink:2+6")};
    const Generation streamed = generate(model, prompt, options);
    ASSERT_EQ(streamed.generated.size(), 40u);
    EXPECT_EQ(streamed.stop, "max-new-tokens");
    EXPECT_NE(streamed.cache.find("sink:2+6"), std::string::npos) << streamed.cache;
    options.cache = DenseCache{};
    const Generation dense = generate(model, prompt, options);
    // 3 + 6 tokens fit the cache before its first eviction: the first 6 new tokens are dense's
    EXPECT_EQ(std::vector<int32_t>(streamed.generated.begin(), streamed.generated.begin() + 6),
              std::vector<int32_t>(dense.generated.begin(), dense.generated.begin() + 6));
    options.cache = parse_cache_policy("sink:2+6");
    options.max_new_tokens = 200;
    EXPECT_EQ(generate(model, prompt, options).cache, streamed.cache);  // the same bytes for 5x the tokens
}

TEST(Generate, StopsAtEndOfSequenceUnlessTold) {
    Transformer model(tiny_llama());
    model.init_weights(5);
    GenerationOptions options;
    options.max_new_tokens = 5;
    options.sampling.greedy = true;
    const Generation free_run = generate(model, {3, 1, 4}, options);
    options.eos_ids = {free_run.generated[1]};
    const Generation stopped = generate(model, {3, 1, 4}, options);
    EXPECT_EQ(stopped.stop, "end of sequence");
    EXPECT_EQ(stopped.generated, std::vector<int32_t>(free_run.generated.begin(), free_run.generated.begin() + 2));
    options.ignore_eos = true;
    EXPECT_EQ(generate(model, {3, 1, 4}, options).generated, free_run.generated);
}

TEST(Generate, BadOptionsNameTheFlag) {
    GenerationOptions options;
    options.sampling.top_p = 1.5;
    EXPECT_THROW(check_generation_options(options), Error);
    options.sampling.top_p = 0.9;
    options.sampling.temperature = 0.0;
    EXPECT_THROW(check_generation_options(options), Error);
    options.sampling.greedy = true;
    EXPECT_NO_THROW(check_generation_options(options));
}

}  // namespace
}  // namespace sinklab
