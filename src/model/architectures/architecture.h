#pragma once
// One Hugging Face architecture per file, architectures/<model_type>.cpp (llama.cpp's
// src/models/<arch>.cpp): each maps its config.json onto ModelConfig and its tensor names onto
// sinklab's parameters. The blocks they wire are the engine's shared ones, configured by data;
// nothing outside these files tests an architecture's name. model/hf_loader.cpp holds the registry.
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "model/architectures/hf_config.h"
#include "model/architectures/weight_loader.h"
#include "model/config.h"
#include "model/transformer.h"

namespace sinklab {

// A model laid out as Hugging Face saves it: config.json and the tensors of model.safetensors.
struct HfFolder {
    nlohmann::json config;
    std::map<std::string, Tensor> tensors;
};

struct Architecture {
    const char* model_type;  // config.json's model_type
    // config.json -> ModelConfig; throws naming the key for values sinklab cannot represent.
    ModelConfig (*read_config)(const HfConfig& config);
    // Fills every parameter of the loader's model from the checkpoint's tensors.
    void (*load_weights)(WeightLoader& loader);
    // For `sinklab export`: lays a sinklab model out as this architecture and returns "", or returns
    // why its design has no equivalent here. Null for architectures sinklab does not export to.
    std::string (*export_model)(const Transformer& model, HfFolder& out) = nullptr;
};

const Architecture& gpt2_architecture();
const Architecture& gpt_neox_architecture();
const Architecture& llama_architecture();
const Architecture& mistral_architecture();
const Architecture& qwen2_architecture();
const Architecture& qwen3_architecture();
const Architecture& gemma_architecture();
const Architecture& gemma2_architecture();
const Architecture& phi3_architecture();
const Architecture& olmo_architecture();
const Architecture& olmo2_architecture();
const Architecture& gpt_oss_architecture();
const Architecture& bert_architecture();
const Architecture& roberta_architecture();
const Architecture& xlm_roberta_architecture();
const Architecture& distilbert_architecture();

// Shared by the exporters: "" when none of the features no exported architecture has is used,
// else the first one found, in words.
std::string unexportable_features(const ModelConfig& c);
// A float32 setting as the shortest decimal that reads back as it (1e-05, not 9.99999974737875e-06),
// for config.json.
double config_number(float value);
// A copy of one of the model's parameters.
Tensor parameter_tensor(const Transformer& model, const std::string& name);

}  // namespace sinklab
