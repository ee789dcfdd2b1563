// Reading the Hugging Face fixtures (written by the Python safetensors library), converting every
// dtype, and writing files that follow the format's layout exactly.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/rng.h"
#include "io/half.h"
#include "io_test_support.h"
#include "io/safetensors.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::fixtures_dir;
using test::ScratchDir;

json read_json(const fs::path& path) { return json::parse(test::read_bytes(path)); }

// config.json spells the sizes differently per architecture (GPT-2 uses n_layer, n_head).
int64_t config_int(const json& config, std::initializer_list<const char*> keys) {
    for (const char* key : keys)
        if (config.contains(key)) return config[key].get<int64_t>();
    ADD_FAILURE() << "config.json has none of the expected keys";
    return 0;
}

TEST(SafetensorsFixtures, EveryModelMatchesItsManifest) {
    const json manifest = read_json(fixtures_dir() / "hf" / "MANIFEST.json");
    ASSERT_EQ(manifest["models"].size(), 15u);
    for (const auto& [arch, entry] : manifest["models"].items()) {
        SCOPED_TRACE(arch);
        SafetensorsFile weights(fixtures_dir() / "hf" / arch / "model.safetensors");
        EXPECT_EQ(weights.metadata().at("format"), "pt");
        const std::string expected_dtype = entry.value("weights_dtype", "float32");
        int64_t num_params = 0;
        for (const std::string& name : weights.names()) {
            const TensorInfo& info = weights.info(name);
            EXPECT_EQ(dtype_name(info.dtype), expected_dtype == "bfloat16" ? "BF16"
                                              : expected_dtype == "float16" ? "F16"
                                                                            : "F32")
                << name;
            const Tensor tensor = weights.read_f32(name);
            EXPECT_EQ(tensor.shape(), info.shape);
            for (int64_t i = 0; i < tensor.numel(); ++i) ASSERT_TRUE(std::isfinite(tensor[i])) << name;
            num_params += tensor.numel();
        }
        if (entry.contains("num_tensors")) {
            EXPECT_EQ(static_cast<int64_t>(weights.names().size()), entry["num_tensors"].get<int64_t>());
            EXPECT_EQ(num_params, entry["num_params"].get<int64_t>());
        }
        for (const std::string& dropped : entry.value("dropped_tied", std::vector<std::string>{}))
            EXPECT_FALSE(weights.contains(dropped));
    }
}

TEST(SafetensorsFixtures, EveryReferenceHasTheDocumentedLayout) {
    const json manifest = read_json(fixtures_dir() / "hf" / "MANIFEST.json");
    const auto input_ids = manifest["input_ids"].get<std::vector<int64_t>>();
    const auto T = static_cast<int64_t>(input_ids.size());
    for (const auto& [arch, entry] : manifest["models"].items()) {
        SCOPED_TRACE(arch);
        const fs::path folder = fixtures_dir() / "hf" / arch;
        const json config = read_json(folder / "config.json");
        const int64_t L = config_int(config, {"num_hidden_layers", "n_layer"});
        const int64_t NH = config_int(config, {"num_attention_heads", "n_head"});
        const int64_t D = config_int(config, {"hidden_size", "n_embd"});
        const int64_t V = config_int(config, {"vocab_size"});

        SafetensorsFile reference(folder / "reference.safetensors");
        EXPECT_EQ(reference.metadata().at("arch"), arch);
        EXPECT_EQ(reference.info("input_ids").dtype, DType::I64);
        EXPECT_EQ(reference.info("input_ids").shape, Shape{T});
        EXPECT_EQ(reference.read_i64("input_ids"), input_ids);
        EXPECT_EQ(reference.info("greedy_ids").dtype, DType::I64);
        EXPECT_EQ(reference.read_i64("greedy_ids"), entry["greedy_ids"].get<std::vector<int64_t>>());

        const Tensor logits = reference.read_f32("logits", {T, V});
        if (entry.contains("logits_sample")) {  // the first logits of the last position, to 6 decimals
            const auto sample = entry["logits_sample"].get<std::vector<float>>();
            for (size_t i = 0; i < sample.size(); ++i) EXPECT_NEAR(logits[(T - 1) * V + i], sample[i], 1e-5) << i;
        }
        const Tensor attentions = reference.read_f32("attentions", {L, NH, T, T});
        // Softmax rows sum to one: the floats were read in the right order and format.
        for (int64_t row = 0; row < L * NH * T; ++row) {
            double sum = 0;
            for (int64_t j = 0; j < T; ++j) sum += attentions[row * T + j];
            ASSERT_NEAR(sum, 1.0, 1e-5) << "row " << row;
        }
        reference.read_f32("hidden_states", {L + 1, T, D});
        reference.read_f32("layer_outputs", {L, T, D});
        reference.read_f32("greedy_logits", {8, V});
    }
}

// The BF16/F16 fixtures hold the F32 llama weights rounded by PyTorch: rounding the F32 weights
// with sinklab must give the stored bits exactly, and widening them must give their exact value.
void expect_rounded_copy_of_llama(const std::string& arch, DType dtype, uint16_t (*narrow)(float),
                                  float (*widen)(uint16_t)) {
    SafetensorsFile f32(fixtures_dir() / "hf" / "llama" / "model.safetensors");
    SafetensorsFile rounded(fixtures_dir() / "hf" / arch / "model.safetensors");
    ASSERT_EQ(rounded.names(), f32.names());
    for (const std::string& name : f32.names()) {
        SCOPED_TRACE(name);
        ASSERT_EQ(rounded.info(name).dtype, dtype);
        ASSERT_EQ(rounded.info(name).shape, f32.info(name).shape);
        const Tensor original = f32.read_f32(name);
        const Tensor widened = rounded.read_f32(name);
        const std::byte* stored = rounded.raw(name);
        for (int64_t i = 0; i < original.numel(); ++i) {
            uint16_t bits;
            std::memcpy(&bits, stored + 2 * i, 2);
            ASSERT_EQ(narrow(original[i]), bits) << "element " << i << " = " << original[i];
            ASSERT_EQ(widened[i], widen(bits));
        }
    }
}

TEST(SafetensorsFixtures, Bf16WeightsAreTheF32WeightsRoundedToNearestEven) {
    expect_rounded_copy_of_llama("llama_bf16", DType::BF16, f32_to_bf16, bf16_to_f32);
}

TEST(SafetensorsFixtures, F16WeightsAreTheF32WeightsRoundedToNearestEven) {
    expect_rounded_copy_of_llama("llama_f16", DType::F16, f32_to_f16, f16_to_f32);
}

TEST(SafetensorsFile, ReadsEveryDtype) {
    ScratchDir scratch;
    // One tensor per dtype, bytes written by hand (little-endian).
    std::string data;
    auto append = [&data](const auto& values) {
        data.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(values[0]));
    };
    append(std::vector<double>{0.1, -2.5});                                      // F64 [0, 16)
    append(std::vector<int32_t>{-7, 2147483647});                                // I32 [16, 24)
    append(std::vector<int16_t>{-300, 300});                                     // I16 [24, 28)
    append(std::vector<int8_t>{-128, 127});                                      // I8 [28, 30)
    append(std::vector<uint8_t>{0, 255});                                        // U8 [30, 32)
    append(std::vector<uint8_t>{1, 0});                                          // BOOL [32, 34)
    append(std::vector<uint16_t>{0x0001, 0xFC00, 0x3C00, 0x7BFF});              // F16 [34, 42)
    append(std::vector<uint16_t>{0x3F80, 0xC040});                               // BF16 [42, 46)
    append(std::vector<int64_t>{-(int64_t{1} << 40), 3});                        // I64 [46, 62), unaligned
    const std::string header = R"({"f64":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},)"
                               R"("i32":{"dtype":"I32","shape":[2],"data_offsets":[16,24]},)"
                               R"("i16":{"dtype":"I16","shape":[2],"data_offsets":[24,28]},)"
                               R"("i8":{"dtype":"I8","shape":[2],"data_offsets":[28,30]},)"
                               R"("u8":{"dtype":"U8","shape":[2],"data_offsets":[30,32]},)"
                               R"("bool":{"dtype":"BOOL","shape":[2],"data_offsets":[32,34]},)"
                               R"("f16":{"dtype":"F16","shape":[2,2],"data_offsets":[34,42]},)"
                               R"("bf16":{"dtype":"BF16","shape":[2],"data_offsets":[42,46]},)"
                               R"("i64":{"dtype":"I64","shape":[2],"data_offsets":[46,62]},)"
                               R"("empty":{"dtype":"F32","shape":[0,5],"data_offsets":[62,62]}})";
    const fs::path path = scratch / "dtypes.safetensors";
    test::write_bytes(path, test::le_u64(header.size()) + header + data);
    SafetensorsFile file(path);

    EXPECT_EQ(file.read_f32("f64")[0], 0.1f);
    EXPECT_EQ(file.read_f32("f64")[1], -2.5f);
    EXPECT_EQ(file.read_i64("i32"), (std::vector<int64_t>{-7, 2147483647}));
    EXPECT_EQ(file.read_i64("i16"), (std::vector<int64_t>{-300, 300}));
    EXPECT_EQ(file.read_i64("i8"), (std::vector<int64_t>{-128, 127}));
    EXPECT_EQ(file.read_i64("u8"), (std::vector<int64_t>{0, 255}));
    EXPECT_EQ(file.read_i64("bool"), (std::vector<int64_t>{1, 0}));
    EXPECT_EQ(file.read_i64("i64"), (std::vector<int64_t>{-(int64_t{1} << 40), 3}));
    EXPECT_EQ(file.read_f32("i16")[0], -300.0f);
    EXPECT_EQ(file.read_f32("bool")[0], 1.0f);
    const Tensor f16 = file.read_f32("f16");
    EXPECT_EQ(f16.shape(), (Shape{2, 2}));
    EXPECT_EQ(f16[0], 0x1p-24f);  // smallest subnormal
    EXPECT_EQ(f16[1], -std::numeric_limits<float>::infinity());
    EXPECT_EQ(f16[2], 1.0f);
    EXPECT_EQ(f16[3], 65504.0f);
    EXPECT_EQ(file.read_f32("bf16")[0], 1.0f);
    EXPECT_EQ(file.read_f32("bf16")[1], -3.0f);
    EXPECT_EQ(file.read_f32("empty").shape(), (Shape{0, 5}));
    EXPECT_EQ(file.info("i64").byte_size(), 16u);
    EXPECT_EQ(file.info("i64").numel(), 2);
    EXPECT_EQ(std::memcmp(file.raw("i8"), data.data() + 28, 2), 0);

    test::expect_rejected(path, "expected an integer dtype", [&] { file.read_i64("f16"); });
    test::expect_rejected(path, "no tensor named 'missing'", [&] { file.read_f32("missing"); });
    try {
        file.read_f32("f16", {4});
        ADD_FAILURE() << "shape mismatch accepted";
    } catch (const Error& e) {
        const std::string expected = "tensor f16 in " + path.string() + " has shape [2, 2], the config implies [4]";
        EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
}

// Random tensors of assorted shapes (a scalar and an empty one included), plus an I64 tensor.
SafetensorsWriter make_writer(std::map<std::string, Tensor>& tensors) {
    Rng rng(7);
    for (const auto& [name, shape] : std::vector<std::pair<std::string, Shape>>{
             {"b.weight", {3, 5}}, {"a.bias", {7}}, {"scalar", {}}, {"empty", {0, 4}}, {"c.big", {4, 8, 3}}}) {
        Tensor t(shape);
        for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(rng.normal() * 3.0);
        tensors.emplace(name, std::move(t));
    }
    tensors.at("a.bias")[0] = 1e-6f;  // an F16 subnormal
    tensors.at("a.bias")[1] = 1e6f;   // beyond the F16 range
    SafetensorsWriter writer;
    for (const auto& [name, tensor] : tensors) writer.add(name, tensor);
    writer.add_i64("ids", {5, -1, int64_t{1} << 50});
    writer.set_metadata("format", "pt");
    writer.set_metadata("note", "written by test_safetensors");
    return writer;
}

TEST(SafetensorsWriter, RoundTripsInEveryStorageDtype) {
    ScratchDir scratch;
    std::map<std::string, Tensor> tensors;
    const SafetensorsWriter writer = make_writer(tensors);
    for (DType storage : {DType::F32, DType::F16, DType::BF16}) {
        SCOPED_TRACE(dtype_name(storage));
        const fs::path path = scratch / (std::string(dtype_name(storage)) + ".safetensors");
        writer.write(path, storage);
        SafetensorsFile file(path);
        EXPECT_EQ(file.metadata().at("note"), "written by test_safetensors");
        EXPECT_EQ(file.read_i64("ids"), (std::vector<int64_t>{5, -1, int64_t{1} << 50}));
        EXPECT_EQ(file.names().size(), tensors.size() + 1);
        for (const auto& [name, original] : tensors) {
            EXPECT_EQ(file.info(name).dtype, storage);
            const Tensor back = file.read_f32(name, original.shape());
            for (int64_t i = 0; i < original.numel(); ++i) {
                const float expected = storage == DType::F32   ? original[i]
                                       : storage == DType::F16 ? f16_to_f32(f32_to_f16(original[i]))
                                                               : bf16_to_f32(f32_to_bf16(original[i]));
                ASSERT_EQ(back[i], expected) << name << "[" << i << "]";
            }
        }
    }
    // Nothing but the three files is left behind (the temporary files were renamed).
    EXPECT_EQ(std::distance(fs::directory_iterator(scratch.path()), fs::directory_iterator()), 3);
}

// The layout the format's reference implementation produces and requires: header length, header
// JSON padded with spaces to 8 bytes, tensors packed in name order from offset 0 to the file's end.
TEST(SafetensorsWriter, WritesTheCanonicalByteLayout) {
    ScratchDir scratch;
    std::map<std::string, Tensor> tensors;
    const fs::path path = scratch / "layout.safetensors";
    make_writer(tensors).write(path, DType::BF16);
    const std::string bytes = test::read_bytes(path);

    uint64_t header_size = 0;
    std::memcpy(&header_size, bytes.data(), 8);
    ASSERT_EQ(header_size % 8, 0u);
    ASSERT_LE(8 + header_size, bytes.size());
    const std::string header_text = bytes.substr(8, header_size);
    ASSERT_EQ(header_text.front(), '{');
    const size_t json_end = header_text.find_last_not_of(' ') + 1;
    EXPECT_EQ(header_text[json_end - 1], '}');
    EXPECT_LT(header_size - json_end, 8u);  // only padding spaces after the JSON

    // Keys in sorted order in the text itself (not just after parsing).
    std::vector<std::string> keys_in_text;
    const json header = json::parse(header_text);
    for (const auto& [key, value] : header.items()) keys_in_text.push_back(key);
    size_t previous_position = 0;
    for (const std::string& key : keys_in_text) {
        const size_t position = header_text.find("\"" + key + "\":");
        ASSERT_NE(position, std::string::npos) << key;
        EXPECT_GE(position, previous_position) << key;
        previous_position = position;
    }
    EXPECT_EQ(header["__metadata__"], (json{{"format", "pt"}, {"note", "written by test_safetensors"}}));

    uint64_t expected_begin = 0;
    std::vector<std::string> tensor_names;
    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") continue;
        tensor_names.push_back(name);
        const auto offsets = entry["data_offsets"].get<std::vector<uint64_t>>();
        EXPECT_EQ(offsets[0], expected_begin) << name;  // packed, in name order
        expected_begin = offsets[1];
        EXPECT_EQ(entry["dtype"], name == "ids" ? "I64" : "BF16");
    }
    EXPECT_TRUE(std::is_sorted(tensor_names.begin(), tensor_names.end()));
    EXPECT_EQ(8 + header_size + expected_begin, bytes.size());
    EXPECT_EQ(header["c.big"]["shape"], json({4, 8, 3}));
    EXPECT_EQ(header["scalar"]["shape"], json::array());

    // The first BF16 value of a.bias (1e-6) sits at the start of the data section.
    uint16_t first;
    std::memcpy(&first, bytes.data() + 8 + header_size, 2);
    EXPECT_EQ(first, f32_to_bf16(1e-6f));
}

TEST(SafetensorsWriter, RejectsInvalidRequests) {
    ScratchDir scratch;
    SafetensorsWriter writer;
    const float values[2] = {1, 2};
    writer.add("x", values, {2});
    EXPECT_THROW(writer.add("x", values, {2}), Error);
    EXPECT_THROW(writer.add("__metadata__", values, {2}), Error);
    EXPECT_THROW(writer.add("", values, {2}), Error);
    test::expect_rejected(scratch / "x.safetensors", "not I64",
                          [&] { writer.write(scratch / "x.safetensors", DType::I64); });
    test::expect_rejected(scratch / "missing" / "x.safetensors", "cannot write",
                          [&] { writer.write(scratch / "missing" / "x.safetensors"); });
}

}  // namespace
}  // namespace sinklab
