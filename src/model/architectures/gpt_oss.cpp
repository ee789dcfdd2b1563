// gpt-oss (OpenAI 2025; openai/gpt-oss gpt_oss/torch/model.py, Hugging Face models/gpt_oss):
// Llama-style pre-norm blocks with q/k/v/o biases, grouped-query attention and head_dim from the
// config, and four things of its own:
// - a learned sink logit per query head (self_attn.sinks): it joins every row's softmax after the
//   causal and window masks, unscaled, and carries no value; sinklab's score_bias design is exactly
//   that (its slot_score parameter);
// - sliding and full layers as layer_types lists them (sliding_window keys, the query included);
// - YaRN RoPE (rope_scaling.cpp);
// - a mixture of experts in every block (ops/moe.h): a router with bias picks num_experts_per_tok
//   of num_local_experts experts and weights them by the softmax of their logits; each expert is
//   a clamped SwiGLU (gate <= swiglu_limit, |up| <= swiglu_limit, gate sigmoid(1.702 gate) (up + 1))
//   with biases. Its matrices come as MXFP4 (`*_blocks`, `*_scales`; quantization_config
//   quant_method mxfp4) and stay MXFP4 in memory; gate and up rows alternate in the checkpoint
//   (even rows gate) and are stored gate rows first, as sinklab's gated MLPs keep them.
#include <fmt/format.h>

#include "model/architectures/architecture.h"
#include "model/architectures/llama_family.h"

namespace sinklab {

namespace {

// transformers' GptOssConfig: the alpha of the clamped SwiGLU is a constant of the architecture.
constexpr float kSwigluAlpha = 1.702f;

void check_quantization(const HfConfig& hf) {
    if (!hf.has("quantization_config"))
        hf.fail("quantization_config",
                "is missing: sinklab reads gpt-oss checkpoints whose experts are MXFP4 (mlp.experts.*_blocks and "
                "*_scales, quant_method mxfp4), as OpenAI publishes them");
    const nlohmann::json& q = hf.at("quantization_config");
    if (!q.is_object() || !q.contains("quant_method") || !q["quant_method"].is_string())
        hf.fail("quantization_config", "must be an object with a string quant_method, got " + q.dump());
    const std::string method = q["quant_method"].get<std::string>();
    if (method != "mxfp4")
        hf.fail("quantization_config.quant_method",
                fmt::format("is '{}'; sinklab reads gpt-oss experts in MXFP4 only (quant_method mxfp4)", method));
}

// layer_types (transformers): "sliding_attention" or "full_attention" per layer; without the key,
// even layers slide (openai/gpt-oss: layer_idx % 2 == 0).
void read_layer_windows(const HfConfig& hf, ModelConfig& c) {
    const int window = c.window;
    c.window = 0;
    std::vector<std::string> types;
    if (hf.has("layer_types")) {
        const nlohmann::json& list = hf.at("layer_types");
        if (!list.is_array() || static_cast<int>(list.size()) != c.n_layers)
            hf.fail("layer_types", fmt::format("must list one type per layer ({} of them), got {}", c.n_layers,
                                               list.dump().substr(0, 200)));
        for (size_t i = 0; i < list.size(); ++i) {
            if (!list[i].is_string())
                hf.fail("layer_types", fmt::format("entry {} is {}, expected \"sliding_attention\" or \"full_attention\"",
                                                   i, list[i].dump()));
            types.push_back(list[i].get<std::string>());
        }
    } else {
        for (int l = 0; l < c.n_layers; ++l) types.push_back(l % 2 == 0 ? "sliding_attention" : "full_attention");
    }
    c.layer_windows.assign(c.n_layers, 0);
    for (int l = 0; l < c.n_layers; ++l) {
        if (types[l] == "full_attention") continue;
        if (types[l] != "sliding_attention")
            hf.fail("layer_types", fmt::format("entry {} is '{}'; gpt-oss layers are \"sliding_attention\" or "
                                               "\"full_attention\"",
                                               l, types[l]));
        if (window == 0) hf.fail("sliding_window", fmt::format("is missing, and layer {} is a sliding layer", l));
        c.layer_windows[l] = window;
    }
}

ModelConfig read_config(const HfConfig& hf) {
    check_quantization(hf);
    ModelConfig c = read_llama_family_config(hf, /*tied_default=*/false);
    c.attention = AttentionSpec::parse("score_bias");
    c.mlp = MlpKind::swiglu_clamped;
    c.swiglu_limit = static_cast<float>(hf.positive_number("swiglu_limit", 7.0));
    c.swiglu_alpha = kSwigluAlpha;
    c.moe_experts = hf.positive_int("num_local_experts");
    // transformers writes num_experts_per_tok, OpenAI's own config experts_per_token
    c.moe_top_k = hf.has("num_experts_per_tok") ? hf.positive_int("num_experts_per_tok")
                                                 : hf.positive_int("experts_per_token");
    if (c.moe_top_k > c.moe_experts)
        hf.fail("num_experts_per_tok",
                fmt::format("({}) exceeds num_local_experts ({})", c.moe_top_k, c.moe_experts));
    for (const auto& [key, size] : {std::pair{"hidden_size", c.d_model}, std::pair{"intermediate_size", c.ff()}})
        if (size % kMxfp4BlockValues != 0)
            hf.fail(key, fmt::format("is {}; the MXFP4 experts' rows come in blocks of 32 values", size));
    read_layer_windows(hf, c);
    return c;
}

std::string hf_name(int l, const char* suffix) { return fmt::format("model.layers.{}.{}", l, suffix); }
std::string own_name(int l, const char* suffix) { return fmt::format("layers.{}.{}", l, suffix); }

void load_layer_extras(WeightLoader& loader, int l) {
    const ModelConfig& c = loader.config();
    const int E = c.moe_experts, F = c.ff();
    loader.copy(hf_name(l, "self_attn.sinks"), own_name(l, "attn.slot_score"));
    loader.copy(hf_name(l, "mlp.router.weight"), own_name(l, "mlp.router"));
    loader.copy(hf_name(l, "mlp.router.bias"), own_name(l, "mlp.router_bias"));
    // checkpoint row 2j is gate j, row 2j + 1 up j; sinklab's row j < F is gate j, row F + j up j
    std::vector<int> source_row(2 * F);
    for (int j = 0; j < F; ++j) {
        source_row[j] = 2 * j;
        source_row[F + j] = 2 * j + 1;
    }
    loader.copy_mxfp4(hf_name(l, "mlp.experts.gate_up_proj_blocks"), hf_name(l, "mlp.experts.gate_up_proj_scales"),
                      own_name(l, "mlp.experts.w_up"), source_row);
    const Tensor bias = loader.take(hf_name(l, "mlp.experts.gate_up_proj_bias"), {E, 2 * F});
    Tensor reordered({E, 2 * F});
    for (int e = 0; e < E; ++e)
        for (int r = 0; r < 2 * F; ++r) reordered[e * 2 * F + r] = bias[e * 2 * F + source_row[r]];
    loader.set(own_name(l, "mlp.experts.b_up"), reordered);
    loader.copy_mxfp4(hf_name(l, "mlp.experts.down_proj_blocks"), hf_name(l, "mlp.experts.down_proj_scales"),
                      own_name(l, "mlp.experts.w_down"));
    loader.copy(hf_name(l, "mlp.experts.down_proj_bias"), own_name(l, "mlp.experts.b_down"));
}

void load_weights(WeightLoader& loader) {
    LlamaFamilyLayout layout;
    layout.dense_mlp = false;
    layout.layer_extras = load_layer_extras;
    load_llama_family_weights(loader, layout);
}

}  // namespace

const Architecture& gpt_oss_architecture() {
    static const Architecture architecture{"gpt_oss", read_config, load_weights};
    return architecture;
}

}  // namespace sinklab
