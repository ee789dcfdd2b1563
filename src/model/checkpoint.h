#pragma once
// Model folders: `config.json` + `model.safetensors`, Hugging-Face style. sinklab's own models have
// `"model_type": "sinklab"` with the ModelConfig under "sinklab". A training run folder stands for
// its latest checkpoint (RUN/checkpoint).
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "model/transformer.h"

namespace sinklab {

// Writes config.json and model.safetensors into `dir` (created if needed), each file atomically.
// `metadata` goes into the safetensors header (string values).
void save_model_folder(const Transformer& model, const std::filesystem::path& dir,
                       const std::map<std::string, std::string>& metadata = {});

// Loads a sinklab model folder (or a run folder's latest checkpoint).
std::unique_ptr<Transformer> load_model_folder(const std::filesystem::path& dir);

// A run folder (with checkpoint/) resolves to its checkpoint; a folder whose checkpoint was being
// replaced when the process died resolves to the previous one (checkpoint.old).
std::filesystem::path resolve_model_dir(const std::filesystem::path& path);

// Throws when `config` has more parameters than the `values_held` of the weights file(s) named by
// `weights_origin`: a hostile config would otherwise make the model's allocation exhaust the machine
// before any tensor is compared.
void check_config_fits_weights(const ModelConfig& config, uint64_t values_held, const std::string& config_file,
                               const std::string& weights_origin);

// Reads and parses config.json of a model folder, with errors naming the file.
nlohmann::json read_json_file(const std::filesystem::path& path, const std::string& module);

}  // namespace sinklab
