// Hugging Face encoders (BERT, RoBERTa, XLM-RoBERTa) against the outputs of transformers itself
// (tests/fixtures/hf-encoders/, see tests/fixtures/PROVENANCE.md): masked-LM logits, every layer's
// attention weights and hidden states, and the masked-LM head's hidden state, on one sequence, on a
// right-padded batch of two with its attention mask (every row, the padded ones included, as
// transformers computes them), and on BERT's sentence pair with token types.
//
// Tolerance: |sinklab - reference| <= 1e-4 + 1e-4 |reference| per entry, as for the decoders
// (test_hf_parity.cpp). Padded keys must get weight exactly 0.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hf_test_support.h"
#include "io/safetensors.h"
#include "model/hf_loader.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using test::all_close;
using test::fixture;

constexpr double kAbsTol = 1e-4, kRelTol = 1e-4;

std::vector<int32_t> ids_of(const SafetensorsFile& file, const std::string& name) {
    std::vector<int32_t> ids;
    for (int64_t id : file.read_i64(name)) ids.push_back(static_cast<int32_t>(id));
    return ids;
}

// One forward's outputs against the reference tensors `prefix`logits, `prefix`attentions
// [L,(B,)H,T,T], `prefix`hidden_states [L+1,(B,)T,D] and `prefix`head_transform [(B,)T,D].
void expect_matches(Transformer& model, const SafetensorsFile& ref, const std::string& prefix, int B, int T,
                    const std::vector<int32_t>& ids, const ForwardOptions& extra = {}) {
    const ModelConfig& c = model.config();
    const int L = c.n_layers, H = c.n_heads, D = c.d_model;
    test::Taps taps;
    ForwardOptions options = extra;
    options.training = false;
    options.observer = &taps;
    options.attention_kernel = AttentionKernel::materialised;  // the weights are compared
    model.forward(ids.data(), nullptr, B, T, options);
    const Tensor logits = ref.read_f32(prefix + "logits");
    ASSERT_EQ(logits.numel(), static_cast<int64_t>(B) * T * c.vocab_size);
    EXPECT_TRUE(all_close(model.logits(), logits.data(), logits.numel(), kAbsTol, kRelTol)) << prefix << "logits";
    const Tensor attentions = ref.read_f32(prefix + "attentions");
    const Tensor hidden = ref.read_f32(prefix + "hidden_states");
    const Tensor head = ref.read_f32(prefix + "head_transform");
    const size_t maps = static_cast<size_t>(B) * H * T * T, states = static_cast<size_t>(B) * T * D;
    ASSERT_EQ(attentions.numel(), static_cast<int64_t>(L * maps));
    ASSERT_EQ(hidden.numel(), static_cast<int64_t>((L + 1) * states));
    for (int l = 0; l < L; ++l) {
        EXPECT_TRUE(all_close(taps.get("attn_weights", l).data(), attentions.data() + l * maps, maps, kAbsTol, kRelTol))
            << prefix << "attention weights of layer " << l;
        EXPECT_TRUE(all_close(taps.get("block_out", l).data(), hidden.data() + (l + 1) * states, states, kAbsTol,
                              kRelTol))
            << prefix << "hidden state " << l + 1;
    }
    // hidden_states[0]: the embeddings after their LayerNorm; no final norm after the last block
    EXPECT_TRUE(all_close(taps.get("embed").data(), hidden.data(), states, kAbsTol, kRelTol)) << prefix << "embeddings";
    // the masked-LM head's transform (dense, GELU, LayerNorm), just before the tied decoder
    EXPECT_TRUE(all_close(taps.get("final_norm").data(), head.data(), states, kAbsTol, kRelTol)) << prefix << "head";
}

class HfEncoderParity : public ::testing::TestWithParam<const char*> {};

TEST_P(HfEncoderParity, OneSequenceMatchesTransformers) {
    const std::string arch = GetParam();
    ModelInfo info;
    auto model = load_model(fixture("hf-encoders/" + arch), &info);
    EXPECT_EQ(info.source, "huggingface");
    EXPECT_FALSE(model->config().causal);
    const SafetensorsFile ref(fixture("hf-encoders/" + arch + "/reference.safetensors"));
    const std::vector<int32_t> ids = ids_of(ref, "input_ids");
    expect_matches(*model, ref, "", 1, static_cast<int>(ids.size()), ids);
}

TEST_P(HfEncoderParity, PaddedBatchMatchesTransformersAndPaddedKeysGetZero) {
    const std::string arch = GetParam();
    auto model = load_model(fixture("hf-encoders/" + arch));
    const ModelConfig& c = model->config();
    const SafetensorsFile ref(fixture("hf-encoders/" + arch + "/reference.safetensors"));
    const std::vector<int32_t> ids = ids_of(ref, "batch_input_ids");
    const std::vector<int32_t> mask = ids_of(ref, "batch_attention_mask");
    const int B = 2, T = static_cast<int>(ids.size()) / B;
    std::vector<int> lengths(B, 0);
    for (int b = 0; b < B; ++b)
        for (int t = 0; t < T; ++t) lengths[b] += mask[b * T + t];  // right padding: the ones come first
    ASSERT_EQ(lengths[0], T);
    ASSERT_LT(lengths[1], T);
    ForwardOptions options;
    options.lengths = lengths.data();
    expect_matches(*model, ref, "batch_", B, T, ids, options);

    // Padded keys get weight exactly 0 in every row of every head and layer (the padded rows too).
    test::Taps taps;
    options.observer = &taps;
    options.training = false;
    options.attention_kernel = AttentionKernel::materialised;
    model->forward(ids.data(), nullptr, B, T, options);
    const int H = c.n_heads;
    for (int l = 0; l < c.n_layers; ++l) {
        const std::vector<float>& w = taps.get("attn_weights", l);
        for (int h = 0; h < H; ++h)
            for (int i = 0; i < T; ++i)
                for (int j = lengths[1]; j < T; ++j)
                    ASSERT_EQ(w[((static_cast<size_t>(1) * H + h) * T + i) * T + j], 0.0f)
                        << "layer " << l << " head " << h << " row " << i << " key " << j;
    }

    // The real tokens of the padded sequence see what they see alone (the fixture's padding_invariance).
    const std::vector<int32_t> alone(ids.begin() + T, ids.begin() + T + lengths[1]);
    const int n = lengths[1], V = c.vocab_size;
    std::vector<float> padded_logits(model->logits() + static_cast<size_t>(T) * V,
                                     model->logits() + static_cast<size_t>(T + n) * V);
    model->forward(alone.data(), nullptr, 1, n, ForwardOptions{false});
    EXPECT_TRUE(all_close(padded_logits.data(), model->logits(), padded_logits.size(), 1e-5, 1e-5))
        << "real tokens of the padded sequence against the sequence alone";
}

INSTANTIATE_TEST_SUITE_P(Encoders, HfEncoderParity, ::testing::Values("bert", "roberta", "xlm_roberta"));

TEST(HfEncoders, BertSentencePairWithTokenTypesMatchesTransformers) {
    auto model = load_model(fixture("hf-encoders/bert"));
    const SafetensorsFile ref(fixture("hf-encoders/bert/reference.safetensors"));
    const std::vector<int32_t> ids = ids_of(ref, "pair_input_ids");
    const std::vector<int32_t> types = ids_of(ref, "pair_token_type_ids");
    ForwardOptions options;
    options.token_types = types.data();
    expect_matches(*model, ref, "pair_", 1, static_cast<int>(ids.size()), ids, options);

    // The token types matter: all zeros gives other logits.
    model->forward(ids.data(), nullptr, 1, static_cast<int>(ids.size()), ForwardOptions{false});
    const Tensor logits = ref.read_f32("pair_logits");
    EXPECT_FALSE(all_close(model->logits(), logits.data(), logits.numel(), kAbsTol, kRelTol));
}

TEST(HfEncoders, ConfigMappingStatesTheEncoderDesign) {
    const ModelConfig bert = load_model(fixture("hf-encoders/bert"))->config();
    EXPECT_EQ(bert.norm_placement, NormPlacement::post);
    EXPECT_EQ(bert.mlp, MlpKind::gelu_erf);
    EXPECT_EQ(bert.type_vocab_size, 2);
    EXPECT_EQ(bert.position_offset, 0);
    EXPECT_EQ(bert.max_seq_len, 128);
    EXPECT_TRUE(bert.embed_norm && bert.head_bias && bert.tied_embeddings);
    EXPECT_EQ(bert.head_transform, MlpKind::gelu_erf);
    const ModelConfig roberta = load_model(fixture("hf-encoders/roberta"))->config();
    EXPECT_EQ(roberta.position_offset, 2);  // padding_idx 1 + 1
    EXPECT_EQ(roberta.padding_id, 1);
    EXPECT_EQ(roberta.max_seq_len, 128);    // 130 rows - 2
    EXPECT_EQ(roberta.type_vocab_size, 1);
    // The mapping's config survives sinklab's own config.json.
    const ModelConfig back = ModelConfig::from_json(roberta.to_json(), "roundtrip");
    EXPECT_EQ(back.to_json(), roberta.to_json());
    EXPECT_FALSE(back.causal);
    EXPECT_EQ(back.padding_id, 1);
    EXPECT_EQ(back.head_transform, MlpKind::gelu_erf);
}

TEST(HfEncoders, EncodersRefuseKvCacheStepsAndAreInferenceOnly) {
    auto model = load_model(fixture("hf-encoders/bert"));
    KVCache cache(model->config(), 8);
    const int32_t token = 7;
    const int position = 0;
    try {
        model->forward_step(&token, &position, 1, cache);
        ADD_FAILURE() << "forward_step accepted an encoder";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("encoder"), std::string::npos) << e.what();
    }
    EXPECT_NE(model->config().inference_only_features().find("head_transform"), std::string::npos);
}

// A copy of the BERT fixture with its config.json edited, for the loader's checks.
fs::path edited_bert(const test::ScratchDir& scratch, const std::function<void(nlohmann::json&)>& edit) {
    const fs::path dir = scratch / "bert";
    fs::create_directories(dir);
    for (const char* file : {"config.json", "model.safetensors"}) fs::copy_file(fixture("hf-encoders/bert") / file, dir / file);
    std::ifstream in(dir / "config.json");
    nlohmann::json config = nlohmann::json::parse(in);
    in.close();
    edit(config);
    std::ofstream(dir / "config.json") << config.dump(2);
    return dir;
}

std::string load_error(const fs::path& dir) {
    try {
        load_model(dir);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// type_vocab_size 1 against a (2, 64) table fails at the tensor; 3 asks for more values than the
// file holds and fails before anything is allocated (the loader's size guard). One line each.
TEST(HfEncoders, TypeVocabSizeThatDisagreesWithTheWeightsIsRefused) {
    test::ScratchDir scratch;
    const std::string fewer = load_error(edited_bert(scratch, [](nlohmann::json& c) { c["type_vocab_size"] = 1; }));
    EXPECT_NE(fewer.find("bert.embeddings.token_type_embeddings.weight"), std::string::npos) << fewer;
    EXPECT_NE(fewer.find("[1, 64]"), std::string::npos) << fewer;
    EXPECT_EQ(fewer.find('\n'), std::string::npos) << "one line: " << fewer;
    fs::remove_all(scratch / "bert");
    const std::string more = load_error(edited_bert(scratch, [](nlohmann::json& c) { c["type_vocab_size"] = 3; }));
    EXPECT_NE(more.find("config.json describes a model of"), std::string::npos) << more;
    EXPECT_NE(more.find("does not match the weights"), std::string::npos) << more;
    EXPECT_EQ(more.find('\n'), std::string::npos) << "one line: " << more;
}

TEST(HfEncoders, UnsupportedEncoderSettingsAreRefusedNamingTheKey) {
    test::ScratchDir scratch;
    const std::string relative =
        load_error(edited_bert(scratch, [](nlohmann::json& c) { c["position_embedding_type"] = "relative_key"; }));
    EXPECT_NE(relative.find("position_embedding_type"), std::string::npos) << relative;
    fs::remove_all(scratch / "bert");
    const std::string decoder = load_error(edited_bert(scratch, [](nlohmann::json& c) { c["is_decoder"] = true; }));
    EXPECT_NE(decoder.find("is_decoder"), std::string::npos) << decoder;
}

}  // namespace
}  // namespace sinklab
