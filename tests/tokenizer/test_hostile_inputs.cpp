// Broken or missing tokenizer files: each gives a sinklab::Error that names the file and the problem.
#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer_test_support.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using testing::error_message;
using testing::fixture;
using testing::mentions;

// The first `count` lines of a text file.
std::string first_lines(const fs::path& file, size_t count) {
    std::ifstream in(file, std::ios::binary);
    std::string text;
    std::string line;
    for (size_t i = 0; i < count && std::getline(in, line); ++i) text += line + "\n";
    return text;
}

TEST(HostileInputs, TruncatedTokenizerJson) {
    const auto folder = testing::scratch_folder("truncated_json");
    testing::write_file(folder / "tokenizer.json", R"({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0, "b)");
    const std::string message = error_message([&] { load_tokenizer(folder); });
    EXPECT_TRUE(mentions(message, {"[tokenizer]", (folder / "tokenizer.json").string(), "not valid JSON", "truncated"}));
}

TEST(HostileInputs, TokenizerJsonWithoutModel) {
    const auto folder = testing::scratch_folder("json_without_model");
    testing::write_file(folder / "tokenizer.json", R"({"version": "1.0"})");
    EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(folder / "tokenizer.json"); }),
                         {"tokenizer.json", "unexpected tokenizer.json layout", "model"}));
}

TEST(HostileInputs, MissingMergesTxt) {
    const auto folder = testing::scratch_folder("missing_merges");
    fs::copy_file(fixture("tokenizers/gpt2/vocab.json"), folder / "vocab.json");
    EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(folder); }), {folder.string(), "merges.txt"}));
    EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(folder / "vocab.json"); }),
                         {(folder / "vocab.json").string(), "no merges.txt"}));
    EXPECT_TRUE(mentions(error_message([&] { load_gpt2_bpe(folder / "vocab.json", folder / "merges.txt"); }),
                         {(folder / "merges.txt").string(), "no such file"}));
}

TEST(HostileInputs, MalformedMergesTxtLine) {
    const auto folder = testing::scratch_folder("bad_merges");
    fs::copy_file(fixture("tokenizers/gpt2/vocab.json"), folder / "vocab.json");
    const std::string good = first_lines(fixture("tokenizers/gpt2/merges.txt"), 10);  // header + 9 merges
    testing::write_file(folder / "merges.txt", good + "three parts here\n");
    EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(folder); }), {"merges.txt line 11", "three parts here"}));
    testing::write_file(folder / "merges.txt", good + "Ġ nosuchtoken\n");
    EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(folder); }),
                         {"merges.txt line 11", "\"nosuchtoken\" is not in the vocabulary"}));
}

TEST(HostileInputs, BadTiktokenLines) {
    const auto folder = testing::scratch_folder("bad_tiktoken");
    const std::string good = first_lines(fixture("tokenizers/cl100k_base.tiktoken"), 300);
    const fs::path file = folder / "cl100k_base.tiktoken";
    for (const std::string bad_line : {"not*base64 300", "IQ== three", "IQ==", "IQ 300"}) {
        SCOPED_TRACE(bad_line);
        testing::write_file(file, good + bad_line + "\n");
        EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(file); }),
                             {file.string() + " line 301", "<base64 token> <rank>"}));
    }
}

TEST(HostileInputs, TruncatedTiktokenFileAgainstItsRules) {
    const auto folder = testing::scratch_folder("truncated_tiktoken");
    testing::write_file(folder / "cl100k_base.tiktoken", first_lines(fixture("tokenizers/cl100k_base.tiktoken"), 5000));
    fs::copy_file(fixture("tokenizers/cl100k_base.json"), folder / "cl100k_base.json");
    EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(folder / "cl100k_base.tiktoken"); }),
                         {"cl100k_base.json", "n_ranks is 100256", "5000 ranks"}));
}

TEST(HostileInputs, TiktokenWithoutRulesNamesWhatIsMissing) {
    const auto folder = testing::scratch_folder("tiktoken_without_rules");
    testing::write_file(folder / "mystery.tiktoken", first_lines(fixture("tokenizers/cl100k_base.tiktoken"), 300));
    EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(folder / "mystery.tiktoken"); }),
                         {"mystery.tiktoken", "mystery.json", "pat_str"}));
}

TEST(HostileInputs, GarbageSentencePieceModel) {
    const auto folder = testing::scratch_folder("garbage_model");
    testing::write_file(folder / "tokenizer.model", std::string("\x0A\xFF\xFF\x01garbage", 11));
    EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(folder); }),
                         {(folder / "tokenizer.model").string(), "not a SentencePiece model"}));
}

TEST(HostileInputs, NotALlama2cTokenizer) {
    const auto folder = testing::scratch_folder("not_llama2c");
    testing::write_file(folder / "tokenizer.bin", std::string("\x07\x00\x00\x00\x00\x00\x00\x00\xFF\xFF\x00\x00", 12));
    EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(folder); }), {"tokenizer.bin", "token 0 has length"}));
}

TEST(HostileInputs, NothingToLoad) {
    const auto folder = testing::scratch_folder("empty_model_folder");
    EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(folder); }), {folder.string(), "no tokenizer found"}));
    EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(folder / "absent"); }), {"absent", "no such file or folder"}));
    testing::write_file(folder / "weights.safetensors", "x");
    EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(folder / "weights.safetensors"); }),
                         {"weights.safetensors", "unknown tokenizer file"}));
}

TEST(HostileInputs, TokenizerConfigNamingAnUnknownToken) {
    const auto folder = testing::scratch_folder("config_unknown_token");
    fs::copy_file(fixture("tokenizers/gpt2/vocab.json"), folder / "vocab.json");
    fs::copy_file(fixture("tokenizers/gpt2/merges.txt"), folder / "merges.txt");
    testing::write_file(folder / "tokenizer_config.json", R"({"eos_token": "<|im_end|>"})");
    EXPECT_TRUE(mentions(error_message([&] { load_tokenizer(folder); }),
                         {"tokenizer_config.json", "eos_token \"<|im_end|>\" is not a token"}));
}

}  // namespace
}  // namespace sinklab
