// gpt-oss shapes the fixture does not cover, against sinklab's own PyTorch reference
// (tests/oracle/gpt_oss_reference.py, float64, written from openai/gpt-oss and the Hugging Face
// port, not from sinklab): the script makes a gpt-oss folder (MXFP4 experts, BF16 elsewhere) from a
// spec and its reference outputs; sinklab loads the folder and must match the logits, every layer's
// attention weights with the sink column, hidden states, routing and the greedy ids with and
// without the KV cache.
//
// Cases: 6 query heads on 2 KV heads with head_dim 32 != hidden / heads, 8 experts top-4, sliding
// layers where layer_types puts them (not alternating), truncated YaRN with its own betas; and a
// longer input (160 tokens over a window of 16, multi-query attention, one expert per token, a
// tighter SwiGLU clamp, plain RoPE, the default alternation without layer_types).
// Tolerance: 1e-4 + 1e-4 |reference| per entry, greedy ids exactly.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../oracle/oracle_case.h"
#include "hf_test_support.h"
#include "io/safetensors.h"
#include "model/hf_loader.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::all_close;

constexpr double kAbsTol = 1e-4, kRelTol = 1e-4;

struct OracleSpec {
    std::string name;
    json config;
    int tokens = 0;
    int greedy_steps = 0;
};

std::vector<int> random_ids(int n, int vocab, uint64_t seed) {
    Rng rng(seed);
    std::vector<int> ids(n);
    for (int& id : ids) id = static_cast<int>(rng.below(vocab));
    return ids;
}

std::vector<OracleSpec> specs() {
    std::vector<OracleSpec> s;
    s.push_back({"gqa3_head32_top4_yarn_truncated",
                 {{"vocab_size", 200},
                  {"hidden_size", 96},
                  {"num_hidden_layers", 3},
                  {"num_attention_heads", 6},
                  {"num_key_value_heads", 2},
                  {"head_dim", 32},
                  {"num_local_experts", 8},
                  {"num_experts_per_tok", 4},
                  {"intermediate_size", 64},
                  {"sliding_window", 5},
                  {"layer_types", {"full_attention", "sliding_attention", "sliding_attention"}},
                  {"rope_theta", 10000.0},
                  {"rope_scaling",
                   {{"rope_type", "yarn"},
                    {"factor", 8.0},
                    {"original_max_position_embeddings", 64},
                    {"beta_fast", 16.0},
                    {"beta_slow", 2.0}}},
                  {"max_position_embeddings", 512},
                  {"swiglu_limit", 7.0}},
                 40,
                 6});
    s.push_back({"mqa_top1_long_input_plain_rope",
                 {{"vocab_size", 128},
                  {"hidden_size", 64},
                  {"num_hidden_layers", 2},
                  {"num_attention_heads", 4},
                  {"num_key_value_heads", 1},
                  {"head_dim", 16},
                  {"num_local_experts", 4},
                  {"num_experts_per_tok", 1},
                  {"intermediate_size", 32},
                  {"sliding_window", 16},
                  {"rope_theta", 150000.0},
                  {"max_position_embeddings", 256},
                  {"swiglu_limit", 2.5}},
                 160,
                 6});
    return s;
}

class GptOssOracle : public ::testing::TestWithParam<OracleSpec> {};

TEST_P(GptOssOracle, LogitsAttentionsHiddenStatesRoutingAndGreedyIdsMatchTheReference) {
    const OracleSpec& spec = GetParam();
    test::OracleDir dir(spec.name);
    const std::vector<int> ids = random_ids(spec.tokens, spec.config["vocab_size"], 99);
    {
        std::ofstream(dir.path() / "spec.json")
            << json{{"config", spec.config}, {"seed", 7}, {"weight_scale", 0.1}, {"input_ids", ids},
                    {"greedy_steps", spec.greedy_steps}}
                   .dump();
    }
    const fs::path script = fs::path(SINKLAB_SOURCE_DIR) / "tests" / "oracle" / "gpt_oss_reference.py";
    ASSERT_TRUE(test::run_python_reference(script, {dir.path() / "spec.json", dir.path() / "model"}));

    auto model = load_model(dir.path() / "model");
    const ModelConfig& c = model->config();
    const SafetensorsFile ref(dir.path() / "model" / "reference.safetensors");
    const int T = spec.tokens, L = c.n_layers, H = c.n_heads, D = c.d_model, E = c.moe_experts, K = c.moe_top_k;
    std::vector<int32_t> input(ids.begin(), ids.end());

    test::Taps taps;
    // the materialised kernel: the reference's attention rows are compared entry by entry (160 tokens
    // would take the blockwise kernel, which keeps no weights)
    model->forward(input.data(), nullptr, 1, T, ForwardOptions{false, &taps, AttentionKernel::materialised});
    const Tensor logits = ref.read_f32("logits"), attentions = ref.read_f32("attentions");
    const Tensor hidden = ref.read_f32("hidden_states"), router = ref.read_f32("router_logits");
    const Tensor expert_weights = ref.read_f32("expert_weights");
    const std::vector<int64_t> expert_ids = ref.read_i64("expert_ids");
    ASSERT_EQ(attentions.shape(), (Shape{L, H, T, T + 1}));
    EXPECT_TRUE(all_close(model->logits(), logits.data(), logits.numel(), kAbsTol, kRelTol)) << "logits";
    const size_t TD = static_cast<size_t>(T) * D;
    for (int l = 0; l < L; ++l) {
        const std::vector<float>& weights = taps.get("attn_weights", l);
        const std::vector<float>& sinks = taps.get("attn_slot_weights", l);
        std::vector<float> rows(static_cast<size_t>(H) * T * (T + 1));
        for (size_t row = 0; row < static_cast<size_t>(H) * T; ++row) {
            std::copy(weights.begin() + row * T, weights.begin() + (row + 1) * T, rows.begin() + row * (T + 1));
            rows[row * (T + 1) + T] = sinks[row];
        }
        EXPECT_TRUE(all_close(rows.data(), attentions.data() + l * rows.size(), rows.size(), kAbsTol, kRelTol))
            << "attention weights and sink column of layer " << l;
        if (l + 1 < L) {  // hidden state L is the final norm's output
            EXPECT_TRUE(all_close(taps.get("block_out", l).data(), hidden.data() + (l + 1) * TD, TD, kAbsTol, kRelTol))
                << "hidden state " << l + 1;
        }
        EXPECT_TRUE(all_close(taps.get("router_logits", l).data(), router.data() + static_cast<size_t>(l) * T * E,
                              static_cast<size_t>(T) * E, kAbsTol, kRelTol))
            << "router logits of layer " << l;
        const std::vector<float>& routing = taps.get("router_weights", l);
        for (int t = 0; t < T; ++t)
            for (int k = 0; k < K; ++k) {
                const size_t at = (static_cast<size_t>(l) * T + t) * K + k;
                EXPECT_NEAR(routing[static_cast<size_t>(t) * E + expert_ids[at]], expert_weights[at], kAbsTol)
                    << "layer " << l << " token " << t << " choice " << k;
            }
    }
    EXPECT_TRUE(all_close(taps.get("embed").data(), hidden.data(), TD, kAbsTol, kRelTol)) << "embeddings";
    EXPECT_TRUE(all_close(taps.get("final_norm").data(), hidden.data() + L * TD, TD, kAbsTol, kRelTol)) << "final norm";
    // the blockwise kernel (what probe takes from 64 positions on) gives the same logits
    model->forward(input.data(), nullptr, 1, T, ForwardOptions{false, nullptr, AttentionKernel::blockwise});
    EXPECT_TRUE(all_close(model->logits(), logits.data(), logits.numel(), kAbsTol, kRelTol)) << "logits, blockwise kernel";

    const std::vector<int64_t> greedy = ref.read_i64("greedy_ids");
    const std::vector<int32_t> expected(greedy.begin(), greedy.end());
    EXPECT_EQ(test::greedy_full(*model, input, spec.greedy_steps), expected) << "full recompute";
    EXPECT_EQ(test::greedy_cached(*model, input, spec.greedy_steps), expected) << "KV cache";
}

INSTANTIATE_TEST_SUITE_P(Shapes, GptOssOracle, ::testing::ValuesIn(specs()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace sinklab
