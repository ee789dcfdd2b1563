#include "model/architectures/weight_loader.h"

#include <algorithm>
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
    void read_f32_into(const std::string& name, const Shape& expected_shape, float* out) const override {
        store_.read_f32_into(name, expected_shape, out);
    }
    const std::byte* raw(const std::string& name) const override { return store_.raw(name); }
    void release(const std::string& name) const override { store_.release(name); }
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
    void read_f32_into(const std::string& name, const Shape& expected_shape, float* out) const override {
        const Tensor t = read_f32(name, expected_shape);
        std::memcpy(out, t.data(), t.numel() * sizeof(float));
    }
    const std::byte* raw(const std::string&) const override { return nullptr; }
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

void WeightLoader::claim(const std::string& name, std::initializer_list<DType> allowed,
                         const std::string& what_is_allowed) {
    SINKLAB_CHECK(source_.contains(name), "model", "{}: missing tensor '{}', which the model's configuration implies",
                  source_.origin(), name);
    SINKLAB_CHECK(used_.insert(name).second, "internal", "tensor '{}' read twice", name);
    const DType dtype = source_.dtype(name);
    SINKLAB_CHECK(std::find(allowed.begin(), allowed.end(), dtype) != allowed.end(), "model",
                  "tensor {} in {} is stored as {}; {}", name, source_.file_of(name), dtype_name(dtype),
                  what_is_allowed);
}

Tensor WeightLoader::take(const std::string& name, const Shape& expected_shape) {
    claim(name, {DType::F32, DType::F16, DType::BF16}, "weights must be F32, F16 or BF16 (" + dtype_note_ + ")");
    dtypes_seen_.insert(std::string(dtype_name(source_.dtype(name))));
    Tensor value = source_.read_f32(name, expected_shape);
    source_.release(name);
    return value;
}

void WeightLoader::copy_mxfp4(const std::string& blocks, const std::string& scales, const std::string& param,
                              const std::vector<int>& source_rows) {
    Mxfp4Matrices& q = model_.quantized(param);
    const int64_t count = q.count(), rows = q.rows(), per_row = q.blocks_per_row();
    const std::string u8_only = "MXFP4 blocks and scales are U8 (one byte per pair of 4-bit codes, one per scale)";
    claim(blocks, {DType::U8}, u8_only);
    SINKLAB_CHECK(source_.contains(scales), "model",
                  "{}: missing tensor '{}', the scales of the MXFP4 tensor '{}' (every MXFP4 tensor needs both)",
                  source_.origin(), scales, blocks);
    claim(scales, {DType::U8}, u8_only);
    const Shape blocks_shape{count, rows, per_row, kMxfp4BlockBytes}, scales_shape{count, rows, per_row};
    for (const auto& [name, expected] : {std::pair{blocks, blocks_shape}, std::pair{scales, scales_shape}})
        SINKLAB_CHECK(source_.shape(name) == expected, "model",
                      "tensor {} in {} has shape {}, the config implies {} ({} matrices of {} x {} values in MXFP4 "
                      "blocks of 32)",
                      name, source_.file_of(name), shape_string(source_.shape(name)), shape_string(expected), count,
                      rows, q.cols());
    const std::byte* block_bytes = source_.raw(blocks);
    const std::byte* scale_bytes = source_.raw(scales);
    SINKLAB_CHECK(block_bytes && scale_bytes, "model", "{}: MXFP4 tensors can only be read from safetensors files",
                  source_.origin());
    SINKLAB_ASSERT(source_rows.empty() || static_cast<int64_t>(source_rows.size()) == rows);
    const size_t row_block_bytes = static_cast<size_t>(per_row) * kMxfp4BlockBytes;
    for (int m = 0; m < count; ++m)
        for (int r = 0; r < rows; ++r) {
            const size_t from = static_cast<size_t>(m) * rows + (source_rows.empty() ? r : source_rows[r]);
            const auto* scale_row = reinterpret_cast<const uint8_t*>(scale_bytes) + from * per_row;
            for (int b = 0; b < per_row; ++b)
                SINKLAB_CHECK(scale_row[b] != kMxfp4NanScale, "model",
                              "tensor {} in {}: scale {} of matrix {}, row {} is 255, which E8M0 reserves for NaN",
                              scales, source_.file_of(scales), b, m, source_rows.empty() ? r : source_rows[r]);
            std::memcpy(q.row_scales(m, r), scale_row, per_row);
            std::memcpy(q.row_blocks(m, r), block_bytes + from * row_block_bytes, row_block_bytes);
        }
    source_.release(blocks);
    source_.release(scales);
    SINKLAB_CHECK(quantized_filled_.insert(param).second, "internal", "quantized weight '{}' filled twice", param);
    dtypes_seen_.insert("MXFP4");
}

void WeightLoader::set(const std::string& param, const Tensor& value) {
    const ParamInfo* p = model_.find(param);
    SINKLAB_ASSERT(p != nullptr && value.shape() == p->shape);
    SINKLAB_CHECK(filled_.insert(param).second, "internal", "parameter '{}' filled twice", param);
    std::memcpy(model_.param_data() + p->offset, value.data(), p->numel * sizeof(float));
}

void WeightLoader::copy(const std::string& name, const std::string& param) {
    // read straight into the parameter: no float32 copy of a (vocabulary-sized) tensor on the side
    const ParamInfo* p = model_.find(param);
    SINKLAB_ASSERT(p != nullptr);
    claim(name, {DType::F32, DType::F16, DType::BF16}, "weights must be F32, F16 or BF16 (" + dtype_note_ + ")");
    dtypes_seen_.insert(std::string(dtype_name(source_.dtype(name))));
    source_.read_f32_into(name, p->shape, model_.param_data() + p->offset);
    source_.release(name);
    SINKLAB_CHECK(filled_.insert(param).second, "internal", "parameter '{}' filled twice", param);
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
    for (const auto& q : model_.quantized_params())
        SINKLAB_CHECK(quantized_filled_.count(q.name), "internal", "quantized weight '{}' was not loaded from {}",
                      q.name, source_.origin());
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
