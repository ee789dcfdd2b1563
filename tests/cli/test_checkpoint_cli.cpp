// End-to-end tests of `sinklab generate`, `sinklab tokenize` and `sinklab export` on real
// checkpoints: the fixtures' greedy ids through --json, the stories260K text from BOS, tokenizer
// ids, an exported model that generates what its original does, and clear errors for bad input.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli_test_support.h"
#include "model/checkpoint.h"
#include "model/hf_loader.h"
#include "tokenizer/tokenizer.h"

namespace sinklab::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path fixture(const std::string& relative) { return fs::path(SINKLAB_SOURCE_DIR) / "tests" / "fixtures" / relative; }

struct SplitResult {
    int exit_code = -1;
    std::string out, err;
};

// Runs sinklab with stdout and stderr kept apart (--json output must be alone on stdout).
SplitResult run_split(const std::string& args) {
    const fs::path dir = fresh_temp_dir("split");
    const int status = std::system(
        (sinklab_binary() + " " + args + " > " + (dir / "out").string() + " 2> " + (dir / "err").string()).c_str());
    SplitResult result{WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(dir / "out"), read_file(dir / "err")};
    fs::remove_all(dir);
    return result;
}

std::string joined(const std::vector<int64_t>& ids, char separator) {
    std::string s;
    for (int64_t id : ids) {
        if (!s.empty()) s += separator;
        s += std::to_string(id);
    }
    return s;
}

json manifest() { return json::parse(read_file(fixture("hf/MANIFEST.json"))); }

TEST(GenerateCli, JsonGreedyIdsMatchTheFixtures) {
    const json m = manifest();
    const std::vector<int64_t> input = m["input_ids"].get<std::vector<int64_t>>();
    for (const char* arch : {"gpt2", "llama", "gemma2", "phi3_longrope"}) {
        SCOPED_TRACE(arch);
        const SplitResult r = run_split("generate --model " + fixture(std::string("hf/") + arch).string() +
                                        " --prompt-ids " + joined(input, ',') + " --max-new-tokens 8 --greedy --json --threads 1");
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const json out = json::parse(r.out);
        EXPECT_EQ(out.size(), 2u) << r.out;
        EXPECT_EQ(out["prompt_ids"].get<std::vector<int64_t>>(), input);
        EXPECT_EQ(out["generated_ids"].get<std::vector<int64_t>>(),
                  m["models"][arch]["greedy_ids"].get<std::vector<int64_t>>());
        EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;
    }
}

TEST(GenerateCli, Stories260KTellsItsStoryFromBos) {
    const std::string expected =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she "
        "saw a big,";
    // the tokenizer is found beside the model (tok512.bin), or given
    for (const std::string& tokenizer : {std::string(), " --tokenizer " + fixture("llama2c/tok512.bin").string()}) {
        const SplitResult r = run_split("generate --model " + fixture("llama2c/stories260K.bin").string() +
                                        " --prompt '' --greedy --max-new-tokens 40 --threads 1" + tokenizer);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.out.substr(0, expected.size()), expected) << r.out;
        EXPECT_NE(r.err.find("generated 40 tokens"), std::string::npos) << r.err;
    }
    // sampling: a seeded run repeats itself
    const std::string sampled = "generate --model " + fixture("llama2c/stories260K.bin").string() +
                                " --prompt 'Once upon a time' --temperature 0.9 --top-p 0.9 --seed 5 --max-new-tokens 30 --json --threads 1";
    const SplitResult a = run_split(sampled), b = run_split(sampled);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(a.out, b.out);
    EXPECT_EQ(json::parse(a.out)["prompt_ids"].front(), 1) << "BOS first";
}

// A streaming cache generates past the model's context (stories260K: 512 positions) in a cache of
// its own size, quantized too, where dense's cache grows with every token (RoPE goes on).
TEST(GenerateCli, StreamingCachesGoPastTheContextInTheirOwnSize) {
    const std::string base = "generate --model " + fixture("llama2c/stories260K.bin").string() +
                             " --prompt-ids 1 --greedy --ignore-eos --max-new-tokens 700 --json --threads 1";
    const SplitResult dense = run_split(base);
    ASSERT_EQ(dense.exit_code, 0) << dense.err;
    const auto dense_ids = json::parse(dense.out)["generated_ids"];
    ASSERT_EQ(dense_ids.size(), 700u) << dense.err;
    // 5 layers x 4 kv heads x 8 channels x 2 x 4 bytes = 1280 bytes per token
    EXPECT_NE(dense.err.find("dense, reindexed positions, f32 (exact: none), 897280 bytes"), std::string::npos) << dense.err;
    for (const std::string cache : {" --cache sink:4+250", " --cache sink:4+250 --kv int4 --kv-exact first:4"}) {
        const SplitResult r = run_split(base + cache);
        ASSERT_EQ(r.exit_code, 0) << cache << "\n" << r.err;
        const auto ids = json::parse(r.out)["generated_ids"];
        EXPECT_EQ(ids.size(), 700u) << cache;
        EXPECT_NE(r.err.find("sink:4+250"), std::string::npos) << r.err;
        if (cache.find("int4") != std::string::npos) continue;
        EXPECT_NE(r.err.find("f32 (exact: none), 326400 bytes"), std::string::npos) << r.err;  // 4 + 250 + 1 tokens
        // the cache holds 255 tokens and the new one: until the first eviction, dense's tokens
        for (size_t i = 0; i < 254; ++i) EXPECT_EQ(ids[i], dense_ids[i]) << i;
    }
}

TEST(GenerateCli, BadInputIsRejectedClearly) {
    const std::string gpt2 = " --model " + fixture("hf/gpt2").string();
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"generate" + gpt2 + " --prompt-ids 1,999", "id 999 is outside the model's vocabulary (ids 0..255)"},
        {"generate" + gpt2 + " --prompt-ids 1,x", "'x' is not a token id"},
        {"generate" + gpt2 + " --prompt hello", "no tokenizer found"},
        {"generate" + gpt2 + " --prompt hello --prompt-ids 1", "exactly one of them"},
        {"generate" + gpt2 + " --prompt-ids 1 --temperature 0", "--temperature must be positive"},
        {"generate" + gpt2 + " --prompt-ids 1 --top-p 1.5", "--top-p must be in (0, 1]"},
        {"generate --model /no/such/model --prompt-ids 1", "no such file or folder"},
        {"tokenize --tokenizer /no/such/tokenizer.json hi", "no such file"},
        {"tokenize" + gpt2 + " hi", "no tokenizer found"},
        {"generate" + gpt2 + " --prompt-ids 1 --cache lru:8", "unknown policy"},
        {"generate" + gpt2 + " --prompt-ids 1 --cache sink:4+2000", "positions"},
        {"generate" + gpt2 + " --prompt-ids 1 --cache sink:4+20 --kv int3", "--kv 'int3'"},
        {"generate" + gpt2 + " --prompt-ids 1 --cache sink:4+20 --kv int8 --kv-exact middle:2", "--kv-exact"},
    };
    for (const auto& [args, phrase] : cases) {
        const CommandResult r = run_sinklab(args);
        EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.output;
        EXPECT_NE(r.output.find(phrase), std::string::npos) << args << "\n" << r.output;
    }
}

TEST(TokenizeCli, PrintsIdsOfEveryTokenizerKind) {
    const SplitResult gpt2 = run_split("tokenize --tokenizer " + fixture("tokenizers/gpt2").string() + " --json 'Hello world'");
    ASSERT_EQ(gpt2.exit_code, 0) << gpt2.err;
    EXPECT_EQ(json::parse(gpt2.out), (json{{"ids", {15496, 995}}}));
    const SplitResult plain = run_split("tokenize --tokenizer " + fixture("tokenizers/gpt2").string() + " 'Hello world'");
    EXPECT_EQ(plain.out, "15496 995\n");

    const std::string text = "Once upon a time";
    const auto reference = load_tokenizer(fixture("llama2c/tok512.bin"))->encode(text);
    const std::string expected = joined(std::vector<int64_t>(reference.begin(), reference.end()), ' ');
    const SplitResult by_model = run_split("tokenize --model " + fixture("llama2c/stories260K.bin").string() + " '" + text + "'");
    ASSERT_EQ(by_model.exit_code, 0) << by_model.err;
    EXPECT_EQ(by_model.out, expected + "\n");

    const auto tiktoken = load_tokenizer(fixture("tokenizers/cl100k_base.tiktoken"))->encode("hello world!");
    const SplitResult tk = run_split("tokenize --tokenizer " + fixture("tokenizers/cl100k_base.tiktoken").string() +
                                     " --json 'hello world!'");
    ASSERT_EQ(tk.exit_code, 0) << tk.err;
    EXPECT_EQ(json::parse(tk.out)["ids"].get<std::vector<int32_t>>(), tiktoken);
}

TEST(ExportCli, ExportedModelGeneratesWhatTheOriginalDoes) {
    const fs::path dir = fresh_temp_dir("export");
    for (const char* style : {"gpt2", "llama"}) {
        SCOPED_TRACE(style);
        ModelConfig c = ModelConfig::for_style(style);
        c.vocab_size = 257;
        c.d_model = 32;
        c.n_layers = 2;
        c.n_heads = 4;
        c.n_kv_heads = 2 + 2 * (std::string(style) == "gpt2");
        c.max_seq_len = 64;
        c.init_std = 0.3f;
        Transformer model(c);
        model.init_weights(11);
        const fs::path run = dir / (std::string(style) + "_run"), out = dir / (std::string(style) + "_hf");
        save_model_folder(model, run);

        const CommandResult exported = run_sinklab("export --model " + run.string() + " --out " + out.string());
        ASSERT_EQ(exported.exit_code, 0) << exported.output;
        EXPECT_NE(exported.output.find(style), std::string::npos) << exported.output;
        ModelInfo info;
        load_model(out, &info);
        EXPECT_EQ(info.architecture, style);

        const std::string generate = " --prompt-ids 256,72,105 --max-new-tokens 12 --greedy --json --threads 1";
        const SplitResult original = run_split("generate --model " + run.string() + generate);
        const SplitResult reloaded = run_split("generate --model " + out.string() + generate);
        ASSERT_EQ(original.exit_code, 0) << original.err;
        ASSERT_EQ(reloaded.exit_code, 0) << reloaded.err;
        EXPECT_EQ(original.out, reloaded.out);
        // a sinklab byte model decodes its own text
        const SplitResult text = run_split("generate --model " + run.string() + " --prompt Hi --max-new-tokens 4 --threads 1");
        EXPECT_EQ(text.exit_code, 0) << text.err;
        EXPECT_EQ(text.out.substr(0, 2), "Hi") << text.out;
    }
    ModelConfig windowed = ModelConfig::for_style("gpt2");
    windowed.d_model = 32;
    windowed.window = 4;
    save_model_folder(Transformer(windowed), dir / "windowed");
    const CommandResult refused = run_sinklab("export --model " + (dir / "windowed").string() + " --out " + (dir / "x").string());
    EXPECT_EQ(refused.exit_code, 1) << refused.output;
    EXPECT_NE(refused.output.find("window of 4"), std::string::npos) << refused.output;
    fs::remove_all(dir);
}

}  // namespace
}  // namespace sinklab::testing
