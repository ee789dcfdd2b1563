// Export: a sinklab model whose design has a Hugging Face equivalent is saved as a folder laid out
// exactly like the fixture of that architecture (tensor names and shapes, config.json keys), and
// sinklab loads its own export back to the same logits. Designs without an equivalent are refused
// with the reason.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "hf_test_support.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/hf_loader.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using test::fixture;
using test::ScratchDir;

// The shapes of the fixture models (tests/fixtures/hf/{gpt2,llama}/config.json).
ModelConfig fixture_shaped(const std::string& style) {
    ModelConfig c = ModelConfig::for_style(style);
    c.vocab_size = 256;
    c.d_model = 64;
    c.n_heads = 4;
    c.max_seq_len = 128;
    if (style == "gpt2") {
        c.n_layers = 2;
        c.n_kv_heads = 4;
        c.d_ff = 256;
        c.tied_embeddings = true;
    } else {
        c.n_layers = 3;
        c.n_kv_heads = 2;
        c.d_ff = 128;
        c.tied_embeddings = false;
    }
    c.init_std = 0.2f;
    return c;
}

// Moves every norm weight and bias off 1 and 0, so that a misplaced one changes the logits.
void randomize(Transformer& model, uint64_t seed) {
    model.init_weights(seed);
    Rng rng(seed + 1);
    for (const auto& p : model.params())
        if (p.shape.size() == 1)
            for (size_t i = 0; i < p.numel; ++i) model.param_data()[p.offset + i] += 0.3f * rng.normal();
}

std::map<std::string, Shape> tensor_shapes(const fs::path& file) {
    const SafetensorsFile f(file);
    std::map<std::string, Shape> shapes;
    for (const auto& name : f.names()) shapes[name] = f.info(name).shape;
    return shapes;
}

// config.json keys, without the bookkeeping transformers adds when it saves.
std::set<std::string> config_keys(const fs::path& file) {
    const nlohmann::json config = read_json_file(file, "test");
    std::set<std::string> keys;
    for (const auto& [key, value] : config.items())
        if (key != "_attn_implementation_autoset" && key != "transformers_version") keys.insert(key);
    return keys;
}

class HfExport : public ::testing::TestWithParam<const char*> {};

TEST_P(HfExport, ExportMatchesTheFixtureLayoutAndReloadsToTheSameLogits) {
    const std::string style = GetParam();
    ScratchDir scratch;
    Transformer model(fixture_shaped(style));
    randomize(model, 17);
    save_model_folder(model, scratch / "run");

    // through a sinklab folder, as `sinklab export --model RUN` does
    auto saved = load_model(scratch / "run");
    EXPECT_EQ(export_hf_folder(*saved, scratch / "hf"), style);
    EXPECT_EQ(tensor_shapes(scratch / "hf" / "model.safetensors"),
              tensor_shapes(fixture("hf/" + style + "/model.safetensors")));
    EXPECT_EQ(config_keys(scratch / "hf" / "config.json"), config_keys(fixture("hf/" + style + "/config.json")));
    EXPECT_EQ(SafetensorsFile(scratch / "hf" / "model.safetensors").metadata().at("format"), "pt");

    ModelInfo info;
    auto reloaded = load_model(scratch / "hf", &info);
    EXPECT_EQ(info.source, "huggingface");
    EXPECT_EQ(info.architecture, style);
    ASSERT_EQ(reloaded->num_params(), model.num_params());
    const std::vector<int32_t> ids = {1, 17, 200, 45, 3, 99, 255, 0, 128, 64};
    const int T = static_cast<int>(ids.size());
    model.forward(ids.data(), nullptr, 1, T, ForwardOptions{false});
    reloaded->forward(ids.data(), nullptr, 1, T, ForwardOptions{false});
    EXPECT_EQ(std::memcmp(model.logits(), reloaded->logits(), static_cast<size_t>(T) * 256 * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(Styles, HfExport, ::testing::Values("gpt2", "llama"),
                         [](const auto& info) { return std::string(info.param); });

// A pretrained model saved as a sinklab folder (as tools that write models do) keeps every extra
// of its configuration: the folder reloads to the same logits.
TEST(SinklabFolders, KeepThePretrainedExtras) {
    ScratchDir scratch;
    for (const char* arch : {"gemma2", "phi3_longrope", "gpt_neox", "olmo", "olmo2", "qwen2", "qwen3", "llama3_rope"}) {
        SCOPED_TRACE(arch);
        auto original = load_model(fixture(std::string("hf/") + arch));
        save_model_folder(*original, scratch / arch);
        ModelInfo info;
        auto reloaded = load_model(scratch / arch, &info);
        EXPECT_EQ(info.source, "sinklab");
        EXPECT_EQ(reloaded->config().to_json(), original->config().to_json());
        const std::vector<int32_t> ids = {1, 17, 200, 45, 3, 99, 255, 0, 128, 64, 77, 12, 5, 180, 33, 250, 2, 91};
        const int T = static_cast<int>(ids.size());
        original->forward(ids.data(), nullptr, 1, T, ForwardOptions{false});
        reloaded->forward(ids.data(), nullptr, 1, T, ForwardOptions{false});
        EXPECT_EQ(std::memcmp(original->logits(), reloaded->logits(), static_cast<size_t>(T) * 256 * sizeof(float)), 0);
    }
}

TEST(HfExportRefusals, DesignsWithoutAnEquivalentSayWhy) {
    ScratchDir scratch;
    auto expect_refused = [&](ModelConfig c, const std::string& phrase) {
        Transformer model(c);
        model.init_weights(1);
        try {
            export_hf_folder(model, scratch / "out");
            ADD_FAILURE() << "exported; expected a refusal mentioning " << phrase;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
        }
        EXPECT_FALSE(fs::exists(scratch / "out"));
    };
    ModelConfig windowed = fixture_shaped("gpt2");
    windowed.window = 8;
    expect_refused(windowed, "window of 8");
    ModelConfig rope_gpt2 = fixture_shaped("gpt2");
    rope_gpt2.positions = PositionKind::rope;
    expect_refused(rope_gpt2, "GPT-2 learns absolute positions");
    ModelConfig biased_llama = fixture_shaped("llama");
    biased_llama.linear_bias = true;
    expect_refused(biased_llama, "down projection only");
    ModelConfig prefix = fixture_shaped("llama");
    prefix.prefix = 4;
    expect_refused(prefix, "prefix-LM");
}

}  // namespace
}  // namespace sinklab
