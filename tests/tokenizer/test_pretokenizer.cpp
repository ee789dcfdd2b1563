// Pre-tokenization: the reference split patterns (expected pieces worked out by hand from the
// regexes) and Hugging Face's Split behaviors.
#include <gtest/gtest.h>

#include "tokenizer/pretokenizer.h"

namespace sinklab {
namespace {

using Pieces = std::vector<std::string>;

Pieces split_with(std::string_view pattern, std::string_view text) {
    const RegexSplitter splitter(pattern, false, "test pattern");
    Pieces pieces;
    for (std::string_view piece : split_isolated(splitter, text)) pieces.emplace_back(piece);
    return pieces;
}

TEST(SplitPatterns, Gpt2SeparatesContractionsAndKeepsOneLeadingSpace) {
    EXPECT_EQ(split_with(kGpt2SplitPattern, "I'm here  now 2024!!"),
              (Pieces{"I", "'m", " here", " ", " now", " 2024", "!!"}));
    EXPECT_EQ(split_with(kGpt2SplitPattern, "DON'T"), (Pieces{"DON", "'", "T"}));  // case-sensitive contractions
}

TEST(SplitPatterns, Cl100kGroupsDigitsByThreeAndFoldsContractionCase) {
    EXPECT_EQ(split_with(kCl100kSplitPattern, "DON'T 1234567"), (Pieces{"DON", "'T", " ", "123", "456", "7"}));
    EXPECT_EQ(split_with(kCl100kSplitPattern, "a\n\n  b"), (Pieces{"a", "\n\n", " ", " b"}));
}

TEST(SplitPatterns, O200kSplitsCamelCase) {
    EXPECT_EQ(split_with(kO200kSplitPattern, "Hello WORLD's camelCase 12345"),
              (Pieces{"Hello", " WORLD's", " camel", "Case", " ", "123", "45"}));
}

TEST(SplitPatterns, Qwen2PatternFromTokenizerJsonSplitsEveryDigit) {
    // Qwen2's tokenizer.json Split pattern: cl100k's with \p{N} instead of \p{N}{1,3}.
    const std::string qwen2 =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    EXPECT_EQ(split_with(qwen2, "year 2024"), (Pieces{"year", " ", "2", "0", "2", "4"}));
}

TEST(SplitPatterns, UnicodePropertiesApplyBeyondAscii) {
    EXPECT_EQ(split_with(kGpt2SplitPattern, "naïve café 日本語"), (Pieces{"naïve", " café", " 日本語"}));
}

TEST(SplitPatterns, IllFormedUtf8StaysBetweenTheMatches) {
    EXPECT_EQ(split_with(kGpt2SplitPattern, "ab\xFF" "cd \xC3"), (Pieces{"ab", "\xFF", "cd", " ", "\xC3"}));
}

TEST(SplitPatterns, VeryLongWhitespaceRunsDoNotExhaustTheMatcher) {
    const std::string text = "a" + std::string(200000, ' ') + "b";
    EXPECT_EQ(split_with(kGpt2SplitPattern, text), (Pieces{"a", std::string(199999, ' '), " b"}));
}

TEST(SplitPatterns, PatternsThatExhaustTheJitStackFallBackToTheInterpreter) {
    std::string text;
    for (int i = 0; i < 200000; ++i) text += "ab";
    EXPECT_EQ(split_with("(?:a|ab)+$", text), (Pieces{text}));
}

TEST(SplitPatterns, InvalidPatternNamesItsOrigin) {
    try {
        RegexSplitter("(unclosed", false, "model/tokenizer.json pre_tokenizer Split");
        FAIL() << "expected an error";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("model/tokenizer.json pre_tokenizer Split"), std::string::npos) << e.what();
    }
}

Pieces split_dashes(SplitBehavior behavior, bool invert = false) {
    PreTokenizer pre_tokenizer;
    pre_tokenizer.add_split("-", true, behavior, invert, "test");
    return pre_tokenizer.split("a-b--c");
}

TEST(PreTokenizer, SplitBehaviorsFollowHuggingFace) {
    EXPECT_EQ(split_dashes(SplitBehavior::removed), (Pieces{"a", "b", "c"}));
    EXPECT_EQ(split_dashes(SplitBehavior::isolated), (Pieces{"a", "-", "b", "-", "-", "c"}));
    EXPECT_EQ(split_dashes(SplitBehavior::merged_with_previous), (Pieces{"a-", "b-", "-", "c"}));
    EXPECT_EQ(split_dashes(SplitBehavior::merged_with_next), (Pieces{"a", "-b", "-", "-c"}));
    EXPECT_EQ(split_dashes(SplitBehavior::contiguous), (Pieces{"a", "-", "b", "--", "c"}));
    // invert: the matches are the content and the text between them the delimiters.
    EXPECT_EQ(split_dashes(SplitBehavior::removed, true), (Pieces{"-", "-", "-"}));
}

TEST(PreTokenizer, ByteLevelPrefixSpaceAppliesToEachPiece) {
    PreTokenizer pre_tokenizer;
    pre_tokenizer.add_split(R"(\p{N})", false, SplitBehavior::isolated, false, "test");
    pre_tokenizer.add_byte_level(true, false);
    EXPECT_EQ(pre_tokenizer.split("ab1 c"), (Pieces{" ab", " 1", " c"}));
    EXPECT_TRUE(pre_tokenizer.split("").empty());
}

TEST(PreTokenizer, ByteLevelWithRegexUsesGpt2Pattern) {
    PreTokenizer pre_tokenizer;
    pre_tokenizer.add_byte_level(true, true);
    EXPECT_EQ(pre_tokenizer.split("Hello world's"), (Pieces{" Hello", " world", "'s"}));
}

}  // namespace
}  // namespace sinklab
