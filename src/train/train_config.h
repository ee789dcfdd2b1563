#pragma once
// TrainConfig: everything a training run depends on. One table of settings serves the TOML file,
// the command-line flags and sweep axes, so a key means the same thing everywhere.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/attention_kernel.h"
#include "io/corpus.h"
#include "model/config.h"

namespace sinklab {

struct TrainConfig {
    std::string preset = "tiny";
    ModelConfig model;
    int seq_len = 256;
    int batch = 16;
    long steps = 1000;
    // Wall-clock budget of the run in minutes (0 = none): training stops after the step that
    // crosses it, then the final full evaluation and checkpoint follow as after the last step.
    // `steps` still sets the learning-rate schedule.
    double max_minutes = 0.0;
    float lr = 1e-3f;
    float min_lr = 1e-4f;
    long warmup = 50;
    float wd = 0.1f;
    bool decay_all = false;  // weight decay on norms, biases and embeddings too
    float beta1 = 0.9f, beta2 = 0.95f, adam_eps = 1e-8f;
    float clip = 1.0f;
    uint64_t seed = 1337;
    std::string data;  // empty: the default corpus
    float val_fraction = kDefaultValFraction;
    long eval_every = 100;
    int eval_windows = 64;  // validation windows of periodic evaluations; the final one uses all
    bool bos = false;
    long log_every = 1;
    long checkpoint_every = 0;  // 0: at every evaluation
    // Also a checkpoint once this many minutes have passed since the last one (0 = by steps only),
    // so that a kill loses minutes, not up to checkpoint_every steps.
    double checkpoint_minutes = 5.0;
    // Divergence (train/divergence.h): a loss or gradient norm above spike_factor times its recent
    // median stops the run (0 = only non-finite values do).
    double spike_factor = 10.0;
    std::vector<long> save_at;  // steps whose model is kept in checkpoints/step_N
    int sink_windows = 64;      // validation windows of length sink_seq_len for Sink_1
    int sink_seq_len = 64;
    float sink_eps = 0.3f;
    // --window-pattern (e.g. sliding:128,full): per-layer windows repeated over the layers (0 = full),
    // expanded into model.layer_windows; empty: every layer has model.window.
    std::vector<int> window_pattern;

    // Throws naming the key; also when the run cannot fit in the machine's memory.
    void validate() const;
    // What a training run holds at its peak: the model, its gradients and AdamW's moments, a step's
    // activations on `kernel` (the (T, T) weights of every layer only when it resolves to the
    // materialised kernel), and the batch (not the corpus).
    double memory_bytes(int threads, AttentionKernel kernel = AttentionKernel::automatic) const;
    nlohmann::json to_json() const;
};

struct Setting {
    std::string key;   // as in TOML and after "--" on the command line
    std::string help;
    std::function<void(TrainConfig&, const std::string&)> apply;
    bool model_key = false;  // changes the model architecture
};

const std::vector<Setting>& train_settings();
const Setting* find_setting(const std::string& key);  // accepts '_' for '-'

// Presets: tiny (default) and small, byte vocabulary. Throws for an unknown name.
TrainConfig preset_config(const std::string& name);

// "sliding:W,full,...": W keys per query (itself included) or every earlier key, per layer in turn.
std::vector<int> parse_window_pattern(const std::string& text);
std::string window_pattern_string(const std::vector<int>& pattern);
// The pattern repeated over n layers (layer l gets pattern[l % size]).
std::vector<int> expand_window_pattern(const std::vector<int>& pattern, int n_layers);

// Applies settings in a fixed order (preset, then style, then the rest) so that a preset never
// overrides an explicit key. `source` names the file or "command line" for errors.
void apply_settings(TrainConfig& config, const std::map<std::string, std::string>& values, const std::string& source);

// Reads key = value pairs from a TOML file (top-level keys; a [model] or [train] table is flattened).
std::map<std::string, std::string> read_toml_settings(const std::filesystem::path& path);

TrainConfig train_config_from_json(const nlohmann::json& j, const std::string& source);
// The configuration a run recorded in its trainer_state.json ("train_config"), for readers of a
// finished run (`stream` asks what text the model trained on). Throws naming the file.
TrainConfig recorded_train_config(const std::filesystem::path& trainer_state, const std::string& module);

}  // namespace sinklab
