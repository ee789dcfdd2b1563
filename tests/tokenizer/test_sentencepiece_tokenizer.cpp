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

}  // namespace
}  // namespace sinklab
