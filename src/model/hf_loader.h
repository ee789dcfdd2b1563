#pragma once
// One door for every model sinklab runs: load_model(path) takes
// - a sinklab model folder or training run (config.json with "model_type": "sinklab"),
// - a Hugging Face folder (config.json + model.safetensors or a sharded
//   model.safetensors.index.json) of a supported architecture (model/architectures/),
// - a llama2.c checkpoint file (*.bin),
// and returns a Transformer holding float32 weights: F16 and BF16 tensors are converted on load,
// so memory is 4 bytes per parameter whatever the file stores (the files themselves are
// memory-mapped and only read once).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/transformer.h"

namespace sinklab {

struct ModelInfo {
    std::string source;        // "sinklab", "huggingface" or "llama2c"
    std::string architecture;  // config.json's model_type ("llama", ...), "sinklab" or "llama2c"
    std::string dtype;         // the weights' storage in the file: "F32", "BF16", "F16", "BF16+F32", ...
    std::filesystem::path path;       // the folder or file the weights came from
    std::filesystem::path tokenizer;  // a tokenizer beside the weights; empty when none was found
    std::optional<int32_t> bos_id;    // from generation_config.json, else config.json
    std::vector<int32_t> eos_ids;     // idem (Llama 3 lists several)
};

// Throws sinklab::Error naming the file (and the key or tensor) for anything it cannot load.
std::unique_ptr<Transformer> load_model(const std::filesystem::path& path, ModelInfo* info = nullptr);

// The tokenizer that ships with a model, without loading the weights: a model folder holding
// tokenizer files (tokenizer.json, vocab.json + merges.txt, tokenizer.model, tokenizer.bin), or
// beside a llama2.c file its tokenizer.bin (run.c's default) or tok<vocab>.bin (as llama2.c names
// custom vocabularies: tok512.bin for stories260K). Empty when there is none (sinklab's own models
// are byte-level).
std::filesystem::path find_tokenizer(const std::filesystem::path& model_path);

// The model_type values load_model reads from Hugging Face folders.
std::vector<std::string> supported_architectures();

// Saves a sinklab model as a Hugging Face folder (config.json + model.safetensors, float32) of the
// architecture its design corresponds to: gpt2 style -> GPT2LMHeadModel, llama style -> LlamaForCausalLM.
// Throws, saying why, when the design has no Hugging Face equivalent. Returns the model_type written.
std::string export_hf_folder(const Transformer& model, const std::filesystem::path& dir);

}  // namespace sinklab
