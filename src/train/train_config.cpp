#include "train/train_config.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

#include <toml++/toml.h>

#include "core/error.h"
#include "core/files.h"
#include "core/json_numbers.h"
#include "core/memory.h"
#include "core/threads.h"
#include "model/checkpoint.h"
#include "model/memory_estimate.h"
#include "train/data.h"

namespace sinklab {

namespace fs = std::filesystem;

namespace {

long parse_long(const std::string& key, const std::string& v) {
    long out = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || ptr != v.data() + v.size())
        fail("config", "{}: expected an integer, got '{}'", key, v);
    return out;
}

int parse_int(const std::string& key, const std::string& v) {
    long x = parse_long(key, v);
    SINKLAB_CHECK(x >= -2147483647L && x <= 2147483647L, "config", "{}: {} is out of range", key, v);
    return static_cast<int>(x);
}

float parse_float(const std::string& key, const std::string& v) {
    char* end = nullptr;
    errno = 0;
    double x = std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size() || errno == ERANGE)
        fail("config", "{}: expected a number, got '{}'", key, v);
    // A double beyond float's range does not convert (undefined behaviour); nan and inf are no setting.
    SINKLAB_CHECK(std::isfinite(x) && std::abs(x) <= std::numeric_limits<float>::max(), "config",
                  "{}: {} is not a finite number in float's range", key, v);
    return static_cast<float>(x);
}

uint64_t parse_seed(const std::string& key, const std::string& v) {
    const long x = parse_long(key, v);
    SINKLAB_CHECK(x >= 0, "config", "{}: {} is negative; a seed is an integer from 0 to {}", key, v,
                  std::numeric_limits<long>::max());
    return static_cast<uint64_t>(x);
}

bool parse_bool(const std::string& key, const std::string& v) {
    if (v == "true" || v == "1" || v == "on" || v == "yes") return true;
    if (v == "false" || v == "0" || v == "off" || v == "no") return false;
    fail("config", "{}: expected true or false, got '{}'", key, v);
}

std::vector<long> parse_steps(const std::string& key, const std::string& v) {
    std::vector<long> steps;
    std::stringstream ss(v);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty()) continue;
        if (item == "pow2") {  // 0, 1, 2, 4, 8, ...: the early-training checkpoints of the RMT study
            steps.push_back(0);
            for (long s = 1; s <= (1L << 40); s *= 2) steps.push_back(s);
            continue;
        }
        steps.push_back(parse_long(key, item));
    }
    return steps;
}

std::string normalise_key(std::string key) {
    for (char& ch : key)
        if (ch == '_') ch = '-';
    return key;
}

std::vector<Setting> make_settings() {
    using C = TrainConfig;
    std::vector<Setting> s;
    auto add = [&](std::string key, std::string help, std::function<void(C&, const std::string&)> fn,
                   bool model_key = false) { s.push_back({std::move(key), std::move(help), std::move(fn), model_key}); };
    add("preset", "tiny | small: a complete starting configuration", [](C& c, const std::string& v) {
        c = preset_config(v);
    });
    add("style", "gpt2 (LayerNorm, learned positions, GELU, biases) | llama (RMSNorm, RoPE, SwiGLU, no biases)",
        [](C& c, const std::string& v) {
            ModelConfig m = ModelConfig::for_style(v);
            m.vocab_size = c.model.vocab_size;
            m.d_model = c.model.d_model;
            m.n_layers = c.model.n_layers;
            m.n_heads = c.model.n_heads;
            m.n_kv_heads = c.model.n_kv_heads;
            m.max_seq_len = c.model.max_seq_len;
            c.model = m;
        },
        true);
    add("d-model", "model width C", [](C& c, const std::string& v) { c.model.d_model = parse_int("d-model", v); }, true);
    add("layers", "number of transformer blocks", [](C& c, const std::string& v) { c.model.n_layers = parse_int("layers", v); }, true);
    add("heads", "attention heads (the head size is d-model / heads)", [](C& c, const std::string& v) {
        int h = parse_int("heads", v);
        if (c.model.n_kv_heads == c.model.n_heads) c.model.n_kv_heads = h;  // stay multi-head unless GQA was asked
        c.model.n_heads = h;
    }, true);
    add("kv-heads", "key/value heads (grouped-query attention when fewer than heads)",
        [](C& c, const std::string& v) { c.model.n_kv_heads = parse_int("kv-heads", v); }, true);
    add("d-ff", "MLP hidden size (0: 4 d-model, or the Llama rule for swiglu)",
        [](C& c, const std::string& v) { c.model.d_ff = parse_int("d-ff", v); }, true);
    add("attention", "attention design: " + [] {
            std::string n;
            for (const auto& k : AttentionSpec::known_names()) n += (n.empty() ? "" : " | ") + k;
            return n;
        }(), [](C& c, const std::string& v) { c.model.attention = AttentionSpec::parse(v); }, true);
    add("pe", "positions: nope | learned | sinusoidal | rope | alibi | relative",
        [](C& c, const std::string& v) { c.model.positions = parse_positions(v); }, true);
    add("norm", "layernorm | rmsnorm", [](C& c, const std::string& v) { c.model.norm = parse_norm(v); }, true);
    add("norm-placement", "pre | post", [](C& c, const std::string& v) { c.model.norm_placement = parse_norm_placement(v); }, true);
    add("mlp", "gelu | relu | swiglu | geglu", [](C& c, const std::string& v) { c.model.mlp = parse_mlp(v); }, true);
    add("bias", "biases on linear layers (true | false)",
        [](C& c, const std::string& v) { c.model.linear_bias = parse_bool("bias", v); }, true);
    add("tied", "tie the output head to the token embedding (true | false)",
        [](C& c, const std::string& v) { c.model.tied_embeddings = parse_bool("tied", v); }, true);
    add("rope-theta", "RoPE base", [](C& c, const std::string& v) { c.model.rope_theta = parse_float("rope-theta", v); }, true);
    add("window", "sliding attention window (keys per query, itself included; 0 = full)",
        [](C& c, const std::string& v) { c.model.window = parse_int("window", v); }, true);
    add("window-pattern", "per-layer windows repeated over the layers, e.g. sliding:128,full (gpt-oss: even layers "
        "slide over 128 keys, odd layers see all)",
        [](C& c, const std::string& v) {
            c.window_pattern = parse_window_pattern(v);
            c.model.layer_windows = expand_window_pattern(c.window_pattern, c.model.n_layers);
        },
        true);
    add("prefix", "prefix LM: first P tokens visible to all queries; the loss skips the first P-1 predictions",
        [](C& c, const std::string& v) { c.model.prefix = parse_int("prefix", v); }, true);
    add("scale", "attention score scale (0 = 1/sqrt(head size))",
        [](C& c, const std::string& v) { c.model.attention.scale = parse_float("scale", v); }, true);
    add("init-std", "standard deviation of the initial weights",
        [](C& c, const std::string& v) { c.model.init_std = parse_float("init-std", v); }, true);
    add("seq-len", "training sequence length T", [](C& c, const std::string& v) { c.seq_len = parse_int("seq-len", v); });
    add("batch", "sequences per step B", [](C& c, const std::string& v) { c.batch = parse_int("batch", v); });
    add("steps", "optimizer steps (0 saves the initialised model)", [](C& c, const std::string& v) { c.steps = parse_long("steps", v); });
    add("max-minutes", "wall-clock budget in minutes (0 = none): stop after the step that crosses it, then the final "
        "evaluation and checkpoint; steps still sets the schedule",
        [](C& c, const std::string& v) { c.max_minutes = parse_float("max-minutes", v); });
    add("lr", "peak learning rate", [](C& c, const std::string& v) { c.lr = parse_float("lr", v); });
    add("min-lr", "learning rate at the end of the cosine decay", [](C& c, const std::string& v) { c.min_lr = parse_float("min-lr", v); });
    add("warmup", "linear warmup steps", [](C& c, const std::string& v) { c.warmup = parse_long("warmup", v); });
    add("wd", "AdamW weight decay (matrices only unless decay-all)", [](C& c, const std::string& v) { c.wd = parse_float("wd", v); });
    add("decay-all", "apply weight decay to norms, biases and embeddings too",
        [](C& c, const std::string& v) { c.decay_all = parse_bool("decay-all", v); });
    add("beta1", "AdamW beta1", [](C& c, const std::string& v) { c.beta1 = parse_float("beta1", v); });
    add("beta2", "AdamW beta2", [](C& c, const std::string& v) { c.beta2 = parse_float("beta2", v); });
    add("clip", "global gradient-norm clip (0 = off)", [](C& c, const std::string& v) { c.clip = parse_float("clip", v); });
    add("seed", "seed of initialisation and batch sampling", [](C& c, const std::string& v) {
        c.seed = parse_seed("seed", v);
    });
    add("data", "text file or folder of *.txt (default: the State of the Union corpus)",
        [](C& c, const std::string& v) { c.data = v; });
    add("val-fraction", "last fraction of the bytes held out for validation",
        [](C& c, const std::string& v) { c.val_fraction = parse_float("val-fraction", v); });
    add("eval-every", "steps between evaluations (0 = only at the end)",
        [](C& c, const std::string& v) { c.eval_every = parse_long("eval-every", v); });
    add("eval-windows", "validation windows of periodic evaluations (0 = all)",
        [](C& c, const std::string& v) { c.eval_windows = parse_int("eval-windows", v); });
    add("bos", "start every sequence with a fixed BOS token (id 256)",
        [](C& c, const std::string& v) { c.bos = parse_bool("bos", v); }, true);
    add("log-every", "steps between log lines", [](C& c, const std::string& v) { c.log_every = parse_long("log-every", v); });
    add("checkpoint-every", "steps between checkpoints (0 = at every evaluation)",
        [](C& c, const std::string& v) { c.checkpoint_every = parse_long("checkpoint-every", v); });
    add("checkpoint-minutes", "also checkpoint once this many minutes have passed since the last checkpoint (0 = by steps only)",
        [](C& c, const std::string& v) { c.checkpoint_minutes = parse_float("checkpoint-minutes", v); });
    add("spike-factor", "stop as diverged when a step's loss or gradient norm exceeds this many times its median over "
        "the last 50 steps (0 = only NaN or Inf stop a run)",
        [](C& c, const std::string& v) { c.spike_factor = parse_float("spike-factor", v); });
    add("save-at", "comma-separated steps whose model is kept in checkpoints/step_N ('pow2' = 0,1,2,4,8,...)",
        [](C& c, const std::string& v) { c.save_at = parse_steps("save-at", v); });
    add("sink-eps", "threshold eps of Sink_1 during training", [](C& c, const std::string& v) { c.sink_eps = parse_float("sink-eps", v); });
    return s;
}

}  // namespace

const std::vector<Setting>& train_settings() {
    static const std::vector<Setting> settings = make_settings();
    return settings;
}

const Setting* find_setting(const std::string& key) {
    const std::string k = normalise_key(key);
    for (const auto& s : train_settings())
        if (s.key == k) return &s;
    return nullptr;
}

TrainConfig preset_config(const std::string& name) {
    TrainConfig c;
    c.preset = name;
    c.model = ModelConfig::for_style("gpt2");
    c.model.vocab_size = 256;
    if (name == "tiny") {
        c.model.d_model = 128;
        c.model.n_layers = 4;
        c.model.n_heads = c.model.n_kv_heads = 4;
        c.seq_len = 256;
        c.batch = 16;
        c.lr = 1e-3f;
        c.min_lr = 1e-4f;
    } else if (name == "small") {
        c.model.d_model = 384;
        c.model.n_layers = 6;
        c.model.n_heads = c.model.n_kv_heads = 6;
        c.seq_len = 256;
        c.batch = 8;
        c.lr = 6e-4f;
        c.min_lr = 6e-5f;
    } else {
        fail("config", "unknown preset '{}' (known: tiny, small)", name);
    }
    c.model.max_seq_len = c.seq_len;
    return c;
}

std::vector<int> parse_window_pattern(const std::string& text) {
    std::vector<int> pattern;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item == "full") {
            pattern.push_back(0);
            continue;
        }
        long window = 0;
        const bool sliding = item.rfind("sliding:", 0) == 0;
        const std::string number = sliding ? item.substr(8) : "";
        auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), window);
        if (!sliding || ec != std::errc() || ptr != number.data() + number.size() || window < 1 || window > 1 << 30)
            fail("config",
                 "window-pattern '{}': '{}' is not a layer type; expected a comma-separated list of sliding:W (W >= 1 "
                 "keys per query, itself included) and full, e.g. sliding:128,full",
                 text, item);
        pattern.push_back(static_cast<int>(window));
    }
    SINKLAB_CHECK(!pattern.empty() && text.back() != ',', "config",
                  "window-pattern '{}': expected a comma-separated list of sliding:W and full, e.g. sliding:128,full",
                  text);
    return pattern;
}

std::string window_pattern_string(const std::vector<int>& pattern) {
    std::string text;
    for (int w : pattern) {
        if (!text.empty()) text += ',';
        text += w > 0 ? "sliding:" + std::to_string(w) : std::string("full");
    }
    return text;
}

std::vector<int> expand_window_pattern(const std::vector<int>& pattern, int n_layers) {
    std::vector<int> windows;
    for (int l = 0; l < n_layers && !pattern.empty(); ++l) windows.push_back(pattern[l % pattern.size()]);
    return windows;
}

void apply_settings(TrainConfig& config, const std::map<std::string, std::string>& values, const std::string& source) {
    std::map<std::string, std::string> normalised;
    for (const auto& [k, v] : values) {
        if (!find_setting(k)) fail("config", "{}: unknown key '{}' (see `sinklab train --help`)", source, k);
        normalised[normalise_key(k)] = v;
    }
    auto apply = [&](const std::string& key, const std::string& value) {
        try {
            find_setting(key)->apply(config, value);
        } catch (const Error& e) {
            throw Error("config", source + ": " + e.what());
        }
    };
    for (const char* first : {"preset", "style"})
        if (auto it = normalised.find(first); it != normalised.end()) apply(first, it->second);
    for (const auto& [k, v] : normalised)
        if (k != "preset" && k != "style") apply(k, v);
    // the layer count may have been set after the pattern
    if (!config.window_pattern.empty())
        config.model.layer_windows = expand_window_pattern(config.window_pattern, config.model.n_layers);
}

std::map<std::string, std::string> read_toml_settings(const fs::path& path) {
    const std::string text = read_text_file(path, "config");  // a regular file: not a device or FIFO
    toml::table table;
    try {
        table = toml::parse(text, path.string());
    } catch (const toml::parse_error& e) {
        fail("config", "{}:{}:{}: not valid TOML: {}", path.string(), e.source().begin.line, e.source().begin.column,
             e.description());
    }
    std::map<std::string, std::string> values;
    std::function<void(const toml::table&)> collect = [&](const toml::table& t) {
        for (const auto& [key, node] : t) {
            const std::string k(key.str());
            if (const toml::table* sub = node.as_table()) {
                if (k == "model" || k == "train") {
                    collect(*sub);
                    continue;
                }
                fail("config", "{}: unexpected table [{}] (keys go at the top level, or under [model] / [train])",
                     path.string(), k);
            }
            std::string value;
            if (auto s = node.value<std::string>(); s && node.is_string()) value = *s;
            else if (node.is_integer()) value = std::to_string(*node.value<int64_t>());
            else if (node.is_floating_point()) value = fmt::format("{}", *node.value<double>());
            else if (node.is_boolean()) value = *node.value<bool>() ? "true" : "false";
            else if (const toml::array* arr = node.as_array()) {
                for (const auto& item : *arr) {
                    SINKLAB_CHECK(item.is_integer(), "config", "{}: {} must be a list of integers", path.string(), k);
                    if (!value.empty()) value += ',';
                    value += std::to_string(*item.value<int64_t>());
                }
            } else fail("config", "{}: unsupported value type for '{}'", path.string(), k);
            values[k] = value;
        }
    };
    collect(table);
    return values;
}

double TrainConfig::memory_bytes(int threads, AttentionKernel kernel) const {
    const double batch_tokens = 2.0 * batch * seq_len * sizeof(int32_t);  // tokens and targets
    const int positions = seq_len + (model.attention.uses_sink_token() ? 1 : 0);  // what the blocks see
    const bool materialised = resolve_attention_kernel(kernel, positions) == AttentionKernel::materialised;
    return transformer_memory(model, batch, seq_len, true, materialised, threads).total() + batch_tokens;
}

void TrainConfig::validate() const {
    SINKLAB_CHECK(seq_len > 0, "config", "seq-len must be positive, got {}", seq_len);
    SINKLAB_CHECK(batch > 0, "config", "batch must be positive, got {}", batch);
    // Before the model's own limits, so that a size too large for the machine says what it needs.
    require_memory(memory_bytes(num_threads()), "train",
                   fmt::format("training {} (d-model {}, {} layers, seq-len {}, batch {})", preset, model.d_model,
                               model.n_layers, seq_len, batch),
                   "lower --batch, --seq-len or the model's size");
    model.validate();
    SINKLAB_CHECK(steps >= 0, "config", "steps must be >= 0, got {}", steps);
    SINKLAB_CHECK(max_minutes >= 0, "config", "max-minutes must be >= 0, got {}", max_minutes);
    SINKLAB_CHECK(lr >= 0 && min_lr >= 0, "config", "learning rates must be >= 0");
    SINKLAB_CHECK(warmup >= 0, "config", "warmup must be >= 0");
    SINKLAB_CHECK(wd >= 0, "config", "wd must be >= 0");
    SINKLAB_CHECK(clip >= 0, "config", "clip must be >= 0");
    SINKLAB_CHECK(val_fraction > 0 && val_fraction < 1, "config", "val-fraction must be in (0, 1), got {}", val_fraction);
    SINKLAB_CHECK(eval_every >= 0 && eval_windows >= 0, "config", "eval-every and eval-windows must be >= 0");
    SINKLAB_CHECK(log_every > 0, "config", "log-every must be positive");
    SINKLAB_CHECK(checkpoint_every >= 0, "config", "checkpoint-every must be >= 0, got {}", checkpoint_every);
    SINKLAB_CHECK(checkpoint_minutes >= 0, "config", "checkpoint-minutes must be >= 0, got {}", checkpoint_minutes);
    SINKLAB_CHECK(spike_factor == 0 || spike_factor > 1, "config",
                  "spike-factor must be above 1 (or 0 to detect only NaN and Inf), got {}", spike_factor);
    SINKLAB_CHECK(model.window <= seq_len, "config", "window ({}) is longer than seq-len ({})", model.window, seq_len);
    SINKLAB_CHECK(window_pattern.empty() || model.window == 0, "config",
                  "window ({}) and window-pattern ({}) both set the windows: give one", model.window,
                  window_pattern_string(window_pattern));
    for (int w : window_pattern)
        SINKLAB_CHECK(w <= seq_len, "config", "window-pattern {}: a window of {} is longer than seq-len ({})",
                      window_pattern_string(window_pattern), w, seq_len);
    SINKLAB_CHECK(model.prefix <= seq_len, "config", "prefix ({}) is longer than seq-len ({})", model.prefix, seq_len);
    SINKLAB_CHECK(seq_len <= model.max_seq_len, "config", "seq-len ({}) exceeds the model's max_seq_len ({})", seq_len,
                  model.max_seq_len);
}

nlohmann::json TrainConfig::to_json() const {
    nlohmann::json j = {{"preset", preset},       {"model", model.to_json()},
            {"seq_len", seq_len},     {"batch", batch},
            {"steps", steps},         {"lr", lr},
            {"min_lr", min_lr},       {"warmup", warmup},
            {"wd", wd},               {"decay_all", decay_all},
            {"beta1", beta1},         {"beta2", beta2},
            {"adam_eps", adam_eps},   {"clip", clip},
            {"seed", seed},           {"data", data},
            {"val_fraction", val_fraction}, {"eval_every", eval_every},
            {"eval_windows", eval_windows}, {"bos", bos},
            {"log_every", log_every}, {"checkpoint_every", checkpoint_every},
            {"save_at", save_at},     {"sink_windows", sink_windows},
            {"sink_seq_len", sink_seq_len}, {"sink_eps", sink_eps}};
    // Only when set, so that runs written before the option compare equal (sweeps check settings).
    if (max_minutes > 0) j["max_minutes"] = max_minutes;
    if (!window_pattern.empty()) j["window_pattern"] = window_pattern_string(window_pattern);
    const TrainConfig defaults;
    if (checkpoint_minutes != defaults.checkpoint_minutes) j["checkpoint_minutes"] = checkpoint_minutes;
    if (spike_factor != defaults.spike_factor) j["spike_factor"] = spike_factor;
    return j;
}

TrainConfig train_config_from_json(const nlohmann::json& j, const std::string& source) {
    TrainConfig c;
    try {
        c.preset = j.at("preset").get<std::string>();
        c.model = ModelConfig::from_json(j.at("model"), source);
        c.seq_len = json_int(j.at("seq_len"), "config", "seq_len");
        c.batch = json_int(j.at("batch"), "config", "batch");
        c.steps = json_integer(j.at("steps"), "config", "steps");
        c.max_minutes = j.value("max_minutes", 0.0);  // absent in runs written before the option
        if (j.contains("window_pattern")) c.window_pattern = parse_window_pattern(j["window_pattern"].get<std::string>());
        c.checkpoint_minutes = j.value("checkpoint_minutes", c.checkpoint_minutes);  // absent when the default
        c.spike_factor = j.value("spike_factor", c.spike_factor);
        c.lr = json_float(j.at("lr"), "config", "lr");
        c.min_lr = json_float(j.at("min_lr"), "config", "min_lr");
        c.warmup = json_integer(j.at("warmup"), "config", "warmup");
        c.wd = json_float(j.at("wd"), "config", "wd");
        c.decay_all = j.at("decay_all");
        c.beta1 = json_float(j.at("beta1"), "config", "beta1");
        c.beta2 = json_float(j.at("beta2"), "config", "beta2");
        c.adam_eps = json_float(j.at("adam_eps"), "config", "adam_eps");
        c.clip = json_float(j.at("clip"), "config", "clip");
        const nlohmann::json& seed = j.at("seed");
        SINKLAB_CHECK(seed.is_number_unsigned(), "config", "{}: seed must be an unsigned integer, got {}", source,
                      seed.dump());
        c.seed = seed.get<uint64_t>();
        c.data = j.at("data");
        c.val_fraction = json_float(j.at("val_fraction"), "config", "val_fraction");
        // A fraction outside (0, 1) would size the validation split past the text (validation_bytes)
        SINKLAB_CHECK(c.val_fraction > 0 && c.val_fraction < 1, "config", "{}: val_fraction must be in (0, 1), got {}",
                      source, c.val_fraction);
        c.eval_every = json_integer(j.at("eval_every"), "config", "eval_every");
        c.eval_windows = json_int(j.at("eval_windows"), "config", "eval_windows");
        c.bos = j.at("bos");
        c.log_every = json_integer(j.at("log_every"), "config", "log_every");
        c.checkpoint_every = json_integer(j.at("checkpoint_every"), "config", "checkpoint_every");
        c.save_at.clear();
        for (const auto& step : j.at("save_at")) c.save_at.push_back(json_integer(step, "config", "save_at entry"));
        c.sink_windows = json_int(j.at("sink_windows"), "config", "sink_windows");
        c.sink_seq_len = json_int(j.at("sink_seq_len"), "config", "sink_seq_len");
        c.sink_eps = json_float(j.at("sink_eps"), "config", "sink_eps");
    } catch (const nlohmann::json::exception& e) {
        fail("config", "{}: {}", source, e.what());
    }
    return c;
}

TrainConfig recorded_train_config(const std::filesystem::path& trainer_state, const std::string& module) {
    const nlohmann::json state = read_json_file(trainer_state, module);
    SINKLAB_CHECK(state.is_object() && state.contains("train_config"), module,
                  "{}: not a trainer state sinklab wrote (no train_config)", trainer_state.string());
    return train_config_from_json(state["train_config"], trainer_state.string());
}

}  // namespace sinklab
