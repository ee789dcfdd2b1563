#include "io/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "io/half.h"

namespace sinklab {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; sinklab reads it in place");

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kModule = "safetensors";
constexpr const char* kMetadataKey = "__metadata__";
// The Hugging Face reader refuses headers above 100 MB too; real ones are a few hundred kB at most.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeSpec {
    DType dtype;
    std::string_view name;
    size_t size;
    bool is_integer;
};

constexpr std::array<DTypeSpec, 10> kDTypes = {{
    {DType::F32, "F32", 4, false},
    {DType::F16, "F16", 2, false},
    {DType::BF16, "BF16", 2, false},
    {DType::F64, "F64", 8, false},
    {DType::I64, "I64", 8, true},
    {DType::I32, "I32", 4, true},
    {DType::I16, "I16", 2, true},
    {DType::I8, "I8", 1, true},
    {DType::U8, "U8", 1, true},
    {DType::BOOL, "BOOL", 1, true},
}};

const DTypeSpec& spec(DType dtype) {
    for (const DTypeSpec& s : kDTypes)
        if (s.dtype == dtype) return s;
    fail("internal", "DType {} has no spec", static_cast<int>(dtype));
}

std::string supported_dtype_list() {
    std::string list;
    for (const DTypeSpec& s : kDTypes) list += (list.empty() ? "" : ", ") + std::string(s.name);
    return list;
}

// Reads element `i` of type T from possibly unaligned little-endian bytes.
template <typename T>
T load(const std::byte* bytes, int64_t i) {
    T value;
    std::memcpy(&value, bytes + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    return value;
}

// Widens `values.size()` elements of integer type T to int64.
template <typename T>
void widen(const std::byte* bytes, std::vector<int64_t>& values) {
    for (size_t i = 0; i < values.size(); ++i) values[i] = load<T>(bytes, static_cast<int64_t>(i));
}

// Product of the dimensions, or nullopt if it does not fit in int64 (a hostile shape).
std::optional<int64_t> checked_numel(const Shape& shape) {
    int64_t numel = 1;
    for (int64_t d : shape)
        if (__builtin_mul_overflow(numel, d, &numel)) return std::nullopt;
    return numel;
}

// Thrown by HeaderShapeGuard while the JSON is being parsed.
class HeaderShapeError : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A valid header nests at most three levels: the root object, a tensor entry or the metadata
// object, and a shape or data_offsets array. Rejecting anything deeper while parsing keeps a hostile
// 100 MB header of brackets from building a huge tree; duplicate keys are rejected because the JSON
// library would silently keep only the last one.
class HeaderShapeGuard {
public:
    bool operator()(int depth, json::parse_event_t event, json& parsed) {
        using Event = json::parse_event_t;
        if (event == Event::object_start || event == Event::array_start) {
            if (depth >= kMaxDepth) throw HeaderShapeError("nests deeper than a safetensors header can");
            if (event == Event::object_start) keys_of_object_at_depth_[depth].clear();
        } else if (event == Event::key) {
            // A key at depth d belongs to the object that started at depth d - 1.
            const auto& key = parsed.get_ref<const std::string&>();
            if (!keys_of_object_at_depth_[depth - 1].insert(key).second)
                throw HeaderShapeError("has the key '" + key + "' twice in one object");
        }
        return true;
    }

private:
    static constexpr int kMaxDepth = 3;
    std::array<std::set<std::string>, kMaxDepth> keys_of_object_at_depth_;
};

[[noreturn]] void header_error(const fs::path& path, const std::string& problem) {
    throw Error(kModule, path.string() + ": " + problem);
}

// Checks one tensor entry of the header and returns it parsed.
TensorInfo parse_entry(const fs::path& path, const std::string& name, const json& entry) {
    auto bad = [&](const std::string& problem) { header_error(path, "tensor '" + name + "' " + problem); };
    if (!entry.is_object()) bad("has a header entry that is not an object");
    for (const char* key : {"dtype", "shape", "data_offsets"})
        if (!entry.contains(key)) bad(fmt::format("has no '{}' in its header entry", key));

    TensorInfo info;
    const json& dtype = entry["dtype"];
    if (!dtype.is_string()) bad("has a dtype that is not a string");
    std::optional<DType> parsed_dtype = dtype_from_name(dtype.get_ref<const std::string&>());
    if (!parsed_dtype)
        bad(fmt::format("has unknown dtype '{}' (supported: {})", dtype.get<std::string>(),
                        supported_dtype_list()));
    info.dtype = *parsed_dtype;

    const json& shape = entry["shape"];
    if (!shape.is_array()) bad("has a shape that is not a list");
    for (const json& d : shape) {
        if (d.is_number_integer() && !d.is_number_unsigned())
            bad(fmt::format("has a negative dimension in shape {}", shape.dump()));
        if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
            bad(fmt::format("has a shape {} that is not a list of non-negative integers", shape.dump()));
        info.shape.push_back(d.get<int64_t>());
    }

    const json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned() || offsets[0].get<uint64_t>() > offsets[1].get<uint64_t>())
        bad(fmt::format("has data_offsets {}; expected two ascending non-negative integers [begin, end]",
                        offsets.dump()));
    info.data_begin = offsets[0].get<uint64_t>();
    info.data_end = offsets[1].get<uint64_t>();

    std::optional<int64_t> numel = checked_numel(info.shape);
    uint64_t expected_bytes = 0;
    if (!numel || __builtin_mul_overflow(static_cast<uint64_t>(*numel), dtype_size(info.dtype), &expected_bytes))
        bad(fmt::format("has a shape {} too large to address", shape.dump()));
    if (info.byte_size() != expected_bytes)
        bad(fmt::format("is {} with shape {} ({} bytes) but its data_offsets [{}, {}] span {} bytes",
                        dtype_name(info.dtype), shape_string(info.shape), expected_bytes, info.data_begin,
                        info.data_end, info.byte_size()));
    return info;
}

std::map<std::string, std::string> parse_metadata(const fs::path& path, const json& metadata) {
    if (!metadata.is_object()) header_error(path, "__metadata__ is not an object of strings");
    std::map<std::string, std::string> result;
    for (const auto& [key, value] : metadata.items()) {
        if (!value.is_string())
            header_error(path, fmt::format("__metadata__ value of '{}' is {}, expected a string", key, value.dump()));
        result[key] = value.get<std::string>();
    }
    return result;
}

// Tensors may not share bytes: one write through a shared span would change two tensors, and the
// format's reference implementation rejects it. Gaps between tensors are harmless and tolerated.
void check_no_overlap(const fs::path& path, const std::map<std::string, TensorInfo>& tensors) {
    std::vector<std::pair<const std::string*, const TensorInfo*>> by_offset;
    for (const auto& [name, info] : tensors)
        if (info.byte_size() > 0) by_offset.emplace_back(&name, &info);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const auto& a, const auto& b) { return a.second->data_begin < b.second->data_begin; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const auto& [previous_name, previous] = by_offset[i - 1];
        const auto& [name, info] = by_offset[i];
        if (info->data_begin < previous->data_end)
            header_error(path, fmt::format("tensors '{}' (bytes [{}, {})) and '{}' (bytes [{}, {})) overlap",
                                           *previous_name, previous->data_begin, previous->data_end, *name,
                                           info->data_begin, info->data_end));
    }
}

void check_shape(const fs::path& path, const std::string& name, const Shape& actual, const Shape& expected) {
    if (actual != expected)
        fail(kModule, "tensor {} in {} has shape {}, the config implies {}", name, path.string(),
             shape_string(actual), shape_string(expected));
}

}  // namespace

std::string_view dtype_name(DType dtype) { return spec(dtype).name; }

std::optional<DType> dtype_from_name(std::string_view name) {
    for (const DTypeSpec& s : kDTypes)
        if (s.name == name) return s.dtype;
    return std::nullopt;
}

size_t dtype_size(DType dtype) { return spec(dtype).size; }

bool dtype_is_integer(DType dtype) { return spec(dtype).is_integer; }

// ---------------------------------------------------------------------------------------------
// SafetensorsFile

SafetensorsFile::SafetensorsFile(fs::path path) : path_(std::move(path)), file_(path_, kModule) {
    parse_header();
}

void SafetensorsFile::parse_header() {
    const uint64_t file_size = file_.size();
    if (file_size < 8)
        header_error(path_, fmt::format("file is {} bytes, shorter than the 8-byte header length; not a "
                                        "safetensors file, or an incomplete download",
                                        file_size));
    const uint64_t header_size = load<uint64_t>(file_.data(), 0);
    if (header_size > kMaxHeaderBytes)
        header_error(path_, fmt::format("header length {} is absurd (the limit is {} bytes); not a safetensors "
                                        "file, or a corrupt one",
                                        header_size, kMaxHeaderBytes));
    if (header_size > file_size - 8)
        header_error(path_, fmt::format("header length {} is larger than the file ({} bytes). Perhaps an "
                                        "incomplete download or corrupt file?",
                                        header_size, file_size));
    data_section_ = file_.data() + 8 + header_size;
    data_section_size_ = file_size - 8 - header_size;

    const char* header_text = reinterpret_cast<const char*>(file_.data() + 8);
    json header;
    try {
        header = json::parse(header_text, header_text + header_size, HeaderShapeGuard{});
    } catch (const json::exception& e) {  // parse errors, and out_of_range for numbers like 4e312
        header_error(path_, fmt::format("header is not valid JSON ({})", e.what()));
    } catch (const HeaderShapeError& e) {
        header_error(path_, std::string("header ") + e.what());
    }
    if (!header.is_object()) header_error(path_, "header is JSON but not an object {name: entry, ...}");

    for (const auto& [name, entry] : header.items()) {
        if (name == kMetadataKey) {
            metadata_ = parse_metadata(path_, entry);
            continue;
        }
        TensorInfo info = parse_entry(path_, name, entry);
        if (info.data_end > data_section_size_)
            header_error(path_, fmt::format("tensor '{}' has data_offsets [{}, {}] past the end of the data "
                                            "section ({} bytes). Perhaps an incomplete download or corrupt file?",
                                            name, info.data_begin, info.data_end, data_section_size_));
        tensors_.emplace(name, std::move(info));
    }
    check_no_overlap(path_, tensors_);
}

std::vector<std::string> SafetensorsFile::names() const {
    std::vector<std::string> names;
    names.reserve(tensors_.size());
    for (const auto& [name, info] : tensors_) names.push_back(name);
    return names;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end())
        fail(kModule, "{}: no tensor named '{}' (the file holds {} tensors)", path_.string(), name, tensors_.size());
    return it->second;
}

const std::byte* SafetensorsFile::raw(const std::string& name) const { return data_section_ + info(name).data_begin; }

void SafetensorsFile::release(const std::string& name) const {
    const TensorInfo& meta = info(name);
    file_.release(static_cast<size_t>(data_section_ - file_.data()) + meta.data_begin, meta.byte_size());
}

Tensor SafetensorsFile::read_f32(const std::string& name) const {
    Tensor tensor(info(name).shape);
    read_f32_into(name, tensor.shape(), tensor.data());
    return tensor;
}

void SafetensorsFile::read_f32_into(const std::string& name, const Shape& expected_shape, float* out) const {
    check_shape(path_, name, info(name).shape, expected_shape);
    const TensorInfo& meta = info(name);
    const std::byte* bytes = data_section_ + meta.data_begin;
    const int64_t n = meta.numel();
    if (meta.dtype != DType::F32 && meta.dtype != DType::F16 && meta.dtype != DType::BF16 && meta.dtype != DType::F64) {
        // the integer dtypes
        const std::vector<int64_t> values = read_i64(name);
        for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(values[i]);
        return;
    }
    // A slice at a time, each slice's file pages released once it is converted (MappedFile::release),
    // so that the file's copy of a tensor and its float32 copy are never resident whole together:
    // gpt-oss-20b's embeddings are 1.16 GB of BF16 pages beside their 2.32 GB in float32.
    constexpr int64_t kSliceValues = int64_t{1} << 22;
    const size_t width = dtype_size(meta.dtype);
    const size_t file_offset = static_cast<size_t>(bytes - file_.data());
    for (int64_t first = 0; first < n; first += kSliceValues) {
        const int64_t last = std::min(n, first + kSliceValues);
        switch (meta.dtype) {
            case DType::F32: std::memcpy(out + first, bytes + first * width, (last - first) * width); break;
            case DType::F16:
                for (int64_t i = first; i < last; ++i) out[i] = f16_to_f32(load<uint16_t>(bytes, i));
                break;
            case DType::BF16:
                for (int64_t i = first; i < last; ++i) out[i] = bf16_to_f32(load<uint16_t>(bytes, i));
                break;
            default:  // F64
                for (int64_t i = first; i < last; ++i) out[i] = static_cast<float>(load<double>(bytes, i));
        }
        file_.release(file_offset + first * width, (last - first) * width);
    }
}

Tensor SafetensorsFile::read_f32(const std::string& name, const Shape& expected_shape) const {
    check_shape(path_, name, info(name).shape, expected_shape);
    return read_f32(name);
}

std::vector<int64_t> SafetensorsFile::read_i64(const std::string& name) const {
    const TensorInfo& meta = info(name);
    if (!dtype_is_integer(meta.dtype))
        fail(kModule, "{}: tensor '{}' is {}, expected an integer dtype", path_.string(), name,
             dtype_name(meta.dtype));
    const std::byte* bytes = data_section_ + meta.data_begin;
    std::vector<int64_t> values(meta.numel());
    switch (meta.dtype) {
        case DType::I64: widen<int64_t>(bytes, values); break;
        case DType::I32: widen<int32_t>(bytes, values); break;
        case DType::I16: widen<int16_t>(bytes, values); break;
        case DType::I8: widen<int8_t>(bytes, values); break;
        case DType::U8: widen<uint8_t>(bytes, values); break;
        case DType::BOOL:
            widen<uint8_t>(bytes, values);
            for (size_t i = 0; i < values.size(); ++i)
                if (values[i] > 1)
                    fail(kModule, "{}: BOOL tensor '{}' holds byte {} at element {}; expected 0 or 1", path_.string(),
                         name, values[i], i);
            break;
        default: SINKLAB_ASSERT(false && "every integer dtype is handled above");
    }
    return values;
}

// ---------------------------------------------------------------------------------------------
// SafetensorsWriter

void SafetensorsWriter::check_new_name(const std::string& name) const {
    SINKLAB_CHECK(!name.empty(), kModule, "a tensor name may not be empty");
    SINKLAB_CHECK(name != kMetadataKey, kModule, "'{}' is reserved for metadata, not a tensor name", name);
    SINKLAB_CHECK(!entries_.count(name), kModule, "tensor '{}' was added twice", name);
}

void SafetensorsWriter::add(const std::string& name, const Tensor& tensor) {
    add(name, tensor.data(), tensor.shape());
}

void SafetensorsWriter::add(const std::string& name, const float* data, Shape shape) {
    check_new_name(name);
    const int64_t n = shape_numel(shape);
    entries_.emplace(name, Entry{std::move(shape), std::vector<float>(data, data + n)});
}

void SafetensorsWriter::add_i64(const std::string& name, const int64_t* data, Shape shape) {
    check_new_name(name);
    const int64_t n = shape_numel(shape);
    entries_.emplace(name, Entry{std::move(shape), std::vector<int64_t>(data, data + n)});
}

void SafetensorsWriter::add_i64(const std::string& name, const std::vector<int64_t>& values) {
    add_i64(name, values.data(), Shape{static_cast<int64_t>(values.size())});
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

namespace {

// Appends `values` to `out` in `storage` (F32, F16 or BF16) little-endian bytes.
void encode_floats(const std::vector<float>& values, DType storage, std::string& out) {
    const size_t offset = out.size();
    out.resize(offset + values.size() * dtype_size(storage));
    char* dst = out.data() + offset;
    for (size_t i = 0; i < values.size(); ++i) {
        if (storage == DType::F32) {
            std::memcpy(dst + 4 * i, &values[i], 4);
        } else {
            uint16_t half = storage == DType::F16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
            std::memcpy(dst + 2 * i, &half, 2);
        }
    }
}

}  // namespace

void SafetensorsWriter::write(const fs::path& path, DType float_storage) const {
    SINKLAB_CHECK(float_storage == DType::F32 || float_storage == DType::F16 || float_storage == DType::BF16,
                  kModule, "{}: float tensors can be stored as F32, F16 or BF16, not {}", path.string(),
                  dtype_name(float_storage));

    json header = json::object();
    if (!metadata_.empty()) header[kMetadataKey] = metadata_;
    uint64_t offset = 0;
    for (const auto& [name, entry] : entries_) {
        const bool is_float = std::holds_alternative<std::vector<float>>(entry.values);
        const DType dtype = is_float ? float_storage : DType::I64;
        const uint64_t bytes = static_cast<uint64_t>(shape_numel(entry.shape)) * dtype_size(dtype);
        header[name] = {{"dtype", std::string(dtype_name(dtype))},
                        {"shape", entry.shape},
                        {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string header_text = header.dump();  // nlohmann's object keeps keys sorted
    // Pad with spaces (valid trailing JSON whitespace) so the data section starts 8-byte aligned.
    header_text.append((8 - header_text.size() % 8) % 8, ' ');

    // Stream tensor by tensor into a temporary sibling, then rename: a model's weights are not
    // duplicated in memory, and a crash never leaves a partial file under the final name.
    fs::path tmp = path;
    tmp += ".tmp." + std::to_string(::getpid());
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
        fail(kModule, "{}: cannot write (temporary file {}): {}", path.string(), tmp.string(), std::strerror(errno));
    const uint64_t header_size = header_text.size();
    out.write(reinterpret_cast<const char*>(&header_size), 8);
    out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
    std::string buffer;
    for (const auto& [name, entry] : entries_) {
        buffer.clear();
        if (const auto* floats = std::get_if<std::vector<float>>(&entry.values)) {
            encode_floats(*floats, float_storage, buffer);
        } else {
            const auto& ints = std::get<std::vector<int64_t>>(entry.values);
            buffer.assign(reinterpret_cast<const char*>(ints.data()), ints.size() * sizeof(int64_t));
        }
        out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    }
    out.close();
    std::error_code ec;
    if (!out) {
        fs::remove(tmp, ec);
        fail(kModule, "{}: write failed (disk full?)", path.string());
    }
    fsync_path(tmp);
    fs::rename(tmp, path, ec);
    if (ec) {
        fs::remove(tmp, ec);
        fail(kModule, "{}: cannot rename into place: {}", path.string(), ec.message());
    }
    if (path.has_parent_path()) fsync_path(path.parent_path());
}

// ---------------------------------------------------------------------------------------------
// WeightStore

WeightStore::WeightStore(const fs::path& folder) : folder_(folder) {
    std::error_code ec;
    if (!fs::is_directory(folder_, ec)) fail(kModule, "{}: not a folder (expected a model folder)", folder_.string());
    const fs::path single = folder_ / "model.safetensors";
    const fs::path index = folder_ / "model.safetensors.index.json";
    // Like transformers, prefer the single file when both are present.
    if (fs::exists(single, ec)) {
        shards_.emplace_back(single);
        for (const std::string& name : shards_[0].names()) shard_of_[name] = 0;
        source_ = single.string();
    } else if (fs::exists(index, ec)) {
        open_sharded(index);
        source_ = index.string();
    } else {
        fail(kModule, "{}: neither model.safetensors nor model.safetensors.index.json is there", folder_.string());
    }
}

void WeightStore::open_sharded(const fs::path& index_path) {
    json index;
    try {
        index = json::parse(read_text_file(index_path, kModule));
    } catch (const json::exception& e) {
        fail(kModule, "{}: not valid JSON ({})", index_path.string(), e.what());
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
        fail(kModule, "{}: expected an object with a \"weight_map\" object {{tensor name: shard file}}",
             index_path.string());
    const json& weight_map = index["weight_map"];
    if (weight_map.empty()) fail(kModule, "{}: weight_map is empty", index_path.string());

    std::map<std::string, size_t> shard_index_of_file;
    for (const auto& [name, file] : weight_map.items()) {
        if (!file.is_string())
            fail(kModule, "{}: weight_map entry of tensor '{}' is {}, expected a file name", index_path.string(), name,
                 file.dump());
        const std::string& file_name = file.get_ref<const std::string&>();
        // Shards live beside the index; a path elsewhere is a corrupt or malicious index.
        if (file_name.empty() || file_name.find('/') != std::string::npos || file_name == "." || file_name == "..")
            fail(kModule, "{}: weight_map entry of tensor '{}' is '{}', expected a file name in the same folder",
                 index_path.string(), name, file_name);
        auto [it, is_new] = shard_index_of_file.emplace(file_name, shards_.size());
        if (is_new) {
            const fs::path shard_path = folder_ / file_name;
            std::error_code ec;
            if (!fs::exists(shard_path, ec))
                fail(kModule, "{}: tensor '{}' is in shard '{}', but {} does not exist", index_path.string(), name,
                     file_name, shard_path.string());
            shards_.emplace_back(shard_path);
        }
        if (!shards_[it->second].contains(name))
            fail(kModule, "{}: tensor '{}' should be in shard {}, but that file has no such tensor",
                 index_path.string(), name, shards_[it->second].path().string());
        shard_of_[name] = it->second;
    }
}

std::vector<std::string> WeightStore::names() const {
    std::vector<std::string> names;
    names.reserve(shard_of_.size());
    for (const auto& [name, shard] : shard_of_) names.push_back(name);
    return names;
}

const SafetensorsFile& WeightStore::shard_holding(const std::string& name) const {
    auto it = shard_of_.find(name);
    if (it == shard_of_.end())
        fail(kModule, "tensor '{}' not found in {} ({} tensors)", name, source_, shard_of_.size());
    return shards_[it->second];
}

const TensorInfo& WeightStore::info(const std::string& name) const { return shard_holding(name).info(name); }

Tensor WeightStore::read_f32(const std::string& name) const { return shard_holding(name).read_f32(name); }

Tensor WeightStore::read_f32(const std::string& name, const Shape& expected_shape) const {
    return shard_holding(name).read_f32(name, expected_shape);
}

void WeightStore::read_f32_into(const std::string& name, const Shape& expected_shape, float* out) const {
    shard_holding(name).read_f32_into(name, expected_shape, out);
}

const std::byte* WeightStore::raw(const std::string& name) const { return shard_holding(name).raw(name); }

void WeightStore::release(const std::string& name) const { shard_holding(name).release(name); }

}  // namespace sinklab
