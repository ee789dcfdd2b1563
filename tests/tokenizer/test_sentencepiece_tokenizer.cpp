// SentencePiece: a small BPE model trained here with Debian's spm_train, checked against the ids
// that Debian's spm_encode gives for the same text.
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

#include "core/rng.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_support.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;

// A program on PATH, or empty.
fs::path find_program(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::stringstream folders(path ? path : "");
    for (std::string folder; std::getline(folders, folder, ':');) {
        const fs::path candidate = fs::path(folder) / name;
        if (fs::is_regular_file(candidate)) return candidate;
    }
    return {};
}

void run(const std::string& command) {
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

// Simple sentences in SentencePiece's normal form (single spaces, no leading space), so that
// decode(encode(line)) == line.
std::vector<std::string> make_sentences(size_t count, uint64_t seed) {
    const std::vector<std::string> subjects{"the cat", "a little girl", "the old man", "my friend", "the dog"};
    const std::vector<std::string> verbs{"saw", "liked", "found", "painted", "wanted"};
    const std::vector<std::string> objects{"a red ball", "the big tree", "some water", "a happy bird", "the sun"};
    Rng rng(seed);
    std::vector<std::string> sentences;
    for (size_t i = 0; i < count; ++i) {
        sentences.push_back(subjects[rng.below(subjects.size())] + " " + verbs[rng.below(verbs.size())] + " " +
                            objects[rng.below(objects.size())] + ".");
    }
    return sentences;
}

// Trains tiny.model in a folder of the test's own (ctest runs the tests in parallel processes).
class SentencePieceTokenizerTest : public ::testing::Test {
protected:
    void SetUp() override {
        spm_train_ = find_program("spm_train");
        spm_encode_ = find_program("spm_encode");
        if (spm_train_.empty() || spm_encode_.empty()) {
            GTEST_SKIP() << "spm_train / spm_encode not on PATH (Debian package sentencepiece, see scripts/setup.sh)";
        }
        folder_ = testing::scratch_folder(std::string("sentencepiece_") +
                                          ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::string corpus;
        for (const std::string& sentence : make_sentences(200, 1)) corpus += sentence + "\n";
        testing::write_file(folder_ / "corpus.txt", corpus);
        run(spm_train_.string() + " --input=" + (folder_ / "corpus.txt").string() + " --model_prefix=" +
            (folder_ / "tiny").string() +
            " --vocab_size=100 --model_type=bpe --character_coverage=1.0 > " + (folder_ / "train.log").string() +
            " 2>&1");
    }

    fs::path spm_train_, spm_encode_, folder_;
};

TEST_F(SentencePieceTokenizerTest, IdsMatchSpmEncodeAndRoundTrip) {
    const auto tokenizer = load_tokenizer(folder_ / "tiny.model");
    EXPECT_EQ(tokenizer->kind(), "sentencepiece");
    EXPECT_EQ(tokenizer->vocab_size(), 100);
    // spm_train's defaults: <unk> 0, <s> 1, </s> 2.
    EXPECT_EQ(tokenizer->bos_id, 1);
    EXPECT_EQ(tokenizer->eos_id, 2);

    // Sentences the model has not seen, plus a character it has never seen.
    std::vector<std::string> lines = make_sentences(20, 2);
    lines.push_back("the cat saw a zebra.");
    std::string input;
    for (const std::string& line : lines) input += line + "\n";
    testing::write_file(folder_ / "input.txt", input);
    run(spm_encode_.string() + " --model=" + (folder_ / "tiny.model").string() + " --output_format=id < " +
        (folder_ / "input.txt").string() + " > " + (folder_ / "ids.txt").string());

    std::ifstream expected_file(folder_ / "ids.txt");
    for (const std::string& line : lines) {
        SCOPED_TRACE(line);
        std::string expected_line;
        ASSERT_TRUE(std::getline(expected_file, expected_line));
        std::vector<int32_t> expected;
        std::stringstream numbers(expected_line);
        for (int32_t id; numbers >> id;) expected.push_back(id);

        const auto ids = tokenizer->encode(line);
        EXPECT_EQ(ids, expected);
        EXPECT_LT(ids.size(), line.size()) << "merges happened";
        if (line.find('z') == std::string::npos) {
            EXPECT_EQ(tokenizer->decode(ids), line);
        } else {
            EXPECT_NE(std::find(ids.begin(), ids.end(), 0), ids.end()) << "'z' is unknown";
        }
    }
}

TEST_F(SentencePieceTokenizerTest, TokenTextShowsSpacesAndTokenIdFindsPieces) {
    const auto tokenizer = load_tokenizer(folder_ / "tiny.model");
    const auto ids = tokenizer->encode("the cat");
    std::string spelled;
    for (int32_t id : ids) spelled += tokenizer->token_text(id);
    EXPECT_EQ(spelled, " the cat");  // SentencePiece's dummy prefix, "▁" shown as a space
    EXPECT_EQ(tokenizer->token_text(1), "<s>");
    EXPECT_EQ(tokenizer->token_id("<s>"), 1);
    EXPECT_EQ(tokenizer->token_id(tokenizer->token_text(ids[0])), ids[0]);
    EXPECT_FALSE(tokenizer->token_id("not a piece").has_value());
}

TEST_F(SentencePieceTokenizerTest, ModelFolderWithTokenizerConfig) {
    const fs::path model_folder = folder_ / "model";
    fs::create_directories(model_folder);
    fs::copy_file(folder_ / "tiny.model", model_folder / "tokenizer.model", fs::copy_options::overwrite_existing);
    testing::write_file(model_folder / "tokenizer_config.json",
                        R"({"add_bos_token": true, "bos_token": "<s>", "eos_token": {"content": "</s>"}})");
    const auto tokenizer = load_tokenizer(model_folder);
    EXPECT_EQ(tokenizer->kind(), "sentencepiece");
    EXPECT_TRUE(tokenizer->add_bos_by_default);
    EXPECT_EQ(tokenizer->bos_id, 1);
    EXPECT_EQ(tokenizer->eos_id, 2);
    const std::vector<int32_t> ids{1, tokenizer->encode("the dog")[0]};
    EXPECT_EQ(tokenizer->decode(ids), tokenizer->decode(std::vector<int32_t>{ids[1]}));  // <s> renders as nothing
}

TEST_F(SentencePieceTokenizerTest, RejectsIdsOutsideTheVocabulary) {
    const auto tokenizer = load_tokenizer(folder_ / "tiny.model");
    const std::vector<int32_t> ids{5, 100};
    EXPECT_TRUE(testing::mentions(testing::error_message([&] { tokenizer->decode(ids); }),
                                  {"tiny.model", "id 100", "[0, 100)"}));
}

// spm_encode's ids of each line (one line per text), for the expectations below.
std::vector<std::vector<int32_t>> spm_ids(const fs::path& spm_encode, const fs::path& model, const fs::path& folder,
                                          const std::vector<std::string>& lines) {
    std::string input;
    for (const std::string& line : lines) input += line + "\n";
    testing::write_file(folder / "spm_input.txt", input);
    run(spm_encode.string() + " --model=" + model.string() + " --output_format=id < " +
        (folder / "spm_input.txt").string() + " > " + (folder / "spm_ids.txt").string());
    std::vector<std::vector<int32_t>> out;
    std::ifstream file(folder / "spm_ids.txt");
    for (std::string line; std::getline(file, line);) {
        std::stringstream numbers(line);
        out.emplace_back();
        for (int32_t id; numbers >> id;) out.back().push_back(id);
    }
    return out;
}

// XLM-RoBERTa's ids (transformers' XLMRobertaTokenizer): fairseq's <s> 0, <pad> 1, </s> 2, <unk> 3,
// SentencePiece piece i at i + 1 (its <unk>, piece 0, at 3), <mask> after the last piece.
std::vector<int32_t> fairseq_ids(const std::vector<int32_t>& pieces) {
    std::vector<int32_t> ids;
    for (int32_t piece : pieces) ids.push_back(piece == 0 ? 3 : piece + 1);
    return ids;
}

TEST_F(SentencePieceTokenizerTest, XlmRobertaIdsAreSpmEncodeUnderFairseqIds) {
    const fs::path model_folder = folder_ / "xlmr";
    fs::create_directories(model_folder);
    fs::copy_file(folder_ / "tiny.model", model_folder / "sentencepiece.bpe.model",
                  fs::copy_options::overwrite_existing);
    const auto tokenizer = load_tokenizer(model_folder);
    EXPECT_EQ(tokenizer->kind(), "sentencepiece-xlmr");
    EXPECT_EQ(tokenizer->vocab_size(), 102);  // 100 pieces + <pad> + <mask>
    EXPECT_EQ(tokenizer->mask_id, 101);
    EXPECT_EQ(tokenizer->cls_id, 0);
    EXPECT_EQ(tokenizer->sep_id, 2);
    EXPECT_EQ(tokenizer->pad_id, 1);
    EXPECT_EQ(tokenizer->framing, SequenceFraming::roberta);

    std::vector<std::string> lines = make_sentences(10, 3);
    lines.push_back("the cat saw a zebra.");  // 'z' is unknown: <unk> 3
    const auto expected = spm_ids(spm_encode_, folder_ / "tiny.model", folder_, lines);
    for (size_t i = 0; i < lines.size(); ++i) {
        EXPECT_EQ(tokenizer->encode(lines[i]), fairseq_ids(expected[i])) << lines[i];
        if (lines[i].find('z') == std::string::npos) {
            EXPECT_EQ(tokenizer->decode(tokenizer->encode(lines[i])), lines[i]);
        }
    }

    // Special tokens written in the text: <mask> swallows the spaces before it, the rest is encoded
    // piece by piece around it; <s> ... </s> frame a sequence, pairs get a double </s>.
    const auto parts = spm_ids(spm_encode_, folder_ / "tiny.model", folder_, {"the cat", " a red ball."});
    std::vector<int32_t> masked = fairseq_ids(parts[0]);
    masked.push_back(101);
    const std::vector<int32_t> after = fairseq_ids(parts[1]);
    masked.insert(masked.end(), after.begin(), after.end());
    EXPECT_EQ(tokenizer->encode("the cat  <mask> a red ball."), masked);
    EXPECT_EQ(tokenizer->token_text(101), "<mask>");
    const std::vector<int32_t> a{10, 11}, b{12};
    const FramedInput pair = frame_sequence(*tokenizer, a, b);
    EXPECT_EQ(pair.ids, (std::vector<int32_t>{0, 10, 11, 2, 2, 12, 2}));
    EXPECT_EQ(pair.token_types, std::vector<int32_t>(7, 0));
}

}  // namespace
}  // namespace sinklab
