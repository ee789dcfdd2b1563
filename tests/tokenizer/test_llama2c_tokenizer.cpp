// llama2.c's tokenizer.bin, with the 512-token vocabulary of the stories260K model.
#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer_test_support.h"

namespace sinklab {
namespace {

using testing::fixture;

std::string joined_token_texts(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
    std::string text;
    for (int32_t id : ids) text += tokenizer.token_text(id);
    return text;
}

TEST(Llama2cTokenizer, ReadsTheStories260KVocabulary) {
    const auto tokenizer = load_tokenizer(fixture("llama2c/tok512.bin"));
    EXPECT_EQ(tokenizer->kind(), "llama2c");
    EXPECT_EQ(tokenizer->vocab_size(), 512);
    // The facts of the stories260K model: BOS 1, EOS 2, and generation starts from BOS.
    EXPECT_EQ(tokenizer->bos_id, 1);
    EXPECT_EQ(tokenizer->eos_id, 2);
    EXPECT_TRUE(tokenizer->add_bos_by_default);
    EXPECT_EQ(tokenizer->token_text(0), "<unk>");
    EXPECT_EQ(tokenizer->token_text(3), std::string(1, '\0'));  // <0x00>, the first byte token
    EXPECT_EQ(tokenizer->token_text(3 + 'A'), "A");               // <0x41>
}

TEST(Llama2cTokenizer, VocabSizeFromTheModelHeaderLimitsTheTokensRead) {
    EXPECT_EQ(load_llama2c_tokenizer(fixture("llama2c/tok512.bin"), 512)->vocab_size(), 512);
    EXPECT_EQ(load_llama2c_tokenizer(fixture("llama2c/tok512.bin"), 450)->vocab_size(), 450);
}

// encode adds llama2.c's dummy " " prefix, so the tokens spell " " + text; decode drops that space
// again at the start of the sequence (or after BOS), so decode(encode(text)) == text.
TEST(Llama2cTokenizer, EncodeDecodeRoundTripWithTheDummyPrefix) {
    const auto tokenizer = load_tokenizer(fixture("llama2c/tok512.bin"));
    for (const std::string text : {"Once upon a time", "Once upon a time, there was a little girl named Lily.",
                                   "She loved to play outside in the park.\nOne day, she saw a big dog!",
                                   "  two leading spaces", "x"}) {
        SCOPED_TRACE(text);
        const auto ids = tokenizer->encode(text);
        EXPECT_EQ(joined_token_texts(*tokenizer, ids), " " + text);
        EXPECT_EQ(tokenizer->decode(ids), text);
        std::vector<int32_t> with_bos{1};
        with_bos.insert(with_bos.end(), ids.begin(), ids.end());
        EXPECT_EQ(tokenizer->decode(with_bos), text);
    }
}

TEST(Llama2cTokenizer, CommonWordsAreSingleTokens) {
    const auto tokenizer = load_tokenizer(fixture("llama2c/tok512.bin"));
    const auto ids = tokenizer->encode("Once upon a time");
    std::vector<std::string> pieces;
    for (int32_t id : ids) pieces.push_back(tokenizer->token_text(id));
    EXPECT_EQ(pieces, (std::vector<std::string>{" Once", " upon", " a", " time"}));
}

TEST(Llama2cTokenizer, CharactersOutsideTheVocabularyFallBackToBytes) {
    const auto tokenizer = load_tokenizer(fixture("llama2c/tok512.bin"));
    const std::string text = "Lily drank caf\xC3\xA9 \xE2\x98\x95";  // "café ☕"
    const auto ids = tokenizer->encode(text);
    size_t byte_tokens = 0;
    for (int32_t id : ids) byte_tokens += id >= 3 && id < 259;
    EXPECT_GE(byte_tokens, 3u);  // at least the three bytes of U+2615
    EXPECT_EQ(tokenizer->decode(ids), text);
}

TEST(Llama2cTokenizer, EmptyTextHasNoTokens) {
    const auto tokenizer = load_tokenizer(fixture("llama2c/tok512.bin"));
    EXPECT_TRUE(tokenizer->encode("").empty());
    EXPECT_EQ(tokenizer->decode({}), "");
}

TEST(Llama2cTokenizer, TruncatedFileIsReported) {
    const std::string data = testing::read_file(fixture("llama2c/tok512.bin"));
    const auto folder = testing::scratch_folder("llama2c_truncated");
    testing::write_file(folder / "tok512.bin", data.substr(0, data.size() / 2));
    // With the model's vocab_size, half a file is missing tokens.
    EXPECT_TRUE(testing::mentions(
        testing::error_message([&] { load_llama2c_tokenizer(folder / "tok512.bin", 512); }),
        {"tok512.bin", "truncated"}));
}

}  // namespace
}  // namespace sinklab
