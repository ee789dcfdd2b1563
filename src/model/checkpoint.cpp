#include "model/checkpoint.h"

#include <cstring>

#include "core/error.h"
#include "core/files.h"
#include "io/safetensors.h"
#include "ops/mxfp4.h"

namespace sinklab {

namespace fs = std::filesystem;

nlohmann::json read_json_file(const fs::path& path, const std::string& module) {
    const std::string text = read_text_file(path, module);
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        fail(module, "{}: not valid JSON: {}", path.string(), e.what());
    }
}

void check_config_fits_weights(const ModelConfig& config, uint64_t values_held, const std::string& config_file,
                               const std::string& weights_origin) {
    uint64_t needed = 0;
    for (const auto& p : Transformer::param_table(config)) needed += p.numel;
    // an MXFP4 matrix is held as one byte per two values and one scale byte per 32 (U8 elements)
    for (const auto& q : Transformer::quantized_table(config)) {
        const auto values = static_cast<uint64_t>(shape_numel({q.count, q.rows, q.cols}));
        needed += values / 2 + values / kMxfp4BlockValues;
    }
    SINKLAB_CHECK(needed <= values_held, "model",
                  "{} describes a model of {} parameters, but {} holds only {} values: the config does not match "
                  "the weights",
                  config_file, needed, weights_origin, values_held);
}

fs::path resolve_model_dir(const fs::path& path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) fail("model", "{}: no such file or folder", path.string());
    if (fs::exists(path / "config.json", ec)) return path;
    for (const char* candidate : {"checkpoint", "checkpoint.old"}) {
        if (fs::exists(path / candidate / "config.json", ec)) return path / candidate;
    }
    fail("model", "{}: not a model folder (no config.json) and not a training run (no checkpoint/)", path.string());
}

void save_model_folder(const Transformer& model, const fs::path& dir,
                       const std::map<std::string, std::string>& metadata) {
    SINKLAB_CHECK(model.quantized_params().empty(), "model",
                  "{}: sinklab model folders hold float32 parameters only; this model's MXFP4 experts would be lost",
                  dir.string());
    fs::create_directories(dir);
    nlohmann::json config = {{"model_type", "sinklab"},
                             {"architectures", {"SinklabTransformer"}},
                             {"sinklab", model.config().to_json()}};
    write_file_atomic(dir / "config.json", config.dump(2) + "\n");
    SafetensorsWriter writer;
    for (const auto& p : model.params()) writer.add(p.name, model.param_data() + p.offset, p.shape);
    for (const auto& [k, v] : metadata) writer.set_metadata(k, v);
    writer.write(dir / "model.safetensors");
}

std::unique_ptr<Transformer> load_model_folder(const fs::path& path) {
    const fs::path dir = resolve_model_dir(path);
    const fs::path config_path = dir / "config.json";
    const nlohmann::json config = read_json_file(config_path, "model");
    const std::string type = config.value("model_type", std::string());
    SINKLAB_CHECK(type == "sinklab", "model", "{}: model_type '{}' is not a sinklab model", config_path.string(), type);
    SINKLAB_CHECK(config.contains("sinklab"), "model", "{}: missing the \"sinklab\" section", config_path.string());
    const ModelConfig model_config = ModelConfig::from_json(config["sinklab"], config_path.string());
    SINKLAB_CHECK(Transformer::quantized_table(model_config).empty(), "model",
                  "{}: a sinklab model folder cannot hold MXFP4 experts (moe_experts); load the Hugging Face folder",
                  config_path.string());
    const fs::path weights_path = dir / "model.safetensors";
    SafetensorsFile weights(weights_path);
    uint64_t held = 0;
    for (const auto& name : weights.names()) held += static_cast<uint64_t>(weights.info(name).numel());
    check_config_fits_weights(model_config, held, config_path.string(), weights_path.string());
    auto model = std::make_unique<Transformer>(model_config);
    for (const auto& p : model->params()) {
        SINKLAB_CHECK(weights.contains(p.name), "model", "{}: missing tensor '{}'", weights_path.string(), p.name);
        Tensor t = weights.read_f32(p.name, p.shape);
        std::memcpy(model->param_data() + p.offset, t.data(), p.numel * sizeof(float));
    }
    for (const auto& name : weights.names())
        SINKLAB_CHECK(model->find(name) != nullptr, "model", "{}: unexpected tensor '{}' for this config",
                      weights_path.string(), name);
    return model;
}

}  // namespace sinklab
