#pragma once
// The model a probe runs, with what the inputs need from its folder: the tokenizer and the BOS token.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>

#include "model/hf_loader.h"
#include "tokenizer/tokenizer.h"

namespace sinklab {

struct ProbeModel {
    std::unique_ptr<Transformer> model;
    ModelInfo info;
    std::unique_ptr<Tokenizer> tokenizer;  // null when the folder has none (natural input then fails)
    std::optional<int32_t> bos_id;         // the tokenizer's, else the model config's
    bool adds_bos = false;                 // the tokenizer puts BOS first by default
};

// Any model load_model reads: sinklab folders and runs (byte tokenizer, BOS 256 for vocab 257),
// Hugging Face folders (their tokenizer files when present), llama2.c checkpoints.
ProbeModel load_probe_model(const std::filesystem::path& path);

}  // namespace sinklab
