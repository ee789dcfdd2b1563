// BERT's WordPiece tokenizer: exact ids on every record of tests/fixtures/hf-encoders/
// bert_tokenizer.jsonl (transformers' BertTokenizer, lower-casing on and off, [CLS] / [SEP] and the
// token types of pairs), and on strings of our own against tests/oracle/wordpiece_reference.py (an
// independent Python implementation, run with /usr/bin/python3); bad vocabularies fail with one line.
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "../support/run_command.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_support.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path bert_vocab() { return testing::fixture("hf-encoders/bert/vocab.txt"); }

// The fixture's vocabulary with a tokenizer_config.json of these options, in a scratch folder.
fs::path tokenizer_folder(const std::string& name, const json& options) {
    const fs::path folder = testing::scratch_folder("wordpiece_" + name);
    fs::copy_file(bert_vocab(), folder / "vocab.txt");
    testing::write_file(folder / "tokenizer_config.json", options.dump());
    return folder;
}

std::vector<json> fixture_records() {
    std::vector<json> records;
    std::istringstream lines(testing::read_file(testing::fixture("hf-encoders/bert_tokenizer.jsonl")));
    for (std::string line; std::getline(lines, line);)
        if (!line.empty()) records.push_back(json::parse(line));
    return records;
}

TEST(WordPieceTokenizer, EveryFixtureRecordMatchesTransformersBertTokenizer) {
    const std::vector<json> records = fixture_records();
    ASSERT_EQ(records.size(), 140u);
    int checked = 0, pairs = 0;
    for (bool lower : {true, false}) {
        const auto tokenizer =
            load_tokenizer(tokenizer_folder(lower ? "lower" : "cased", {{"do_lower_case", lower},
                                                                        {"tokenizer_class", "BertTokenizer"}}));
        EXPECT_EQ(tokenizer->kind(), "wordpiece");
        EXPECT_EQ(tokenizer->framing, SequenceFraming::bert);
        for (const json& r : records) {
            if (r.at("options").at("do_lower_case").get<bool>() != lower) continue;
            const std::string text = r.at("text").get<std::string>();
            const std::vector<int32_t> first = tokenizer->encode(text);
            FramedInput framed;
            if (r.contains("text_pair")) {
                const std::vector<int32_t> second = tokenizer->encode(r.at("text_pair").get<std::string>());
                framed = frame_sequence(*tokenizer, first, second);
                EXPECT_EQ(framed.token_types, r.at("token_type_ids").get<std::vector<int32_t>>()) << text;
                ++pairs;
            } else {
                framed = frame_sequence(*tokenizer, first);
            }
            EXPECT_EQ(framed.ids, r.at("ids").get<std::vector<int32_t>>())
                << "do_lower_case " << lower << ": " << json(text).dump();
            EXPECT_EQ(tokenizer->decode(framed.ids), r.at("decoded").get<std::string>()) << json(text).dump();
            ++checked;
        }
    }
    EXPECT_EQ(checked, 140);
    EXPECT_EQ(pairs, 8);
}

TEST(WordPieceTokenizer, SpecialTokensComeFromTheVocabularyAndTheConfig) {
    const auto tokenizer = load_tokenizer(bert_vocab());  // a lone vocab.txt: BertTokenizer's defaults
    EXPECT_EQ(tokenizer->vocab_size(), 563);
    EXPECT_EQ(tokenizer->cls_id, 4);
    EXPECT_EQ(tokenizer->sep_id, 5);
    EXPECT_EQ(tokenizer->mask_id, 6);
    EXPECT_EQ(tokenizer->pad_id, 0);
    EXPECT_EQ(tokenizer->unk_id, 3);
    EXPECT_EQ(tokenizer->token_text(6), "[MASK]");
    EXPECT_EQ(tokenizer->token_id("##ing"), 544);
    EXPECT_EQ(tokenizer->token_text(544), "##ing");
    // encode_ordinary reads special tokens as text
    EXPECT_EQ(tokenizer->encode("[MASK]"), std::vector<int32_t>{6});
    EXPECT_NE(tokenizer->encode_ordinary("[MASK]"), std::vector<int32_t>{6});
}

// Strings of our own against the independent Python reference, under several option sets.
TEST(WordPieceTokenizer, OwnStringsMatchTheIndependentPythonReference) {
    const std::vector<std::string> texts = {
        "Attention sinks in BERT: [CLS] and [SEP] gather the heads' weight.",
        "Unaffable, unaffableness; UNAFFABLE!",
        "ÀÉÎÕÜ àéîõü Ñandú Øresund Łódź",
        "e\xCC\x81\xCC\xA7 o\xCC\x88 A\xCC\x8A",  // combining marks after their bases
        "Ⅻ ① ²³ ½ № ™ ℃",
        "東京タワー と 北京 are 3,333 km apart.",
        "\xF0\xA0\x80\x80 CJK extension B and \xE3\x90\x80 extension A",
        "tabs\tand\vvertical\ftabs\x1c\x1dseparators\xE2\x80\xA8line\xE2\x80\xA9paragraph",
        "bidi\xE2\x80\x8Fmarks\xE2\x80\x8E" "and\xEF\xBB\xBF" "bom",
        "bad bytes \xFF\xFE here and a lone \xC3 lead",
        "York Paris BERT ##es ##ing",
        "[MASK] [mask] [Mask] x[SEP]y[CLS]",
        "Σίσυφος ΣΊΣΥΦΟΣ İIıi",
        "a-b_c/d\\e|f~g`h^i",
        std::string(101, 'a') + " " + std::string(100, 'a'),
        "",
    };
    for (const json& options : {json{{"do_lower_case", true}}, json{{"do_lower_case", false}},
                                json{{"do_lower_case", true}, {"strip_accents", false}},
                                json{{"do_lower_case", false}, {"strip_accents", true}},
                                json{{"do_lower_case", true}, {"tokenize_chinese_chars", false}}}) {
        const fs::path folder = tokenizer_folder("oracle", options);
        json request = options;
        request["texts"] = json::array();  // as bytes: some texts are not valid UTF-8 on purpose
        for (const std::string& text : texts) request["texts"].push_back(std::vector<uint8_t>(text.begin(), text.end()));
        if (!request.contains("strip_accents")) request["strip_accents"] = nullptr;
        testing::write_file(folder / "request.json", request.dump());
        const test::CommandResult run = test::run_command(
            std::string(test::kPython) + " " + SINKLAB_SOURCE_DIR + "/tests/oracle/wordpiece_reference.py " +
            (folder / "vocab.txt").string() + " < " + (folder / "request.json").string() + " 2>/dev/null");
        ASSERT_EQ(run.exit_code, 0) << run.output;
        const json reference = json::parse(run.output);
        const auto tokenizer = load_tokenizer(folder);
        for (size_t i = 0; i < texts.size(); ++i)
            EXPECT_EQ(tokenizer->encode(texts[i]), reference.at("ids")[i].get<std::vector<int32_t>>())
                << options.dump() << ": text " << i << " " << json(texts[i]).dump(-1, ' ', true, json::error_handler_t::replace);
    }
}

TEST(WordPieceTokenizer, DuplicateTokensAreRefusedNamingBothLines) {
    const fs::path folder = testing::scratch_folder("wordpiece_duplicate");
    testing::write_file(folder / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\nhello\n");
    const std::string message = testing::error_message([&] { load_tokenizer(folder); });
    EXPECT_TRUE(testing::mentions(message, {"vocab.txt", "line 7", "\"hello\"", "line 5"}));
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(WordPieceTokenizer, MissingUnknownTokenAndBadConfigAreRefused) {
    const fs::path folder = testing::scratch_folder("wordpiece_no_unk");
    testing::write_file(folder / "vocab.txt", "[PAD]\n[CLS]\n[SEP]\nhello\n");
    EXPECT_TRUE(testing::mentions(testing::error_message([&] { load_tokenizer(folder); }), {"[UNK]", "vocab.txt"}));
    testing::write_file(folder / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n");
    testing::write_file(folder / "tokenizer_config.json", "{\"do_lower_case\": \"yes\"}");
    EXPECT_TRUE(testing::mentions(testing::error_message([&] { load_tokenizer(folder); }),
                                  {"tokenizer_config.json", "not a valid"}));
}

}  // namespace
}  // namespace sinklab
