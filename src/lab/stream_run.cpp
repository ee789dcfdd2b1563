#include "lab/stream_run.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "core/error.h"
#include "core/files.h"
#include "core/threads.h"
#include "io/corpus.h"
#include "io/corpus_bytes.h"
#include "model/checkpoint.h"
#include "probe/probe_model.h"
#include "train/train_config.h"

namespace sinklab {

namespace fs = std::filesystem;

namespace {

// A text as sinklab reads it (io/corpus.h): one file, or a folder's *.txt files in name order.
// Each file with its size, so that byte ranges of two texts can be compared file by file.
std::vector<std::pair<fs::path, size_t>> text_files(const fs::path& path) {
    std::vector<fs::path> files;
    if (fs::is_directory(path)) {
        for (const auto& entry : fs::directory_iterator(path))
            if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry.path());
        std::sort(files.begin(), files.end());
    } else {
        files.push_back(path);
    }
    std::vector<std::pair<fs::path, size_t>> sized;
    for (const fs::path& f : files) sized.emplace_back(fs::weakly_canonical(f), fs::file_size(f));
    return sized;
}

// Bytes [begin, end) of a text's concatenation, as a byte range of each file it touches.
std::map<fs::path, std::pair<size_t, size_t>> file_ranges(const std::vector<std::pair<fs::path, size_t>>& files,
                                                          size_t begin, size_t end) {
    std::map<fs::path, std::pair<size_t, size_t>> ranges;
    size_t offset = 0;
    for (const auto& [file, size] : files) {
        const size_t lo = std::max(begin, offset), hi = std::min(end, offset + size);
        if (lo < hi) ranges[file] = {lo - offset, hi - offset};
        offset += size;
    }
    return ranges;
}

struct TextRange {
    fs::path path;      // a file or folder
    size_t begin = 0;   // bytes of its concatenation
    size_t end = 0;
};

// How much of `streamed` the model's training run read: its trainer_state.json names its data and
// validation fraction (the training split is everything before the validation bytes).
void describe_overlap(StreamText& text, const fs::path& model, const TextRange& streamed) {
    const fs::path state = fs::is_directory(model) ? resolve_model_dir(model) / "trainer_state.json" : fs::path();
    const size_t streamed_bytes = streamed.end - streamed.begin;
    if (state.empty() || !fs::exists(state)) {
        text.overlap = "unknown: the model folder records no training data (only sinklab runs and checkpoints do)";
        text.overlap_json = {{"known", false}, {"of", streamed_bytes}};
        return;
    }
    const TrainConfig trained = recorded_train_config(state, "stream");
    const fs::path data = trained.data.empty() ? default_corpus_path() : fs::path(trained.data);
    if (!fs::exists(data)) {
        text.overlap = fmt::format("unknown: the model trained on {}, which is not on this machine", data.string());
        text.overlap_json = {{"known", false}, {"of", streamed_bytes}, {"training_data", data.string()}};
        return;
    }
    const auto train_files = text_files(data);
    size_t total = 0;
    for (const auto& f : train_files) total += f.second;
    const size_t train_end = total - validation_bytes(total, trained.val_fraction);
    const auto trained_ranges = file_ranges(train_files, 0, train_end);
    size_t overlap = 0;
    for (const auto& [file, range] : file_ranges(text_files(streamed.path), streamed.begin, streamed.end)) {
        const auto it = trained_ranges.find(file);
        if (it == trained_ranges.end()) continue;
        const size_t lo = std::max(range.first, it->second.first), hi = std::min(range.second, it->second.second);
        if (lo < hi) overlap += hi - lo;
    }
    text.overlap_json = {{"known", true},
                         {"bytes", overlap},
                         {"of", streamed_bytes},
                         {"training_data", data.string()},
                         {"val_fraction", trained.val_fraction}};
    if (overlap == 0)
        text.overlap = fmt::format("none: the model trained on the first {:g}% of {}, and the stream reads none of it",
                                   100.0 * (1.0 - trained.val_fraction), data.string());
    else
        text.overlap = fmt::format("{} of the {} streamed bytes ({:.1f}%) are training text of the model (it trained "
                                   "on the first {:g}% of {})",
                                   overlap, streamed_bytes, 100.0 * overlap / std::max<size_t>(streamed_bytes, 1),
                                   100.0 * (1.0 - trained.val_fraction), data.string());
}

StreamText load_stream_text(const StreamRunOptions& o, const ProbeModel& pm, const Tokenizer& tokenizer) {
    StreamText text;
    TextRange range;
    std::vector<uint8_t> bytes;
    if (o.data.empty()) {
        range.path = default_corpus_path();
        bytes = read_corpus_bytes(range.path);
        const double fraction = kDefaultValFraction;
        range.begin = bytes.size() - validation_bytes(bytes.size(), fraction);
        bytes.erase(bytes.begin(), bytes.begin() + static_cast<long>(range.begin));
        text.source = fmt::format("the validation split (last {:g}%) of {}", 100.0 * fraction, range.path.string());
    } else {
        range.path = o.data;
        bytes = read_corpus_bytes(range.path);
        text.source = o.data.string();
    }
    const std::string_view all(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const size_t needed = static_cast<size_t>(o.tokens) + 1;
    text.bos = pm.adds_bos && pm.bos_id.has_value();
    // Tokenize a prefix generously longer than needed; the whole text when the prefix falls short.
    // The margin keeps the tokens used clear of the prefix's cut.
    constexpr size_t kMargin = 16;
    std::vector<int32_t> ids;
    const size_t prefix = std::min(all.size(), (needed + kMargin) * 16);
    ids = tokenizer.encode_ordinary(all.substr(0, prefix));
    if (prefix < all.size() && ids.size() < needed + kMargin) ids = tokenizer.encode_ordinary(all);
    if (text.bos) text.tokens.push_back(*pm.bos_id);
    text.tokens.insert(text.tokens.end(), ids.begin(), ids.end());
    const int V = pm.model->config().vocab_size;
    SINKLAB_CHECK(static_cast<int64_t>(text.tokens.size()) >= o.tokens + 1, "stream",
                  "--tokens {}: {} gives {} tokens{}, {} predictions at most; pass a longer --data (a file, or a "
                  "folder of *.txt files)",
                  o.tokens, text.source, text.tokens.size(), text.bos ? " with BOS" : "",
                  std::max<int64_t>(0, static_cast<int64_t>(text.tokens.size()) - 1));
    text.tokens.resize(needed);
    for (int32_t id : text.tokens)
        SINKLAB_CHECK(id >= 0 && id < V, "stream", "the tokenizer gave id {}, outside the model's vocabulary (size {})",
                      id, V);
    // the bytes the used tokens cover
    const std::vector<int32_t> used(text.tokens.begin() + (text.bos ? 1 : 0), text.tokens.end());
    range.end = range.begin + std::min(all.size(), tokenizer.decode(used).size());
    describe_overlap(text, o.model, range);
    return text;
}

std::string mib(size_t bytes) { return fmt::format("{:.1f}", bytes / 1048576.0); }

nlohmann::json run_json(const StreamRunOptions& o, const ProbeModel& pm, const StreamText& text, int every) {
    return {{"command", "stream"},
            {"model", {{"path", pm.info.path.string()}, {"architecture", pm.info.architecture},
                       {"parameters", pm.model->num_params()}, {"max_seq_len", pm.model->config().max_seq_len},
                       {"positions", to_string(pm.model->config().positions)},
                       {"attention", pm.model->config().attention.name()}}},
            {"data", {{"source", text.source}, {"tokens", text.tokens.size()}, {"predictions", o.tokens},
                      {"bos", text.bos}, {"overlap", text.overlap}, {"training_overlap", text.overlap_json}}},
            {"positions", to_string(o.streaming.positions)},
            {"every", every},
            {"threads", num_threads()},
            {"policies", nlohmann::json::array()},
            {"complete", false}};
}

Table samples_table(const std::vector<PolicyStream>& runs) {
    Table t({"policy", "tokens", "ppl", "ppl_recent", "tokens_per_s", "rss_bytes", "cache_bytes"});
    for (const PolicyStream& run : runs)
        for (const StreamSample& s : run.samples)
            t.add_row({policy_name(run.policy), fmt::format("{}", s.tokens), fmt::format("{}", s.ppl),
                       fmt::format("{}", s.ppl_recent), fmt::format("{}", s.tokens_per_s),
                       fmt::format("{}", s.rss_bytes), fmt::format("{}", run.cache_bytes)});
    return t;
}

void check_output_folder(const fs::path& file, const char* flag) {
    if (file.empty()) return;
    const fs::path dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
    SINKLAB_CHECK(fs::is_directory(dir), "stream", "{} {}: the folder {} does not exist", flag, file.string(),
                  dir.string());
}

}  // namespace

bool is_stream_json(const nlohmann::json& j) {
    return j.is_object() && j.contains("command") && j["command"] == "stream" && j.contains("policies") &&
           j["policies"].is_array();
}

namespace {

// A stream's JSON is a file `report` reads back: a key missing or of another type is the file's
// fault, said in one line.
template <typename Read>
auto read_stream_json(Read&& read) {
    try {
        return read();
    } catch (const nlohmann::json::exception& e) {
        fail("report", "not the JSON of `sinklab stream` as it writes it: {}", e.what());
    }
}

}  // namespace

Table stream_table(const nlohmann::json& j) {
    return read_stream_json([&] {
        Table t({"policy", "tokens", "ppl", "ppl_last_sample", "tokens_per_s", "cache_bytes", "peak_rss_mib", "note"});
        for (const nlohmann::json& p : j.at("policies")) {
            const nlohmann::json& s = p.at("summary");
            const nlohmann::json& samples = p.at("samples");
            t.add_row({p.at("policy").get<std::string>(), fmt::format("{}", s.at("tokens").get<int64_t>()),
                       fmt::format("{:.4f}", s.at("ppl").get<double>()),
                       samples.empty() ? "" : fmt::format("{:.4f}", samples.back().at("ppl_recent").get<double>()),
                       fmt::format("{:.0f}", s.at("tokens_per_s").get<double>()),
                       fmt::format("{}", s.at("cache_bytes").get<size_t>()),
                       mib(s.at("peak_rss_bytes").get<size_t>()),
                       s.at("stopped").is_string() ? s.at("stopped").get<std::string>() : ""});
        }
        return t;
    });
}

StreamFigure stream_figure(const nlohmann::json& j, int max_points) {
    SINKLAB_CHECK(is_stream_json(j), "report",
                  "not the JSON of `sinklab stream` (no \"command\": \"stream\" with \"policies\")");
    return read_stream_json([&] {
        StreamFigure f;
        const nlohmann::json& model = j.at("model");
        f.title = fmt::format("Streaming {} ({} positions, attention {})", model.value("path", "?"),
                              model.value("positions", "?"), model.value("attention", "?"));
        size_t longest = 0;
        for (const nlohmann::json& p : j.at("policies")) longest = std::max(longest, p.at("nll").size());
        f.bin = static_cast<int>(std::max<size_t>(1, (longest + max_points - 1) / std::max(max_points, 1)));
        std::string best, worst;
        double best_ppl = INFINITY, worst_ppl = -INFINITY;
        for (const nlohmann::json& p : j.at("policies")) {
            Series curve{.name = p.at("policy").get<std::string>()};
            const std::vector<double> nll = p.at("nll").get<std::vector<double>>();
            for (size_t start = 0; start < nll.size(); start += f.bin) {
                const size_t end = std::min(nll.size(), start + f.bin);
                double sum = 0.0;
                for (size_t t = start; t < end; ++t) sum += nll[t];
                curve.x.push_back(static_cast<double>(end));
                curve.y.push_back(sum / static_cast<double>(end - start));
            }
            f.curves.push_back(std::move(curve));
            const double ppl = p.at("summary").at("ppl").get<double>();
            if (ppl < best_ppl) best_ppl = ppl, best = p.at("policy").get<std::string>();
            if (ppl > worst_ppl) worst_ppl = ppl, worst = p.at("policy").get<std::string>();
        }
        f.table = stream_table(j);
        const nlohmann::json& data = j.at("data");
        f.caption = fmt::format("Mean NLL of each bin of {} tokens of {} ({} predictions), one curve per KV-cache policy "
                                "on the same tokens. Lowest perplexity: {} ({:.3f}); highest: {} ({:.3f}). Training text in "
                                "the stream: {}.",
                                f.bin, data.value("source", "?"), data.value("predictions", 0), best, best_ppl, worst,
                                worst_ppl, data.value("overlap", "unknown"));
        return f;
    });
}

StreamRunResult run_stream(const StreamRunOptions& o) {
    SINKLAB_CHECK(!o.policies.empty(), "stream", "--policy: give at least one policy; {}", cache_policy_help());
    SINKLAB_CHECK(o.tokens >= 1, "stream", "--tokens {}: need at least 1 prediction", o.tokens);
    SINKLAB_CHECK(o.every >= 0, "stream", "--every {}: must be positive", o.every);
    check_output_folder(o.json, "--json");
    check_output_folder(o.csv, "--csv");
    auto say = [&](const std::string& line) {
        if (o.say) o.say(line);
    };

    ProbeModel pm = load_probe_model(o.model);
    SINKLAB_CHECK(pm.model->config().causal, "stream",
                  "{} is an encoder ({}, bidirectional attention): it predicts masked tokens, not the next one, so it "
                  "has no stream to continue; use probe, analyze or report",
                  o.model.string(), pm.info.architecture);
    if (!o.tokenizer.empty()) pm.tokenizer = load_tokenizer(o.tokenizer);
    SINKLAB_CHECK(pm.tokenizer != nullptr, "stream", "no tokenizer found for {}: pass --tokenizer PATH",
                  o.model.string());
    Transformer& model = *pm.model;
    // every policy must fit the model before any token is read
    for (const CachePolicy& policy : o.policies) StreamingCache check(model, policy, o.streaming);

    StreamRunResult result;
    result.text = load_stream_text(o, pm, *pm.tokenizer);
    const int every = o.every > 0 ? o.every : static_cast<int>(std::max<int64_t>(1, o.tokens / 20));
    say(fmt::format("model: {} ({}, {} parameters, {} positions, attention {})", pm.info.path.string(),
                    pm.info.architecture, model.num_params(), to_string(model.config().positions),
                    model.config().attention.name()));
    say(fmt::format("text: {}; {} predictions{}", result.text.source, o.tokens, result.text.bos ? ", BOS first" : ""));
    say(fmt::format("training text in the stream: {}", result.text.overlap));

    result.json = run_json(o, pm, result.text, every);
    LongStreamOptions stream_options;
    stream_options.every = every;
    stream_options.streaming = o.streaming;
    stream_options.progress = o.progress;
    stream_options.on_sample = [&](const PolicyStream& run, const StreamSample& s) {
        say(fmt::format("{:<16} {:>9} tokens  ppl {:9.4f}  last {:9.4f}  {:8.0f} tok/s  RSS {:>8} MiB",
                        policy_name(run.policy), s.tokens, s.ppl, s.ppl_recent, s.tokens_per_s, mib(s.rss_bytes)));
    };
    for (const CachePolicy& policy : o.policies) {
        result.runs.push_back(run_policy_stream(model, policy, result.text.tokens, stream_options));
        const PolicyStream& run = result.runs.back();
        say(fmt::format("{}: ppl {:.4f} over {} predictions, {:.0f} tokens/s, KV cache {} bytes{}", policy_name(run.policy),
                        run.ppl(), run.nll.size(), run.tokens_per_s(), run.cache_bytes,
                        run.stopped.empty() ? "" : "; stopped: " + run.stopped));
        result.json["policies"].push_back(to_json(run));
        result.json["complete"] = result.runs.size() == o.policies.size();
        if (!o.json.empty()) write_file_atomic(o.json, result.json.dump() + "\n");
        if (!o.csv.empty()) write_csv(o.csv, samples_table(result.runs));
    }
    result.table = stream_table(result.json);
    return result;
}

}  // namespace sinklab
