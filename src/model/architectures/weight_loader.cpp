#include "model/architectures/weight_loader.h"

#include <cstring>

#include "core/error.h"
#include "model/checkpoint.h"

namespace sinklab {

namespace fs = std::filesystem;

namespace {

class SafetensorsCheckpoint : public CheckpointTensors {
public:
    explicit SafetensorsCheckpoint(const fs::path& folder) : store_(folder) {
        // WeightStore prefers model.safetensors like transformers does; otherwise the index names
        // each tensor's shard (already validated by WeightStore).
        if (fs::exists(folder / "model.safetensors")) {
            single_file_ = (folder / "model.safetensors").string();
            origin_ = single_file_;
        } else {
            const fs::path index = folder / "model.safetensors.index.json";
            origin_ = index.string();
            const nlohmann::json index_json = read_json_file(index, "safetensors");
            for (const auto& [name, file] : index_json.at("weight_map").items())
                shard_of_[name] = (folder / file.get<std::string>()).string();
        }
    }
    std::vector<std::string> names() const override { return store_.names(); }
    bool contains(const std::string& name) const override { return store_.contains(name); }
    DType dtype(const std::string& name) const override { return store_.dtype(name); }
    Shape shape(const std::string& name) const override { return store_.info(name).shape; }
    Tensor read_f32(const std::string& name, const Shape& expected_shape) const override {
        return store_.read_f32(name, expected_shape);
    }
    std::string file_of(const std::string& name) const override {
        return single_file_.empty() ? shard_of_.at(name) : single_file_;
    }
    std::string origin() const override { return origin_; }

private:
    WeightStore store_;
    std::string single_file_, origin_;
    std::map<std::string, std::string> shard_of_;
};

class InMemoryCheckpoint : public CheckpointTensors {
public:
    InMemoryCheckpoint(std::map<std::string, Tensor> tensors, std::string origin)
        : tensors_(std::move(tensors)), origin_(std::move(origin)) {}
    std::vector<std::string> names() const override {
        std::vector<std::string> names;
        for (const auto& [name, tensor] : tensors_) names.push_back(name);
        return names;
    }
    bool contains(const std::string& name) const override { return tensors_.count(name) > 0; }
    DType dtype(const std::string&) const override { return DType::F32; }
    Shape shape(const std::string& name) const override { return tensors_.at(name).shape(); }
    Tensor read_f32(const std::string& name, const Shape& expected_shape) const override {
        const Tensor& t = tensors_.at(name);
        SINKLAB_CHECK(t.shape() == expected_shape, "model", "tensor {} in {} has shape {}, the config implies {}",
                      name, origin_, shape_string(t.shape()), shape_string(expected_shape));
        return t;
    }
    std::string file_of(const std::string&) const override { return origin_; }
    std::string origin() const override { return origin_; }

private:
    std::map<std::string, Tensor> tensors_;
    std::string origin_;
};

}  // namespace

std::unique_ptr<CheckpointTensors> open_safetensors_checkpoint(const fs::path& folder) {
    return std::make_unique<SafetensorsCheckpoint>(folder);
}

std::unique_ptr<CheckpointTensors> in_memory_checkpoint(std::map<std::string, Tensor> tensors, std::string origin) {
    return std::make_unique<InMemoryCheckpoint>(std::move(tensors), std::move(origin));
}

WeightLoader::WeightLoader(const CheckpointTensors& source, Transformer& model, std::string allowed_dtype_note)
    : source_(source), model_(model), dtype_note_(std::move(allowed_dtype_note)) {}

Shape WeightLoader::param_shape(const std::string& param) const {
    const ParamInfo* p = model_.find(param);
    SINKLAB_ASSERT(p != nullptr);  // the architecture asked for a parameter its config does not create
    return p->shape;
}

Tensor WeightLoader::take(const std::string& name, const Shape& expected_shape) {
    SINKLAB_CHECK(source_.contains(name), "model", "{}: missing tensor '{}', which the model's configuration implies",
                  source_.origin(), name);
    SINKLAB_CHECK(used_.insert(name).second, "internal", "tensor '{}' read twice", name);
    const DType dtype = source_.dtype(name);
    SINKLAB_CHECK(dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16, "model",
                  "tensor {} in {} is stored as {}; weights must be F32, F16 or BF16 ({})", name,
                  source_.file_of(name), dtype_name(dtype), dtype_note_);
    dtypes_seen_.insert(std::string(dtype_name(dtype)));
    return source_.read_f32(name, expected_shape);
}

void WeightLoader::set(const std::string& param, const Tensor& value) {
    const ParamInfo* p = model_.find(param);
    SINKLAB_ASSERT(p != nullptr && value.shape() == p->shape);
    SINKLAB_CHECK(filled_.insert(param).second, "internal", "parameter '{}' filled twice", param);
    std::memcpy(model_.param_data() + p->offset, value.data(), p->numel * sizeof(float));
}

void WeightLoader::copy(const std::string& name, const std::string& param) {
    set(param, take(name, param_shape(param)));
}

void WeightLoader::split_rows(const std::string& name, const std::vector<std::string>& params) {
    Shape stacked = param_shape(params.front());
    stacked[0] = 0;
    for (const auto& p : params) stacked[0] += param_shape(p)[0];
    const Tensor all = take(name, stacked);
    const float* cursor = all.data();
    for (const auto& p : params) {
        Tensor part(param_shape(p));
        std::memcpy(part.data(), cursor, part.numel() * sizeof(float));
        cursor += part.numel();
        set(p, part);
    }
}

void WeightLoader::split_transposed(const std::string& name, const std::vector<std::string>& params) {
    const int64_t in = param_shape(params.front())[1];
    int64_t out = 0;
    for (const auto& p : params) out += param_shape(p)[0];
    const Tensor stored = take(name, {in, out});  // (in, out)
    int64_t row = 0;
    for (const auto& p : params) {
        Tensor part(param_shape(p));  // (rows, in)
        const int64_t rows = part.dim(0);
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < in; ++c) part[r * in + c] = stored[c * out + row + r];
        row += rows;
        set(p, part);
    }
}

void WeightLoader::skip(const std::string& name) {
    SINKLAB_CHECK(source_.contains(name), "internal", "skipping absent tensor '{}'", name);
    used_.insert(name);
}

void WeightLoader::skip_if_present(const std::string& name) {
    if (source_.contains(name)) used_.insert(name);
}

void WeightLoader::finish() const {
    for (const auto& p : model_.params())
        SINKLAB_CHECK(filled_.count(p.name), "internal", "parameter '{}' was not loaded from {}", p.name,
                      source_.origin());
    for (const auto& name : source_.names())
        SINKLAB_CHECK(used_.count(name), "model",
                      "{}: unexpected tensor '{}': a model with this configuration ({} layers) has no such weight",
                      source_.file_of(name), name, model_.config().n_layers);
}

std::string WeightLoader::storage_dtypes() const {
    std::string joined;
    for (const auto& d : dtypes_seen_) joined += (joined.empty() ? "" : "+") + d;
    return joined;
}

}  // namespace sinklab
