#include "model/hf_loader.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "core/error.h"
#include "core/files.h"
#include "io/llama2c.h"
#include "io/safetensors.h"
#include "model/architectures/architecture.h"
#include "model/checkpoint.h"

namespace sinklab {

namespace fs = std::filesystem;

namespace {

const std::vector<const Architecture*>& registry() {
    static const std::vector<const Architecture*> architectures = {
        &gpt2_architecture(),   &gpt_neox_architecture(), &llama_architecture(), &mistral_architecture(),
        &qwen2_architecture(),  &qwen3_architecture(),    &gemma_architecture(), &gemma2_architecture(),
        &phi3_architecture(),   &olmo_architecture(),     &olmo2_architecture(), &gpt_oss_architecture(),
        &bert_architecture(),   &roberta_architecture(),  &xlm_roberta_architecture(), &distilbert_architecture()};
    return architectures;
}

std::string supported_list() {
    std::string list;
    for (const auto& name : supported_architectures()) list += (list.empty() ? "" : ", ") + name;
    return list;
}

const Architecture& architecture_of(const HfConfig& hf) {
    const std::string type = hf.model_type();
    for (const Architecture* a : registry())
        if (type == a->model_type) return *a;
    fail("model", "{}: model_type '{}' is not supported (supported: {}; and sinklab's own folders)",
         hf.file().string(), type, supported_list());
}

void check_size_against(const ModelConfig& config, const CheckpointTensors& tensors, const std::string& config_file) {
    uint64_t held = 0;
    for (const auto& name : tensors.names()) held += static_cast<uint64_t>(shape_numel(tensors.shape(name)));
    check_config_fits_weights(config, held, config_file, tensors.origin());
}

// MXFP4 tensors come in pairs, NAME_blocks and NAME_scales (gpt-oss, transformers' mxfp4
// integration): a missing half is named here, before the size check would only find values short.
void check_mxfp4_pairs(const CheckpointTensors& tensors) {
    for (const auto& name : tensors.names())
        for (const auto& [have, need, half] : {std::tuple{"_blocks", "_scales", "scales"},
                                              std::tuple{"_scales", "_blocks", "blocks"}}) {
            const std::string_view suffix(have);
            if (!name.ends_with(suffix)) continue;
            const std::string partner = name.substr(0, name.size() - suffix.size()) + need;
            SINKLAB_CHECK(tensors.contains(partner), "model",
                          "{}: missing tensor '{}', the {} of the MXFP4 tensor '{}' (every MXFP4 tensor needs both)",
                          tensors.file_of(name), partner, half, name);
        }
}

std::unique_ptr<Transformer> build(const ModelConfig& config, const CheckpointTensors& tensors,
                                   const std::string& config_file, void (*load_weights)(WeightLoader&),
                                   const std::string& dtype_note, ModelInfo* info) {
    if (!Transformer::quantized_table(config).empty()) check_mxfp4_pairs(tensors);
    check_size_against(config, tensors, config_file);
    auto model = std::make_unique<Transformer>(config);
    WeightLoader loader(tensors, *model, dtype_note);
    load_weights(loader);
    loader.finish();
    if (info) info->dtype = loader.storage_dtypes();
    return model;
}

// BOS/EOS: generation_config.json (what generate() uses) over config.json.
void read_special_ids(const fs::path& dir, const HfConfig& config, ModelInfo& info) {
    std::vector<int32_t> bos = config.token_ids("bos_token_id");
    info.eos_ids = config.token_ids("eos_token_id");
    const fs::path generation = dir / "generation_config.json";
    if (fs::exists(generation)) {
        const HfConfig gen(generation);
        if (gen.has("bos_token_id")) bos = gen.token_ids("bos_token_id");
        if (gen.has("eos_token_id")) info.eos_ids = gen.token_ids("eos_token_id");
    }
    if (!bos.empty()) info.bos_id = bos.front();
}

std::unique_ptr<Transformer> load_hf_folder(const fs::path& dir, ModelInfo* info) {
    const HfConfig hf(dir / "config.json");
    const Architecture& arch = architecture_of(hf);
    ModelConfig config = arch.read_config(hf);
    try {
        config.validate();
    } catch (const Error& e) {
        throw Error("config", (dir / "config.json").string() + ": " + e.what());
    }
    const auto tensors = open_safetensors_checkpoint(dir);
    const std::string dtype_note = "config.json torch_dtype: " + hf.string("torch_dtype", "unset");
    auto model = build(config, *tensors, hf.file().string(), arch.load_weights, dtype_note, info);
    if (info) {
        info->source = "huggingface";
        info->architecture = arch.model_type;
        info->path = dir;
        info->tokenizer = find_tokenizer(dir);
        read_special_ids(dir, hf, *info);
    }
    return model;
}

std::unique_ptr<Transformer> load_llama2c_file(const fs::path& file, ModelInfo* info) {
    Llama2cCheckpoint checkpoint = load_llama2c(file);
    const Llama2cConfig& l2c = checkpoint.config;
    // llama2.c's run.c: RMSNorm eps 1e-5, RoPE base 10000, SwiGLU (w1 gate, w3 up).
    ModelConfig config = ModelConfig::for_style("llama");
    config.vocab_size = static_cast<int>(l2c.vocab_size);
    config.d_model = static_cast<int>(l2c.dim);
    config.n_layers = static_cast<int>(l2c.n_layers);
    config.n_heads = static_cast<int>(l2c.n_heads);
    config.n_kv_heads = static_cast<int>(l2c.n_kv_heads);
    config.d_ff = static_cast<int>(l2c.hidden_dim);
    config.max_seq_len = static_cast<int>(l2c.seq_len);
    config.norm_eps = 1e-5f;
    config.rope_theta = 10000.0;
    config.tied_embeddings = l2c.shared_classifier;
    if (l2c.shared_classifier) checkpoint.tensors.erase("lm_head.weight");
    const auto tensors = in_memory_checkpoint(std::move(checkpoint.tensors), file.string());
    auto model = build(config, *tensors, file.string(), llama_architecture().load_weights, "llama2.c stores float32",
                       info);
    if (info) {
        info->source = "llama2c";
        info->architecture = "llama2c";
        info->path = file;
        info->tokenizer = find_tokenizer(file);
        // llama2.c's SentencePiece vocabularies: <unk> 0, <s> 1, </s> 2. run.c stops generating at
        // BOS, which separates the training stories; </s> ends a sequence as well.
        info->bos_id = 1;
        info->eos_ids = {2, 1};
    }
    return model;
}

}  // namespace

fs::path find_tokenizer(const fs::path& model_path) {
    std::error_code ec;
    if (fs::is_regular_file(model_path, ec)) {
        const fs::path dir = model_path.parent_path();
        if (fs::is_regular_file(dir / "tokenizer.bin")) return dir / "tokenizer.bin";
        // the vocabulary size is the header's sixth int32 (negative when the classifier is unshared)
        std::ifstream in(model_path, std::ios::binary);
        int32_t header[7] = {};
        if (!in.read(reinterpret_cast<char*>(header), sizeof header)) return {};
        const fs::path sized = dir / fmt::format("tok{}.bin", std::abs(static_cast<int64_t>(header[5])));
        return fs::is_regular_file(sized) ? sized : fs::path();
    }
    const fs::path dir = resolve_model_dir(model_path);
    for (const char* name :
         {"tokenizer.json", "vocab.json", "tokenizer.model", "tokenizer.bin", "vocab.txt", "sentencepiece.bpe.model"})
        if (fs::is_regular_file(dir / name)) return dir;
    return {};
}

std::vector<std::string> supported_architectures() {
    std::vector<std::string> names;
    for (const Architecture* a : registry()) names.push_back(a->model_type);
    return names;
}

std::unique_ptr<Transformer> load_model(const fs::path& path, ModelInfo* info) {
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) {
        SINKLAB_CHECK(path.extension() == ".bin", "model",
                      "{}: a model file must be a llama2.c checkpoint (.bin); other models are folders with a "
                      "config.json", path.string());
        return load_llama2c_file(path, info);
    }
    const fs::path dir = resolve_model_dir(path);
    const nlohmann::json config = read_json_file(dir / "config.json", "config");
    if (config.is_object() && config.value("model_type", nlohmann::json()) == "sinklab") {
        auto model = load_model_folder(dir);
        if (info) {
            *info = ModelInfo{};
            info->source = info->architecture = "sinklab";
            info->dtype = "F32";
            info->path = dir;
            // sinklab's byte-level models trained with --bos have vocab 257 and BOS id 256
            if (model->config().vocab_size == 257) info->bos_id = 256;
            info->tokenizer = find_tokenizer(dir);
        }
        return model;
    }
    return load_hf_folder(dir, info);
}

std::string export_hf_folder(const Transformer& model, const fs::path& dir) {
    std::string reasons;
    for (const Architecture* a : registry()) {
        if (!a->export_model) continue;
        HfFolder folder;
        const std::string why_not = a->export_model(model, folder);
        if (!why_not.empty()) {
            reasons += fmt::format("\n  {}: {}", a->model_type, why_not);
            continue;
        }
        fs::path tmp = dir;
        tmp += ".tmp." + std::to_string(::getpid());
        fs::remove_all(tmp);
        fs::create_directories(tmp);
        write_file_atomic(tmp / "config.json", folder.config.dump(2) + "\n");
        SafetensorsWriter writer;
        for (const auto& [name, tensor] : folder.tensors) writer.add(name, tensor);
        writer.set_metadata("format", "pt");  // transformers refuses safetensors files without it
        writer.write(tmp / "model.safetensors");
        replace_directory(tmp, dir);
        return a->model_type;
    }
    fail("model", "this model's design has no Hugging Face equivalent sinklab exports to:{}", reasons);
}

}  // namespace sinklab
