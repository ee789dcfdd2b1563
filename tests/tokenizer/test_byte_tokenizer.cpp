#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer_test_support.h"

namespace sinklab {
namespace {

TEST(ByteTokenizer, EveryByteRoundTripsIncludingInvalidUtf8) {
    const auto tokenizer = make_byte_tokenizer(false);
    std::string all_bytes;
    for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
    const std::string text = "caf\xC3\xA9 \xFF\xFE truncated \xE2\x82 " + all_bytes;
    const auto ids = tokenizer->encode(text);
    ASSERT_EQ(ids.size(), text.size());
    EXPECT_EQ(ids[3], 0xC3);
    EXPECT_EQ(ids[6], 0xFF);
    EXPECT_EQ(tokenizer->decode(ids), text);
    EXPECT_EQ(tokenizer->vocab_size(), 256);
    EXPECT_EQ(tokenizer->kind(), "bytes");
    EXPECT_FALSE(tokenizer->bos_id.has_value());
    EXPECT_FALSE(tokenizer->add_bos_by_default);
}

TEST(ByteTokenizer, BosIsId256AndDecodesToNothing) {
    const auto tokenizer = make_byte_tokenizer(true);
    EXPECT_EQ(tokenizer->vocab_size(), 257);
    EXPECT_EQ(tokenizer->bos_id, 256);
    EXPECT_TRUE(tokenizer->add_bos_by_default);
    EXPECT_EQ(tokenizer->encode("hi"), (std::vector<int32_t>{'h', 'i'}));  // encode never adds BOS
    const std::vector<int32_t> ids{256, 'h', 'i'};
    EXPECT_EQ(tokenizer->decode(ids), "hi");
    EXPECT_EQ(tokenizer->token_text(256), "<bos>");
    EXPECT_EQ(tokenizer->token_id("<bos>"), 256);
    EXPECT_EQ(tokenizer->token_id("h"), 'h');
}

TEST(ByteTokenizer, RejectsIdsOutsideTheVocabulary) {
    const auto tokenizer = make_byte_tokenizer(false);
    const std::vector<int32_t> bos_without_bos{256};
    EXPECT_TRUE(testing::mentions(testing::error_message([&] { tokenizer->decode(bos_without_bos); }),
                                  {"[tokenizer]", "id 256", "[0, 256)"}));
    EXPECT_TRUE(testing::mentions(testing::error_message([&] { tokenizer->token_text(-1); }), {"id -1"}));
}

}  // namespace
}  // namespace sinklab
