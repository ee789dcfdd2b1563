// A real pretrained model: stories260K (llama2.c format, tests/fixtures/llama2c/) loads through the
// generic loader, and greedy decoding from BOS reproduces the text the fixtures README gives.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "hf_test_support.h"
#include "model/hf_loader.h"
#include "tokenizer/tokenizer.h"

namespace sinklab {
namespace {

using test::fixture;

const char* kExpectedStart =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw "
    "a big,";

TEST(Stories260K, LoadsThroughTheGenericLoader) {
    ModelInfo info;
    auto model = load_model(fixture("llama2c/stories260K.bin"), &info);
    const ModelConfig& c = model->config();
    EXPECT_EQ(info.source, "llama2c");
    EXPECT_EQ(info.dtype, "F32");
    EXPECT_EQ(info.bos_id, 1);
    EXPECT_EQ(info.tokenizer, fixture("llama2c/tok512.bin"));  // found beside the model as tok<vocab>.bin
    EXPECT_EQ(c.d_model, 64);
    EXPECT_EQ(c.n_layers, 5);
    EXPECT_EQ(c.n_heads, 8);
    EXPECT_EQ(c.n_kv_heads, 4);
    EXPECT_EQ(c.vocab_size, 512);
    EXPECT_EQ(c.max_seq_len, 512);
    EXPECT_TRUE(c.tied_embeddings);
}

TEST(Stories260K, GreedyFromBosTellsTheKnownStory) {
    auto model = load_model(fixture("llama2c/stories260K.bin"));
    const auto tokenizer = load_tokenizer(fixture("llama2c/tok512.bin"));
    const std::vector<int32_t> bos = {1};
    const std::vector<int32_t> generated = test::greedy_cached(*model, bos, 60);
    std::vector<int32_t> ids = bos;
    ids.insert(ids.end(), generated.begin(), generated.end());
    const std::string text = tokenizer->decode(ids);
    EXPECT_EQ(text.substr(0, std::string(kExpectedStart).size()), kExpectedStart) << text;
    // the same ids without the cache
    EXPECT_EQ(test::greedy_full(*model, bos, 30), std::vector<int32_t>(generated.begin(), generated.begin() + 30));
}

}  // namespace
}  // namespace sinklab
