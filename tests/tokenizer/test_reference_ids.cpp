// Byte-level BPE and tiktoken against ids produced by independent implementations (the JavaScript
// packages gpt-3-encoder and js-tiktoken, see tests/fixtures/tokenizers/PROVENANCE.md).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"
#include "tokenizer_test_support.h"

namespace sinklab {
namespace {

using testing::fixture;

struct ReferenceLine {
    std::string tokenizer;
    std::string text;
    std::vector<int32_t> ids;
    bool roundtrip;
};

std::vector<ReferenceLine> reference_lines(std::string_view tokenizer_prefix) {
    std::ifstream in(fixture("tokenizers/reference.jsonl"));
    std::vector<ReferenceLine> lines;
    for (std::string line; std::getline(in, line);) {
        const nlohmann::json row = nlohmann::json::parse(line);
        ReferenceLine parsed{row.at("tokenizer"), row.at("text"), row.at("ids"), row.at("roundtrip")};
        if (parsed.tokenizer.starts_with(tokenizer_prefix)) lines.push_back(std::move(parsed));
    }
    return lines;
}

// Encodes each line the way its reference did: "+special" lines parse special tokens
// (allowedSpecial='all'), the others treat them as text (gpt-3-encoder knows none; js-tiktoken
// was called with allowedSpecial=[] and disallowedSpecial=[]).
void expect_reference_ids(const Tokenizer& tokenizer, std::string_view tokenizer_prefix, size_t expected_lines) {
    const auto lines = reference_lines(tokenizer_prefix);
    ASSERT_EQ(lines.size(), expected_lines) << "reference.jsonl lines for " << tokenizer_prefix;
    for (const ReferenceLine& line : lines) {
        SCOPED_TRACE(line.tokenizer + " on \"" + line.text + "\"");
        const bool parse_special = line.tokenizer.ends_with("+special");
        const auto ids = parse_special ? tokenizer.encode(line.text) : tokenizer.encode_ordinary(line.text);
        EXPECT_EQ(ids, line.ids);
        if (line.roundtrip) {
            EXPECT_EQ(tokenizer.decode(line.ids), line.text);
        }
    }
}

const Tokenizer& gpt2() {
    static const auto tokenizer = load_tokenizer(fixture("tokenizers/gpt2"));
    return *tokenizer;
}

TEST(ReferenceIds, Gpt2VocabAndMergesMatchGpt3EncoderAndJsTiktoken) {
    EXPECT_EQ(gpt2().kind(), "bpe");
    EXPECT_EQ(gpt2().vocab_size(), 50257);
    EXPECT_EQ(gpt2().eos_id, 50256);
    expect_reference_ids(gpt2(), "gpt-3-encoder", 44);
    // tiktoken's gpt2 encoding is the same vocabulary and merges as GPT-2's files.
    expect_reference_ids(gpt2(), "js-tiktoken:gpt2", 45);
}

TEST(ReferenceIds, Gpt2RoundTripsIllFormedUtf8) {
    const std::string text = "ok \xFF\xFE bytes \xE2\x82 cut";
    EXPECT_EQ(gpt2().decode(gpt2().encode(text)), text);
}

TEST(ReferenceIds, Cl100kMatchesJsTiktoken) {
    const auto tokenizer = load_tokenizer(fixture("tokenizers/cl100k_base.tiktoken"));
    EXPECT_EQ(tokenizer->kind(), "tiktoken");
    EXPECT_EQ(tokenizer->vocab_size(), 100277);
    EXPECT_EQ(tokenizer->eos_id, 100257);
    EXPECT_EQ(tokenizer->token_id("<|endofprompt|>"), 100276);
    expect_reference_ids(*tokenizer, "js-tiktoken:cl100k_base", 45);
}

TEST(ReferenceIds, Cl100kWithoutSiblingJsonUsesTiktokensBuiltInRules) {
    const auto folder = testing::scratch_folder("cl100k_without_json");
    std::filesystem::copy_file(fixture("tokenizers/cl100k_base.tiktoken"), folder / "cl100k_base.tiktoken");
    const auto tokenizer = load_tokenizer(folder / "cl100k_base.tiktoken");
    EXPECT_EQ(tokenizer->token_id("<|fim_middle|>"), 100259);
    expect_reference_ids(*tokenizer, "js-tiktoken:cl100k_base", 45);
}

// The same GPT-2 vocabulary written as a Hugging Face tokenizer.json the way Llama 3 and Qwen2 lay
// theirs out: merges as ["left", "right"] pairs and the split pattern in a Split pre-tokenizer
// followed by ByteLevel without its own regex. (String merges and ByteLevel's built-in regex are
// covered by test_hf_tokenizer_json and test_pretokenizer.)
TEST(ReferenceIds, Gpt2AsTokenizerJsonWithPairMergesAndSplitPreTokenizer) {
    nlohmann::json merges = nlohmann::json::array();
    std::ifstream in(fixture("tokenizers/gpt2/merges.txt"));
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line.starts_with("#version")) continue;
        const size_t space = line.find(' ');
        merges.push_back({line.substr(0, space), line.substr(space + 1)});
    }
    const std::string gpt2_pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
    const nlohmann::json pre_tokenizer = {
        {"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", gpt2_pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
    const nlohmann::json tokenizer_json = {
        {"version", "1.0"},
        {"added_tokens",
         {{{"id", 50256}, {"content", "<|endoftext|>"}, {"single_word", false}, {"lstrip", false},
           {"rstrip", false}, {"normalized", false}, {"special", true}}}},
        {"normalizer", nullptr},
        {"pre_tokenizer", pre_tokenizer},
        {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}}},
        {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}}},
        {"model",
         {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
          {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
          {"vocab", nlohmann::json::parse(testing::read_file(fixture("tokenizers/gpt2/vocab.json")))},
          {"merges", merges}}}};
    const auto folder = testing::scratch_folder("gpt2_tokenizer_json");
    testing::write_file(folder / "tokenizer.json", tokenizer_json.dump());

    const auto tokenizer = load_tokenizer(folder);
    EXPECT_EQ(tokenizer->kind(), "bpe");
    expect_reference_ids(*tokenizer, "js-tiktoken:gpt2", 45);
}

}  // namespace
}  // namespace sinklab
