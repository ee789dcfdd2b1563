#pragma once
// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, ...,
// "__metadata__": {string: string}}, then the data section; offsets are relative to its start.
//
// SafetensorsFile validates the whole header when it opens a file (every entry, every offset, no
// overlaps), so that a corrupt or truncated download fails at the door with a message naming the
// file, and no later read can go out of bounds.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/tensor.h"
#include "io/mapped_file.h"

namespace sinklab {

// The dtypes sinklab reads. BOOL is one byte, 0 or 1.
enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL };

std::string_view dtype_name(DType dtype);  // the format's spelling: "F32", "BF16", ...
std::optional<DType> dtype_from_name(std::string_view name);
size_t dtype_size(DType dtype);  // bytes per element
bool dtype_is_integer(DType dtype);  // I64, I32, I16, I8, U8 and BOOL

struct TensorInfo {
    DType dtype = DType::F32;
    Shape shape;
    // Byte span [data_begin, data_end) inside the data section (which starts after the header).
    uint64_t data_begin = 0;
    uint64_t data_end = 0;

    int64_t numel() const { return shape_numel(shape); }
    uint64_t byte_size() const { return data_end - data_begin; }
};

class SafetensorsFile {
public:
    // Maps the file and validates its header; throws sinklab::Error("safetensors", "<path>: ...").
    explicit SafetensorsFile(std::filesystem::path path);

    const std::filesystem::path& path() const { return path_; }
    std::vector<std::string> names() const;  // sorted
    bool contains(const std::string& name) const { return tensors_.count(name) > 0; }
    const TensorInfo& info(const std::string& name) const;
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

    // Any dtype, converted to float32: exactly for F16, BF16 and integers up to 2^24; F64 and larger
    // integers round to the nearest float32.
    Tensor read_f32(const std::string& name) const;
    // Same, but first checks the shape the caller's config implies.
    Tensor read_f32(const std::string& name, const Shape& expected_shape) const;
    // The same conversion into `out` (numel floats), with no tensor of its own.
    void read_f32_into(const std::string& name, const Shape& expected_shape, float* out) const;
    // Integer dtypes only (I64, I32, I16, I8, U8, BOOL), widened to int64.
    std::vector<int64_t> read_i64(const std::string& name) const;
    // The tensor's bytes in the file, in its stored dtype, little-endian and not necessarily aligned.
    const std::byte* raw(const std::string& name) const;
    // Done with the tensor: its pages leave the process's resident memory (MappedFile::release), so
    // that loading a model costs the model's memory and not the file's on top.
    void release(const std::string& name) const;

private:
    void parse_header();

    std::filesystem::path path_;
    MappedFile file_;
    const std::byte* data_section_ = nullptr;
    uint64_t data_section_size_ = 0;
    std::map<std::string, TensorInfo> tensors_;
    std::map<std::string, std::string> metadata_;
};

// Collects tensors, then writes them in one safetensors file the way the Hugging Face library lays
// it out: header keys sorted, header padded with spaces to a multiple of 8 bytes, tensors stored
// in name order with no gaps. Tensors are copied on `add`, so callers may free theirs.
class SafetensorsWriter {
public:
    void add(const std::string& name, const Tensor& tensor);
    void add(const std::string& name, const float* data, Shape shape);
    void add_i64(const std::string& name, const int64_t* data, Shape shape);
    void add_i64(const std::string& name, const std::vector<int64_t>& values);  // shape [values.size()]
    void set_metadata(const std::string& key, const std::string& value);

    // Float tensors are stored as `float_storage` (F32, F16 or BF16, rounded to nearest even);
    // integer tensors stay I64. Atomic: the file appears complete or not at all.
    void write(const std::filesystem::path& path, DType float_storage = DType::F32) const;

private:
    struct Entry {
        Shape shape;
        std::variant<std::vector<float>, std::vector<int64_t>> values;
    };
    void check_new_name(const std::string& name) const;

    std::map<std::string, Entry> entries_;
    std::map<std::string, std::string> metadata_;
};

// A model folder's weights as saved by Hugging Face `save_pretrained`: either one
// `model.safetensors`, or shards listed by `model.safetensors.index.json` ({"weight_map":
// {tensor name: shard file name}}). Opening validates every shard and that each tensor of the
// index is in the shard it names.
class WeightStore {
public:
    explicit WeightStore(const std::filesystem::path& folder);

    const std::filesystem::path& folder() const { return folder_; }
    std::vector<std::string> names() const;  // sorted
    bool contains(const std::string& name) const { return shard_of_.count(name) > 0; }
    const TensorInfo& info(const std::string& name) const;
    DType dtype(const std::string& name) const { return info(name).dtype; }
    Tensor read_f32(const std::string& name) const;
    Tensor read_f32(const std::string& name, const Shape& expected_shape) const;
    void read_f32_into(const std::string& name, const Shape& expected_shape, float* out) const;
    const std::byte* raw(const std::string& name) const;
    void release(const std::string& name) const;

private:
    const SafetensorsFile& shard_holding(const std::string& name) const;
    void open_sharded(const std::filesystem::path& index_path);

    std::filesystem::path folder_;
    std::string source_;  // the file the tensor list came from, for error messages
    std::vector<SafetensorsFile> shards_;
    std::map<std::string, size_t> shard_of_;  // tensor name -> index into shards_
};

}  // namespace sinklab
