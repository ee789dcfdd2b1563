// Encoders against tests/oracle/encoder_reference.py, an independent float64 PyTorch implementation
// of BERT, RoBERTa and DistilBERT written from the published conventions (run with /usr/bin/python3),
// for what the transformers fixtures do not cover: DistilBERT (a random checkpoint the reference
// writes in transformers' layout), longer sequences, both BERT token types at random, RoBERTa's
// padding ids inside a sequence (they take position padding_idx and do not count), batches of three
// lengths, and the masked-LM loss over masked targets. The reference itself matches the fixtures'
// transformers outputs to 4e-6 (checked when it was written; MANIFEST.json's independent float64
// reference agrees to 3.7e-6).
//
// Tolerance: |sinklab - reference| <= 1e-4 + 1e-4 |reference| per entry, as for the fixtures.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../oracle/oracle_case.h"
#include "core/rng.h"
#include "hf_test_support.h"
#include "model/hf_loader.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::all_close;

constexpr double kAbsTol = 1e-4, kRelTol = 1e-4;

fs::path reference_script() { return fs::path(SINKLAB_SOURCE_DIR) / "tests" / "oracle" / "encoder_reference.py"; }

json run_reference(const fs::path& scratch, const fs::path& folder, const json& request) {
    const fs::path in = scratch / "request.json", out = scratch / "reference.json";
    std::ofstream(in) << request.dump();
    const std::string command = std::string(test::kPython) + " '" + reference_script().string() + "' forward '" +
                                folder.string() + "' '" + in.string() + "' '" + out.string() + "'";
    const test::CommandResult r = test::run_command(command);
    EXPECT_EQ(r.exit_code, 0) << command << "\n" << r.output;
    std::ifstream f(out);
    return json::parse(f);
}

struct Batch {
    int B = 0, T = 0;
    std::vector<int32_t> ids, types, targets;  // (B, T)
    std::vector<int> lengths;                  // (B)
};

// Random ids in [first_normal, V) with `lengths` real tokens per sequence and `pad` after them.
Batch random_batch(uint64_t seed, int V, int T, const std::vector<int>& lengths, int first_normal, int pad) {
    Rng rng(seed);
    Batch b;
    b.B = static_cast<int>(lengths.size());
    b.T = T;
    b.lengths = lengths;
    for (int s = 0; s < b.B; ++s)
        for (int t = 0; t < T; ++t) {
            const bool real = t < lengths[s];
            b.ids.push_back(real ? first_normal + static_cast<int32_t>(rng.below(V - first_normal)) : pad);
            b.types.push_back(real && rng.uniform() < 0.5 ? 1 : 0);
            b.targets.push_back(real && rng.uniform() < 0.15 ? static_cast<int32_t>(rng.below(V)) : -1);
        }
    return b;
}

json request_of(const Batch& b, bool types) {
    json ids = json::array(), tt = json::array(), targets = json::array();
    for (int s = 0; s < b.B; ++s) {
        const auto row = [&](const std::vector<int32_t>& v) {
            return std::vector<int32_t>(v.begin() + static_cast<long>(s) * b.T, v.begin() + static_cast<long>(s + 1) * b.T);
        };
        ids.push_back(row(b.ids));
        tt.push_back(row(b.types));
        targets.push_back(row(b.targets));
    }
    json r = {{"ids", ids}, {"lengths", b.lengths}, {"targets", targets}};
    if (types) r["token_types"] = tt;
    return r;
}

// `scratch`: the test's folder for the request and the reference's answer.
void expect_matches_reference(const fs::path& scratch, Transformer& model, const fs::path& folder, const Batch& b,
                              bool types, const std::string& what) {
    SCOPED_TRACE(what);
    const json ref = run_reference(scratch, folder, request_of(b, types));
    const auto vec = [&](const char* key) { return ref.at(key).get<std::vector<float>>(); };
    const std::vector<float> logits = vec("logits"), maps = vec("attentions"), hidden = vec("hidden_states");
    const ModelConfig& c = model.config();
    const size_t plane = static_cast<size_t>(b.B) * c.n_heads * b.T * b.T, states = static_cast<size_t>(b.B) * b.T * c.d_model;
    ASSERT_EQ(logits.size(), static_cast<size_t>(b.B) * b.T * c.vocab_size);
    // Both kernels read the mask (bidirectional, the key lengths of the padded batch); the blockwise
    // one keeps no weights, so its attention is checked through the hidden states it produces.
    for (AttentionKernel kernel : {AttentionKernel::materialised, AttentionKernel::blockwise}) {
        SCOPED_TRACE(attention_kernel_name(kernel));
        test::Taps taps;
        ForwardOptions options{false, &taps};
        options.attention_kernel = kernel;
        options.lengths = b.lengths.data();
        if (types) options.token_types = b.types.data();
        const double loss = model.forward(b.ids.data(), b.targets.data(), b.B, b.T, options);
        EXPECT_TRUE(all_close(model.logits(), logits.data(), logits.size(), kAbsTol, kRelTol)) << "logits";
        EXPECT_TRUE(all_close(taps.get("embed").data(), hidden.data(), states, kAbsTol, kRelTol)) << "embeddings";
        for (int l = 0; l < c.n_layers; ++l) {
            if (kernel == AttentionKernel::materialised) {
                EXPECT_TRUE(all_close(taps.get("attn_weights", l).data(), maps.data() + l * plane, plane, kAbsTol,
                                      kRelTol))
                    << "attention of layer " << l;
            }
            EXPECT_TRUE(all_close(taps.get("block_out", l).data(), hidden.data() + (l + 1) * states, states, kAbsTol,
                                  kRelTol))
                << "hidden state " << l + 1;
        }
        EXPECT_TRUE(all_close(taps.get("final_norm").data(), vec("head").data(), states, kAbsTol, kRelTol)) << "head";
        const double ref_loss = ref.at("loss").get<double>();
        EXPECT_NEAR(loss, ref_loss, 1e-4 * std::abs(ref_loss)) << "masked-LM loss";
    }
}

TEST(EncoderOracle, BertLongPaddedBatchWithRandomTokenTypes) {
    const fs::path folder = test::fixture("hf-encoders/bert");
    auto model = load_model(folder);
    test::ScratchDir scratch;
    expect_matches_reference(scratch.path(), *model, folder, random_batch(1, 563, 100, {100, 57, 9}, 7, 0), true, "bert");
}

TEST(EncoderOracle, RobertaPaddingIdsInsideASequenceKeepTheirPositionRow) {
    const fs::path folder = test::fixture("hf-encoders/roberta");
    auto model = load_model(folder);
    Batch b = random_batch(2, 320, 60, {60, 31}, 4, 1);
    for (int t : {5, 6, 20}) b.ids[t] = 1;  // <pad> ids among the real tokens of sequence 0
    test::ScratchDir scratch;
    expect_matches_reference(scratch.path(), *model, folder, b, false, "roberta");
}

TEST(EncoderOracle, XlmRobertaBatch) {
    const fs::path folder = test::fixture("hf-encoders/xlm_roberta");
    auto model = load_model(folder);
    test::ScratchDir scratch;
    expect_matches_reference(scratch.path(), *model, folder, random_batch(3, 1000, 128, {128, 100, 2}, 4, 1), false,
                             "xlm-roberta");
}

TEST(EncoderOracle, DistilBertCheckpointMatchesTheReference) {
    test::ScratchDir scratch;
    const fs::path folder = scratch / "distilbert";
    const std::string command = std::string(test::kPython) + " '" + reference_script().string() +
                                "' make-distilbert '" + folder.string() + "' 11";
    const test::CommandResult made = test::run_command(command);
    ASSERT_EQ(made.exit_code, 0) << command << "\n" << made.output;
    ModelInfo info;
    auto model = load_model(folder, &info);
    EXPECT_EQ(info.architecture, "distilbert");
    const ModelConfig& c = model->config();
    EXPECT_FALSE(c.causal);
    EXPECT_EQ(c.type_vocab_size, 0);
    EXPECT_EQ(c.norm_eps, 1e-12f);
    expect_matches_reference(scratch.path(), *model, folder, random_batch(4, c.vocab_size, 40, {40, 23, 5}, 0, 0), false,
                             "distilbert");
}

}  // namespace
}  // namespace sinklab
