// Hostile and broken Hugging Face folders: each is rejected by load_model with a sinklab::Error
// that names the file (and the key or tensor) and says what is wrong; none may crash. The folders
// are copies of tests/fixtures/hf/llama with one thing broken.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "hf_test_support.h"
#include "hostile_folder.h"
#include "io/safetensors.h"
#include "model/hf_loader.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::fixture;
using test::ScratchDir;
using test::RawSafetensors;
using test::expect_rejected;
using test::read_bytes;
using test::read_json;
using test::write_bytes;
using test::write_json;

// A copy of the llama fixture (config.json + model.safetensors) in a scratch folder.
fs::path copy_llama(const ScratchDir& scratch, const std::string& name = "llama") {
    return test::copy_fixture_folder(scratch, "hf/llama", name);
}

TEST(HfHostile, TruncatedWeights) {
    ScratchDir scratch;
    const fs::path dir = copy_llama(scratch);
    const std::string bytes = read_bytes(dir / "model.safetensors");
    write_bytes(dir / "model.safetensors", bytes.substr(0, bytes.size() - 1000));
    expect_rejected(dir, "model.safetensors", {"past the end of the data section", "incomplete download"});
    write_bytes(dir / "model.safetensors", bytes.substr(0, 5));
    expect_rejected(dir, "model.safetensors", {"shorter than the 8-byte header length"});
}

TEST(HfHostile, HeaderLongerThanTheFile) {
    ScratchDir scratch;
    const fs::path dir = copy_llama(scratch);
    std::string bytes = read_bytes(dir / "model.safetensors");
    const uint64_t too_long = bytes.size();
    std::memcpy(bytes.data(), &too_long, 8);
    write_bytes(dir / "model.safetensors", bytes);
    expect_rejected(dir, "model.safetensors", {"header length", "larger than the file"});
}

TEST(HfHostile, OverlappingAndOutOfRangeOffsets) {
    ScratchDir scratch;
    const fs::path dir = copy_llama(scratch);
    const RawSafetensors original = RawSafetensors::read(dir / "model.safetensors");
    const std::string a = "model.layers.0.input_layernorm.weight", b = "model.layers.0.post_attention_layernorm.weight";

    RawSafetensors overlapping = original;
    overlapping.header[b]["data_offsets"] = overlapping.header[a]["data_offsets"];  // same size, same bytes
    overlapping.write(dir / "model.safetensors");
    expect_rejected(dir, "model.safetensors", {"overlap", a, b});

    RawSafetensors out_of_range = original;
    const uint64_t size = original.data.size();
    out_of_range.header[a]["data_offsets"] = {size, size + 256};  // 64 floats past the end
    out_of_range.write(dir / "model.safetensors");
    expect_rejected(dir, "model.safetensors", {a, "past the end of the data section"});
}

TEST(HfHostile, DtypeTheConfigDoesNotAllow) {
    ScratchDir scratch;
    const fs::path dir = copy_llama(scratch);
    const SafetensorsFile original(fixture("hf/llama/model.safetensors"));
    SafetensorsWriter writer;
    const std::string odd = "model.layers.1.mlp.up_proj.weight";
    for (const auto& name : original.names()) {
        if (name != odd) {
            writer.add(name, original.read_f32(name));
            continue;
        }
        const Tensor t = original.read_f32(name);
        std::vector<int64_t> ints(t.data(), t.data() + t.numel());
        writer.add_i64(name, ints.data(), t.shape());
    }
    writer.write(dir / "model.safetensors");
    expect_rejected(dir, "model.safetensors", {odd, "stored as I64", "F32, F16 or BF16", "torch_dtype: float32"});
}

TEST(HfHostile, ShapesThatDisagreeWithTheConfig) {
    ScratchDir scratch;
    const fs::path dir = copy_llama(scratch);
    json config = read_json(dir / "config.json");

    config["intermediate_size"] = 96;  // the file holds 128
    write_json(dir / "config.json", config);
    expect_rejected(dir, "model.safetensors", {"model.layers.0.mlp.gate_proj.weight", "has shape [128, 64]",
                                               "the config implies [96, 64]"});

    config = read_json(fixture("hf/llama/config.json"));
    config["num_hidden_layers"] = 2;  // the file has a third layer
    write_json(dir / "config.json", config);
    expect_rejected(dir, "llama", {"unexpected tensor 'model.layers.2."});

    config["num_hidden_layers"] = 4;  // one layer more than the file holds
    write_json(dir / "config.json", config);
    expect_rejected(dir, "config.json", {"parameters", "does not match the weights"});

    config = read_json(fixture("hf/llama/config.json"));
    config["vocab_size"] = 1000000;  // would allocate a 256 MB model before any shape is read
    write_json(dir / "config.json", config);
    expect_rejected(dir, "config.json", {"does not match the weights"});
}

TEST(HfHostile, MalformedConfigs) {
    ScratchDir scratch;
    const fs::path dir = copy_llama(scratch);
    const json good = read_json(fixture("hf/llama/config.json"));
    auto with = [&](const std::function<void(json&)>& edit) {
        json j = good;
        edit(j);
        write_json(dir / "config.json", j);
    };

    write_bytes(dir / "config.json", "{\"model_type\": \"llama\", ");
    expect_rejected(dir, "config.json", {"not valid JSON"});
    write_bytes(dir / "config.json", "[1, 2]");
    expect_rejected(dir, "config.json", {"expected a JSON object"});
    with([](json& j) { j.erase("model_type"); });
    expect_rejected(dir, "config.json", {"no model_type"});
    with([](json& j) { j["model_type"] = "mamba"; });
    expect_rejected(dir, "config.json", {"model_type 'mamba' is not supported", "gpt2", "gemma2", "olmo2", "gpt_neox"});
    with([](json& j) { j.erase("hidden_size"); });
    expect_rejected(dir, "config.json", {"hidden_size is missing"});
    with([](json& j) { j["hidden_size"] = "64"; });
    expect_rejected(dir, "config.json", {"hidden_size must be a positive integer", "\"64\""});
    with([](json& j) { j["num_hidden_layers"] = -2; });
    expect_rejected(dir, "config.json", {"num_hidden_layers must be a positive integer"});
    with([](json& j) { j["vocab_size"] = 1e12; });
    expect_rejected(dir, "config.json", {"vocab_size must be a positive integer"});
    with([](json& j) { j["num_key_value_heads"] = 3; });
    expect_rejected(dir, "config.json", {"num_key_value_heads (3) must divide num_attention_heads (4)"});
    with([](json& j) {
        j.erase("head_dim");
        j["num_attention_heads"] = 5;
        j["num_key_value_heads"] = 5;
    });
    expect_rejected(dir, "config.json", {"must divide hidden_size"});
    with([](json& j) { j["rms_norm_eps"] = "small"; });
    expect_rejected(dir, "config.json", {"rms_norm_eps must be a number"});
    with([](json& j) { j["tie_word_embeddings"] = 1; });
    expect_rejected(dir, "config.json", {"tie_word_embeddings must be true or false"});
    with([](json& j) { j["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2.0}}; });
    expect_rejected(dir, "config.json", {"rope type 'dynamic'", "llama3", "longrope"});
    with([](json& j) { j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}}; });
    expect_rejected(dir, "config.json", {"rope_scaling needs a positive number 'low_freq_factor'"});
    with([](json& j) { j["hidden_act"] = "tanh"; });
    expect_rejected(dir, "config.json", {"hidden_act is 'tanh'"});
    with([](json& j) { j["head_dim"] = 15; });  // odd: RoPE needs pairs
    expect_rejected(dir, "config.json", {"head_dim is 15", "must be even"});
}

TEST(HfHostile, MissingFiles) {
    ScratchDir scratch;
    const fs::path dir = copy_llama(scratch);
    fs::remove(dir / "model.safetensors");
    expect_rejected(dir, "llama", {"neither model.safetensors nor model.safetensors.index.json"});
    EXPECT_THROW(load_model(scratch / "nowhere"), Error);
    write_bytes(scratch / "weights.pt", "not a model");
    expect_rejected(scratch / "weights.pt", "weights.pt", {"llama2.c checkpoint (.bin)"});
}

TEST(HfHostile, ShardedWeightsLoadAndAreChecked) {
    ScratchDir scratch;
    const fs::path dir = copy_llama(scratch);
    fs::remove(dir / "model.safetensors");
    const SafetensorsFile original(fixture("hf/llama/model.safetensors"));
    SafetensorsWriter first, second;
    json weight_map = json::object();
    for (const auto& name : original.names()) {
        const bool early = name.find("layers.2.") == std::string::npos && name != "lm_head.weight";
        (early ? first : second).add(name, original.read_f32(name));
        weight_map[name] = early ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    }
    first.write(dir / "model-00001-of-00002.safetensors");
    second.write(dir / "model-00002-of-00002.safetensors");
    write_json(dir / "model.safetensors.index.json", {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}});

    auto sharded = load_model(dir);
    auto single = load_model(fixture("hf/llama"));
    const std::vector<int32_t> ids = {1, 17, 200, 45, 3};
    sharded->forward(ids.data(), nullptr, 1, 5, ForwardOptions{false});
    single->forward(ids.data(), nullptr, 1, 5, ForwardOptions{false});
    EXPECT_EQ(std::memcmp(sharded->logits(), single->logits(), 5 * 256 * sizeof(float)), 0);

    // an index that puts a tensor in the wrong shard
    weight_map["lm_head.weight"] = "model-00001-of-00002.safetensors";
    write_json(dir / "model.safetensors.index.json", {{"weight_map", weight_map}});
    expect_rejected(dir, "model.safetensors.index.json", {"lm_head.weight", "no such tensor"});
}

}  // namespace
}  // namespace sinklab
