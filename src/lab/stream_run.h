#pragma once
// `sinklab stream`: a model reads a long text one token at a time through each KV-cache policy
// (src/stream), on the same tokens; one table, one JSON with every token's NLL per policy, one CSV
// of the samples. The text is a file or folder, or the default corpus's validation split, and the
// run says how much of it the model saw in training (its run folder records its data).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/csv.h"
#include "report/vega.h"
#include "stream/cache_policy.h"
#include "stream/long_stream.h"

namespace sinklab {

struct StreamRunOptions {
    std::filesystem::path model;
    std::filesystem::path data;       // empty: the default corpus's validation split
    std::filesystem::path tokenizer;  // empty: the model's own (bytes for sinklab's models)
    std::vector<CachePolicy> policies;
    int64_t tokens = 10000;  // predictions per policy (the text gives tokens + 1)
    int every = 0;           // predictions between samples; 0: about 20 samples
    StreamingOptions streaming;
    std::filesystem::path json;  // empty: none
    std::filesystem::path csv;   // empty: none
    bool progress = true;
    std::function<void(const std::string&)> say;  // the lines a person reads (samples, notes); may be empty
};

// The text of a stream as the model reads it.
struct StreamText {
    std::vector<int32_t> tokens;  // BOS first when the model's tokenizer adds one
    bool bos = false;
    std::string source;   // where the text came from
    std::string overlap;  // how much of the streamed text the model saw in training, as a sentence
    nlohmann::json overlap_json;  // {"known": bool, "bytes": overlapping bytes, "of": streamed bytes, ...}
};

struct StreamRunResult {
    std::vector<PolicyStream> runs;
    StreamText text;
    Table table{{"policy"}};
    nlohmann::json json;
};

// Loads the model and the text, checks every policy and the output paths before any work, runs the
// policies one after the other and writes the JSON and CSV after each (atomically: a crash keeps
// the policies already done, "complete": false).
StreamRunResult run_stream(const StreamRunOptions& options);

// Whether `json` is what `sinklab stream --json` writes ("command": "stream" and a "policies" list).
bool is_stream_json(const nlohmann::json& json);

// The summary table of finished runs (policy, tokens, ppl, last-sample ppl, tokens/s, cache bytes,
// peak RSS, note), for the terminal and for `sinklab report`.
Table stream_table(const nlohmann::json& stream_json);

// What `sinklab report` draws from a stream's JSON, as data for any renderer: per policy the
// log-perplexity (mean NLL) of each bin of tokens against the tokens read (StreamingLLM's Figure 3
// in form), and the summary table; the caption is computed from the numbers.
struct StreamFigure {
    std::string title;
    std::vector<Series> curves;  // x: tokens read at the bin's end, y: the bin's mean NLL in nats
    std::string x_label = "tokens";
    std::string y_label = "log perplexity (mean NLL of the bin, nats)";
    Table table{{"policy"}};
    std::string caption;
    int bin = 0;  // tokens per point
};
// At most max_points points per curve. Throws naming the key for a JSON that is not a stream's
// (stream_table too).
StreamFigure stream_figure(const nlohmann::json& stream_json, int max_points = 200);

}  // namespace sinklab
