// End-to-end tests of `sinklab stream`: the JSON and CSV, the oracle (an independent PyTorch
// StreamingLLM cache and llama.cpp context shift, tests/oracle/streaming_llm_reference.py, gives
// every token's NLL within 1e-4), the overlap with training text, and one clear error per bad input
// with nothing written.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/cli_test_support.h"
#include "core/rng.h"
#include "model/checkpoint.h"

namespace sinklab::testing {
namespace {

namespace fs = std::filesystem;

// A byte-level model: llama (RoPE) with GQA, or gpt2 (learned positions).
fs::path make_model(const fs::path& dir, const std::string& style, int max_seq_len) {
    ModelConfig c = ModelConfig::for_style(style);
    c.vocab_size = 256;
    c.d_model = 64;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = style == "llama" ? 2 : 4;
    c.max_seq_len = max_seq_len;
    c.init_std = 0.2f;  // attention far from uniform: the policies differ
    Transformer model(c);
    model.init_weights(41);
    save_model_folder(model, dir / style);
    return dir / style;
}

// Deterministic English-looking text of at least `bytes` bytes.
fs::path write_text(const fs::path& path, size_t bytes) {
    static const char* const words[] = {"the", "state", "of", "union", "is", "strong", "and", "we", "will", "keep",
                                        "our", "nation", "free", "people", "congress", "law", "year", "new", "work"};
    Rng rng(7);
    std::string text;
    while (text.size() < bytes) {
        text += words[rng.below(std::size(words))];
        text += rng.below(12) == 0 ? ".\n" : " ";
    }
    std::ofstream(path) << text;
    return path;
}

class StreamCli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = fresh_temp_dir("stream");
        llama_ = make_model(dir_, "llama", 128);
        gpt2_ = make_model(dir_, "gpt2", 64);
        text_ = write_text(dir_ / "text.txt", 2400);
    }
    static std::string stream(const fs::path& model, const std::string& flags) {
        return "stream --model " + model.string() + " --data " + text_.string() + " --quiet --threads 2 " + flags;
    }
    static inline fs::path dir_, llama_, gpt2_, text_;
};

TEST_F(StreamCli, MatchesAnIndependentStreamingLlmAndContextShift) {
    const fs::path json = dir_ / "oracle_sinklab.json", reference = dir_ / "oracle_torch.json";
    const std::string policies = "sink:4+60,window:64,shift:4";
    auto r = run_sinklab(stream(llama_, "--policy " + policies + " --tokens 2000 --json " + json.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string script = std::string(SINKLAB_SOURCE_DIR) + "/tests/oracle/streaming_llm_reference.py";
    auto py = test::run_command(std::string(test::kPython) + " " + script + " " + llama_.string() + " " +
                                text_.string() + " 2000 " + reference.string() + " sink:4+60 window:64 shift:4");
    ASSERT_EQ(py.exit_code, 0) << py.output;
    const auto ours = nlohmann::json::parse(read_file(json));
    const auto torch = nlohmann::json::parse(read_file(reference));
    ASSERT_EQ(ours["policies"].size(), 3u);
    std::map<std::string, std::vector<double>> nll;
    for (const auto& p : ours["policies"]) {
        const std::string name = p["policy"];
        const std::vector<double> mine = p["nll"], theirs = torch["policies"][name];
        ASSERT_EQ(mine.size(), 2000u) << name;
        ASSERT_EQ(theirs.size(), 2000u) << name;
        double worst = 0.0;
        for (size_t t = 0; t < mine.size(); ++t) worst = std::max(worst, std::fabs(mine[t] - theirs[t]));
        EXPECT_LT(worst, 1e-4) << name;
        nll[name] = mine;
    }
    // the comparison has teeth: the three caches give different NLLs once they are full
    double sink_vs_window = 0.0, shift_vs_window = 0.0;
    for (size_t t = 0; t < 2000; ++t) {
        sink_vs_window += std::fabs(nll["sink:4+60"][t] - nll["window:64"][t]) / 2000;
        shift_vs_window += std::fabs(nll["shift:4"][t] - nll["window:64"][t]) / 2000;
    }
    EXPECT_GT(sink_vs_window, 1e-3);
    EXPECT_GT(shift_vs_window, 1e-3);
}

TEST_F(StreamCli, WritesSettingsSummarySamplesAndEveryNll) {
    const fs::path json = dir_ / "stream.json", csv = dir_ / "stream.csv";
    auto r = run_sinklab(stream(llama_, "--policy dense,sink:2+30,recompute:32 --tokens 300 --every 100 --json " +
                                            json.string() + " --csv " + csv.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("| sink:2+30"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("training text in the stream: unknown"), std::string::npos) << r.output;
    const auto j = nlohmann::json::parse(read_file(json));
    EXPECT_TRUE(j["complete"].get<bool>());
    EXPECT_EQ(j["data"]["predictions"], 300);
    ASSERT_EQ(j["policies"].size(), 3u);
    const auto& sink = j["policies"][1];
    EXPECT_EQ(sink["policy"], "sink:2+30");
    EXPECT_EQ(sink["kind"], "sink");
    EXPECT_EQ(sink["settings"]["sinks"], 2);
    EXPECT_EQ(sink["settings"]["recent"], 30);
    EXPECT_EQ(sink["settings"]["capacity"], 33);
    EXPECT_EQ(sink["settings"]["positions"], "reindexed");
    EXPECT_EQ(sink["nll"].size(), 300u);
    ASSERT_EQ(sink["samples"].size(), 3u);
    EXPECT_EQ(sink["samples"][2]["tokens"], 300);
    EXPECT_GT(sink["samples"][2]["rss_bytes"].get<double>(), 0);
    double mean = 0.0;
    for (double x : sink["nll"]) mean += x / 300;
    EXPECT_NEAR(std::log(sink["summary"]["ppl"].get<double>()), mean, 1e-5);
    EXPECT_GT(sink["summary"]["cache_bytes"].get<double>(), 0);
    EXPECT_EQ(j["policies"][0]["settings"]["max_tokens"], 8192);  // dense on RoPE: the default bound
    // recompute: a fresh window each token; its first 32 tokens see what dense sees
    for (size_t t = 0; t < 32; ++t)
        EXPECT_NEAR(j["policies"][2]["nll"][t].get<double>(), j["policies"][0]["nll"][t].get<double>(), 1e-5);
    const std::string samples = read_file(csv);
    EXPECT_EQ(samples.substr(0, samples.find('\n')), "policy,tokens,ppl,ppl_recent,tokens_per_s,rss_bytes,cache_bytes");
    EXPECT_EQ(std::count(samples.begin(), samples.end(), '\n'), 10);

    // `sinklab report` draws it: log-perplexity against tokens per policy, and the table
    const fs::path page = dir_ / "stream_report";
    auto rep = run_sinklab("report " + json.string() + " --out " + page.string() + " --quiet");
    ASSERT_EQ(rep.exit_code, 0) << rep.output;
    const std::string html = read_file(page / "index.html");
    EXPECT_NE(html.find("Streaming: stream.json"), std::string::npos);
    EXPECT_NE(html.find("log perplexity"), std::string::npos);
    EXPECT_NE(html.find("recompute:32"), std::string::npos);
    const auto report = nlohmann::json::parse(read_file(page / "report.json"));
    ASSERT_EQ(report["streams"].size(), 1u);
    EXPECT_EQ(report["streams"][0]["policies"][1]["policy"], "sink:2+30");
}

TEST_F(StreamCli, DenseStopsAtTheModelsPositions) {
    const fs::path json = dir_ / "dense.json";
    auto r = run_sinklab(stream(gpt2_, "--policy dense,sink:4+59 --tokens 100 --json " + json.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto j = nlohmann::json::parse(read_file(json));
    EXPECT_EQ(j["policies"][0]["nll"].size(), 64u);
    EXPECT_NE(j["policies"][0]["summary"]["stopped"].get<std::string>().find("bound of 64"), std::string::npos);
    EXPECT_EQ(j["policies"][1]["nll"].size(), 100u);
}

TEST_F(StreamCli, StreamsAPretrainedModelWithItsTokenizer) {
    const fs::path model = fs::path(SINKLAB_SOURCE_DIR) / "tests/fixtures/llama2c/stories260K.bin";
    const fs::path json = dir_ / "stories.json";
    auto r = run_sinklab("stream --model " + model.string() + " --data " + text_.string() +
                         " --policy sink:4+60,sink:auto+60 --tokens 200 --quiet --threads 2 --json " + json.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto j = nlohmann::json::parse(read_file(json));
    EXPECT_TRUE(j["data"]["bos"].get<bool>());  // llama2.c's tokenizer puts BOS first
    EXPECT_EQ(j["policies"][1]["kind"], "sink_auto");
    EXPECT_FALSE(j["data"]["training_overlap"]["known"].get<bool>());
}

// One error line, a non-zero exit, no JSON written.
void expect_clear_error(const CommandResult& r, const std::string& needle, const fs::path& json) {
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_FALSE(fs::exists(json)) << "half-written " << json;
}

TEST_F(StreamCli, BadInputIsOneClearLine) {
    const fs::path json = dir_ / "never.json";
    const std::string out = " --json " + json.string();
    expect_clear_error(run_sinklab(stream(llama_, "--policy sink:4+60,lru:3 --tokens 10" + out)), "unknown policy", json);
    expect_clear_error(run_sinklab(stream(llama_, "--policy sink:0+0 --tokens 10" + out)), "S + W is 0", json);
    expect_clear_error(run_sinklab(stream(gpt2_, "--policy window:8,sink:4+60 --tokens 10" + out)),
                       "positions for 64", json);
    expect_clear_error(run_sinklab(stream(llama_, "--policy window:8 --tokens 5000" + out)), "--tokens 5000", json);
    expect_clear_error(run_sinklab(stream(llama_, "--policy window:8 --tokens 10 --positions sideways" + out)),
                       "--positions", json);
    expect_clear_error(run_sinklab(stream(llama_, "--policy window:8 --tokens 10 --kv int3" + out)), "--kv 'int3'", json);
    expect_clear_error(run_sinklab(stream(llama_, "--policy window:8 --tokens 10 --kv int8 --kv-exact first:0" + out)),
                       "--kv-exact", json);
    expect_clear_error(run_sinklab(stream(llama_, "--policy window:8 --tokens 10 --json " + (dir_ / "no/such.json").string())),
                       "does not exist", dir_ / "no/such.json");
}

}  // namespace
}  // namespace sinklab::testing
