// Hugging Face tokenizer.json features on a tiny byte-level vocabulary: GPT-2's 256 byte tokens
// (ids 0..255) plus "ab" (256, from the one merge "a b") and "abc" (257, no merge reaches it).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"
#include "tokenizer_test_support.h"

namespace sinklab {
namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

json added_token(int32_t id, const std::string& content, bool special) {
    return {{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", false},
            {"rstrip", false},   {"normalized", !special}, {"special", special}};
}

// GPT-2's byte tokens, ids 0..255 of its vocab.json.
const json& gpt2_byte_tokens() {
    static const json byte_tokens = [] {
        const json gpt2_vocab = json::parse(testing::read_file(testing::fixture("tokenizers/gpt2/vocab.json")));
        json tokens = json::object();
        for (const auto& [spelling, id] : gpt2_vocab.items()) {
            if (id.get<int>() < 256) tokens[spelling] = id;
        }
        return tokens;
    }();
    return byte_tokens;
}

json tiny_tokenizer_json() {
    json vocab = gpt2_byte_tokens();
    vocab["ab"] = 256;
    vocab["abc"] = 257;
    return {{"version", "1.0"},
            {"added_tokens",
             {added_token(300, "<|im_start|>", true), added_token(301, "<|im_end|>", true),
              added_token(304, "<|begin_of_text|>", true)}},
            {"normalizer", nullptr},
            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
            {"post_processor", nullptr},
            {"decoder", {{"type", "ByteLevel"}}},
            {"model",
             {{"type", "BPE"}, {"dropout", nullptr}, {"ignore_merges", false}, {"vocab", vocab}, {"merges", {"a b"}}}}};
}

std::unique_ptr<Tokenizer> load_json(const json& tokenizer_json, std::string_view test_name) {
    const auto folder = testing::scratch_folder(test_name);
    testing::write_file(folder / "tokenizer.json", tokenizer_json.dump());
    return load_tokenizer(folder / "tokenizer.json");
}

TEST(HfTokenizerJson, IgnoreMergesTakesAWholeWordTokenAsIs) {
    json spec = tiny_tokenizer_json();
    EXPECT_EQ(load_json(spec, "merges")->encode("abc"), (Ids{256, 66}));  // "ab", then "c" (GPT-2 id 66)
    spec["model"]["ignore_merges"] = true;
    EXPECT_EQ(load_json(spec, "ignore_merges")->encode("abc"), (Ids{257}));
}

TEST(HfTokenizerJson, SpecialTokensAreCutOutBeforeSplitting) {
    const auto tokenizer = load_json(tiny_tokenizer_json(), "special");
    EXPECT_EQ(tokenizer->encode("<|im_start|>ab<|im_end|>"), (Ids{300, 256, 301}));
    EXPECT_EQ(tokenizer->decode(Ids{300, 256, 301}), "<|im_start|>ab<|im_end|>");
    EXPECT_EQ(tokenizer->token_id("<|im_end|>"), 301);
    EXPECT_EQ(tokenizer->vocab_size(), 305);

    // As ordinary text, the special token is spelled with byte tokens.
    Ids spelled;
    for (char c : std::string("<|im_start|>")) spelled.push_back(*tokenizer->token_id(std::string(1, c)));
    EXPECT_EQ(tokenizer->encode_ordinary("<|im_start|>"), spelled);
}

TEST(HfTokenizerJson, AddedTokenStripAndSingleWordOptions) {
    json spec = tiny_tokenizer_json();
    json mask = added_token(302, "<mask>", true);
    mask["lstrip"] = true;
    mask["rstrip"] = true;
    json ony = added_token(303, "ony", false);
    ony["single_word"] = true;
    spec["added_tokens"].push_back(mask);
    spec["added_tokens"].push_back(ony);
    const auto tokenizer = load_json(spec, "added_options");

    auto concat = [](Ids a, const Ids& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    };
    // lstrip/rstrip: the spaces around <mask> belong to it.
    EXPECT_EQ(tokenizer->encode("hello   <mask>  x"), concat(concat(tokenizer->encode("hello"), {302}), tokenizer->encode("x")));
    // single_word: "ony" inside "Anthony" stays text; the free-standing one is the added token, even
    // for encode_ordinary, as it is not special.
    const Ids expected = concat(tokenizer->encode("Anthony "), {303});
    EXPECT_EQ(tokenizer->encode("Anthony ony"), expected);
    EXPECT_EQ(tokenizer->encode_ordinary("Anthony ony"), expected);
}

TEST(HfTokenizerJson, NfcNormalizerComposesBeforeEncoding) {
    const std::string precomposed = "\xC3\xA9";  // é
    const std::string decomposed = "e\xCC\x81";  // e + combining acute accent
    json spec = tiny_tokenizer_json();
    const auto plain = load_json(spec, "no_normalizer");
    EXPECT_NE(plain->encode(decomposed), plain->encode(precomposed));
    spec["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}}}};
    const auto nfc = load_json(spec, "nfc");
    EXPECT_EQ(nfc->encode(decomposed), nfc->encode(precomposed));
    EXPECT_EQ(nfc->encode(precomposed), (Ids{127, 102}));  // GPT-2's byte tokens for 0xC3 and 0xA9
}

TEST(HfTokenizerJson, TemplatePostProcessorGivesBos) {
    json spec = tiny_tokenizer_json();
    spec["post_processor"] = {
        {"type", "Sequence"},
        {"processors",
         {{{"type", "ByteLevel"}},
          {{"type", "TemplateProcessing"},
           {"single", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
           {"special_tokens", {{"<|begin_of_text|>", {{"id", "<|begin_of_text|>"}, {"ids", {304}}, {"tokens", {"<|begin_of_text|>"}}}}}}}}}};
    const auto tokenizer = load_json(spec, "template");
    EXPECT_EQ(tokenizer->bos_id, 304);
    EXPECT_TRUE(tokenizer->add_bos_by_default);
    EXPECT_EQ(tokenizer->encode("ab"), (Ids{256}));  // encode itself never adds it

    // tokenizer_config.json beside it overrides: no BOS by default, <|im_end|> as EOS.
    const auto folder = testing::scratch_folder("template_with_config");
    testing::write_file(folder / "tokenizer.json", spec.dump());
    testing::write_file(folder / "tokenizer_config.json",
                        R"({"add_bos_token": false, "bos_token": null, "eos_token": "<|im_end|>"})");
    const auto configured = load_tokenizer(folder);
    EXPECT_FALSE(configured->add_bos_by_default);
    EXPECT_EQ(configured->bos_id, 304);
    EXPECT_EQ(configured->eos_id, 301);
}

TEST(HfTokenizerJson, DigitsPreTokenizerInASequence) {
    json spec = tiny_tokenizer_json();
    spec["pre_tokenizer"] = {{"type", "Sequence"},
                             {"pretokenizers",
                              {{{"type", "Digits"}, {"individual_digits", true}},
                               {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
    const auto tokenizer = load_json(spec, "digits");
    EXPECT_EQ(tokenizer->encode("ab12"), (Ids{256, '1' - '!', '2' - '!'}));  // GPT-2 ids of printable ASCII
}

TEST(HfTokenizerJson, DecodeRejectsIdsWithoutToken) {
    const auto tokenizer = load_json(tiny_tokenizer_json(), "gap_ids");
    EXPECT_TRUE(testing::mentions(testing::error_message([&] { tokenizer->decode(Ids{256, 280}); }),
                                  {"tokenizer.json", "id 280"}));
    EXPECT_TRUE(testing::mentions(testing::error_message([&] { tokenizer->decode(Ids{305}); }), {"id 305"}));
}

TEST(HfTokenizerJson, UnsupportedComponentsAreNamed) {
    auto error_for = [](const json& spec, std::string_view name) {
        return testing::error_message([&] { load_json(spec, name); });
    };
    json unigram = tiny_tokenizer_json();
    unigram["model"]["type"] = "Unigram";
    EXPECT_TRUE(testing::mentions(error_for(unigram, "unigram"), {"tokenizer.json", "Unigram", "tokenizer.model"}));

    json metaspace = tiny_tokenizer_json();
    metaspace["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}};
    metaspace["decoder"] = {{"type", "Metaspace"}};
    EXPECT_TRUE(testing::mentions(error_for(metaspace, "metaspace"), {"ByteLevel", "tokenizer.model"}));

    json whitespace = tiny_tokenizer_json();
    whitespace["pre_tokenizer"] = {{"type", "Whitespace"}};
    EXPECT_TRUE(testing::mentions(error_for(whitespace, "whitespace"), {"pre_tokenizer \"Whitespace\""}));

    json lowercase = tiny_tokenizer_json();
    lowercase["normalizer"] = {{"type", "Lowercase"}};
    EXPECT_TRUE(testing::mentions(error_for(lowercase, "lowercase"), {"normalizer \"Lowercase\""}));

    json dropout = tiny_tokenizer_json();
    dropout["model"]["dropout"] = 0.1;
    EXPECT_TRUE(testing::mentions(error_for(dropout, "dropout"), {"dropout"}));

    json bad_merge = tiny_tokenizer_json();
    bad_merge["model"]["merges"] = {"a b", "x \xC4\xA0missing"};
    EXPECT_TRUE(testing::mentions(error_for(bad_merge, "bad_merge"), {"model.merges[1]", "not in the vocabulary"}));
}

}  // namespace
}  // namespace sinklab
