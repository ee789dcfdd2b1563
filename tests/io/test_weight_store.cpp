// WeightStore over a single model.safetensors (the fixtures) and over shards listed by
// model.safetensors.index.json (built here by splitting the llama fixture in two).
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io_test_support.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::fixtures_dir;
using test::ScratchDir;

const fs::path& llama_folder() {
    static const fs::path folder = fixtures_dir() / "hf" / "llama";
    return folder;
}

void expect_same_values(const Tensor& a, const Tensor& b) {
    ASSERT_EQ(a.shape(), b.shape());
    for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a[i], b[i]) << i;
}

TEST(WeightStore, ReadsASingleFile) {
    WeightStore store(llama_folder());
    SafetensorsFile file(llama_folder() / "model.safetensors");
    EXPECT_EQ(store.names(), file.names());
    EXPECT_TRUE(store.contains("model.layers.0.self_attn.q_proj.weight"));
    EXPECT_FALSE(store.contains("model.layers.9.self_attn.q_proj.weight"));
    EXPECT_EQ(store.dtype("model.norm.weight"), DType::F32);
    EXPECT_EQ(store.info("lm_head.weight").shape, (Shape{256, 64}));
    expect_same_values(store.read_f32("model.embed_tokens.weight", {256, 64}),
                       file.read_f32("model.embed_tokens.weight"));
    EXPECT_EQ(WeightStore(fixtures_dir() / "hf" / "llama_bf16").dtype("model.norm.weight"), DType::BF16);

    test::expect_rejected(llama_folder() / "model.safetensors", "tensor 'model.nope' not found in",
                          [&] { store.read_f32("model.nope"); });
    test::expect_rejected(llama_folder() / "model.safetensors", "has shape [64], the config implies [32]",
                          [&] { store.read_f32("model.norm.weight", {32}); });
}

// Splits the llama fixture into two shards (alternating tensors) plus an index, as transformers'
// save_pretrained(max_shard_size=...) lays them out.
json write_sharded_llama(const fs::path& folder) {
    SafetensorsFile source(llama_folder() / "model.safetensors");
    SafetensorsWriter shards[2];
    json weight_map = json::object();
    const std::string shard_names[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    size_t index = 0;
    for (const std::string& name : source.names()) {
        shards[index % 2].add(name, source.read_f32(name));
        weight_map[name] = shard_names[index % 2];
        ++index;
    }
    for (int i = 0; i < 2; ++i) shards[i].write(folder / shard_names[i]);
    json index_json = {{"metadata", {{"total_size", 575232}}}, {"weight_map", weight_map}};
    test::write_bytes(folder / "model.safetensors.index.json", index_json.dump(2));
    return index_json;
}

TEST(WeightStore, ReadsShards) {
    ScratchDir scratch;
    write_sharded_llama(scratch.path());
    WeightStore sharded(scratch.path());
    WeightStore single(llama_folder());
    ASSERT_EQ(sharded.names(), single.names());
    for (const std::string& name : single.names()) {
        SCOPED_TRACE(name);
        EXPECT_EQ(sharded.dtype(name), DType::F32);
        expect_same_values(sharded.read_f32(name, single.info(name).shape), single.read_f32(name));
    }
    test::expect_rejected(scratch / "model.safetensors.index.json", "tensor 'x' not found in",
                          [&] { sharded.read_f32("x"); });
}

class WeightStoreHostile : public ::testing::Test {
protected:
    // A valid sharded folder, then `edit` applied to its index, which must then be rejected.
    void expect_index_rejected(const std::function<void(json&)>& edit, const std::string& phrase) {
        json index = write_sharded_llama(scratch_.path());
        edit(index);
        const fs::path index_path = scratch_ / "model.safetensors.index.json";
        test::write_bytes(index_path, index.dump());
        test::expect_rejected(index_path, phrase, [&] { WeightStore store(scratch_.path()); });
    }
    ScratchDir scratch_;
};

TEST_F(WeightStoreHostile, ShardFileMissing) {
    expect_index_rejected(
        [](json& index) { index["weight_map"]["model.norm.weight"] = "model-00009-of-00009.safetensors"; },
        "tensor 'model.norm.weight' is in shard 'model-00009-of-00009.safetensors', but");
}

TEST_F(WeightStoreHostile, TensorMissingFromItsShard) {
    expect_index_rejected(
        [](json& index) { index["weight_map"]["model.extra.weight"] = "model-00001-of-00002.safetensors"; },
        "tensor 'model.extra.weight' should be in shard");
}

TEST_F(WeightStoreHostile, ShardOutsideTheFolder) {
    expect_index_rejected([](json& index) { index["weight_map"]["model.norm.weight"] = "../model.safetensors"; },
                          "expected a file name in the same folder");
}

TEST_F(WeightStoreHostile, MalformedIndex) {
    expect_index_rejected([](json& index) { index.erase("weight_map"); }, "\"weight_map\" object");
    expect_index_rejected([](json& index) { index["weight_map"] = json::object(); }, "weight_map is empty");
    expect_index_rejected([](json& index) { index["weight_map"]["model.norm.weight"] = 3; },
                          "weight_map entry of tensor 'model.norm.weight' is 3");
    expect_index_rejected([](json& index) { index = json::array(); }, "\"weight_map\" object");
    const fs::path index_path = scratch_ / "model.safetensors.index.json";
    test::write_bytes(index_path, "{\"weight_map\": ");
    test::expect_rejected(index_path, "not valid JSON", [&] { WeightStore store(scratch_.path()); });
}

TEST_F(WeightStoreHostile, CorruptShardIsNamed) {
    write_sharded_llama(scratch_.path());
    const fs::path shard = scratch_ / "model-00002-of-00002.safetensors";
    const std::string bytes = test::read_bytes(shard);
    test::write_bytes(shard, bytes.substr(0, bytes.size() / 2));
    test::expect_rejected(shard, "Perhaps an incomplete download", [&] { WeightStore store(scratch_.path()); });
}

TEST_F(WeightStoreHostile, FolderWithoutWeights) {
    test::expect_rejected(scratch_.path(), "neither model.safetensors nor model.safetensors.index.json",
                          [&] { WeightStore store(scratch_.path()); });
    test::expect_rejected(scratch_ / "absent", "not a folder", [&] { WeightStore store(scratch_ / "absent"); });
}

}  // namespace
}  // namespace sinklab
