// GPT-2: LayerNorm, learned absolute positions, GELU (tanh), biases everywhere, weights tied.
// Its Conv1D layers store weights [in, out], the transpose of nn.Linear's. Also the target of
// `sinklab export` for gpt2-style sinklab models.
#include <algorithm>

#include "core/error.h"
#include "model/architectures/architecture.h"

namespace sinklab {

namespace {

MlpKind mlp_of(const HfConfig& hf) {
    const std::string act = hf.string("activation_function", "gelu_new");
    if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") return MlpKind::gelu;
    if (act == "gelu") return MlpKind::gelu_erf;
    if (act == "relu") return MlpKind::relu;
    hf.fail("activation_function", "is '" + act + "' (supported: gelu_new, gelu_pytorch_tanh, gelu, relu)");
}

ModelConfig read_config(const HfConfig& hf) {
    ModelConfig c = ModelConfig::for_style("gpt2");
    c.vocab_size = hf.positive_int("vocab_size");
    c.d_model = hf.positive_int("n_embd");
    c.n_layers = hf.positive_int("n_layer");
    c.n_heads = hf.positive_int("n_head");
    c.n_kv_heads = c.n_heads;
    if (c.d_model % c.n_heads != 0)
        hf.fail("n_head", fmt::format("({}) must divide n_embd ({})", c.n_heads, c.d_model));
    c.d_ff = hf.positive_int("n_inner", 4 * c.d_model);
    c.max_seq_len = hf.positive_int("n_positions");
    c.norm_eps = static_cast<float>(hf.positive_number("layer_norm_epsilon", 1e-5));
    c.mlp = mlp_of(hf);
    c.tied_embeddings = hf.boolean("tie_word_embeddings", true);
    c.init_std = static_cast<float>(hf.positive_number("initializer_range", 0.02));
    // scale_attn_weights=false leaves the scores unscaled
    if (!hf.boolean("scale_attn_weights", true)) c.attention.scale = 1.0f;
    if (hf.boolean("scale_attn_by_inverse_layer_idx", false))
        hf.fail("scale_attn_by_inverse_layer_idx", "is true; sinklab scales every layer's scores alike");
    return c;
}

void load_weights(WeightLoader& loader) {
    const ModelConfig& c = loader.config();
    // GPT2LMHeadModel saves "transformer.h.0...", the original OpenAI conversion "h.0..."
    const std::string root = loader.has("transformer.wte.weight") ? "transformer." : "";
    loader.copy(root + "wte.weight", "embed.tokens");
    loader.copy(root + "wpe.weight", "embed.positions");
    for (int l = 0; l < c.n_layers; ++l) {
        const std::string hf = fmt::format("{}h.{}.", root, l), own = fmt::format("layers.{}.", l);
        loader.copy(hf + "ln_1.weight", own + "attn_norm.weight");
        loader.copy(hf + "ln_1.bias", own + "attn_norm.bias");
        loader.split_transposed(hf + "attn.c_attn.weight", {own + "attn.wq", own + "attn.wk", own + "attn.wv"});
        loader.split_rows(hf + "attn.c_attn.bias", {own + "attn.bq", own + "attn.bk", own + "attn.bv"});
        loader.split_transposed(hf + "attn.c_proj.weight", {own + "attn.wo"});
        loader.copy(hf + "attn.c_proj.bias", own + "attn.bo");
        loader.copy(hf + "ln_2.weight", own + "mlp_norm.weight");
        loader.copy(hf + "ln_2.bias", own + "mlp_norm.bias");
        loader.split_transposed(hf + "mlp.c_fc.weight", {own + "mlp.w_up"});
        loader.copy(hf + "mlp.c_fc.bias", own + "mlp.b_up");
        loader.split_transposed(hf + "mlp.c_proj.weight", {own + "mlp.w_down"});
        loader.copy(hf + "mlp.c_proj.bias", own + "mlp.b_down");
        // the causal mask buffers older checkpoints saved
        loader.skip_if_present(hf + "attn.bias");
        loader.skip_if_present(hf + "attn.masked_bias");
    }
    loader.copy(root + "ln_f.weight", "final_norm.weight");
    loader.copy(root + "ln_f.bias", "final_norm.bias");
    if (c.tied_embeddings)
        loader.skip_if_present("lm_head.weight");
    else
        loader.copy("lm_head.weight", "lm_head");
}

// (rows, cols) -> (cols, rows): nn.Linear's layout to Conv1D's.
Tensor transposed(const Tensor& t) {
    const int64_t rows = t.dim(0), cols = t.dim(1);
    Tensor out({cols, rows});
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = t[r * cols + c];
    return out;
}

// Rows of several tensors stacked, then transposed to Conv1D's [in, out]: fused c_attn.
Tensor stacked_transposed(const std::vector<Tensor>& parts) {
    int64_t rows = 0;
    for (const auto& p : parts) rows += p.dim(0);
    Tensor stacked({rows, parts.front().dim(1)});
    float* cursor = stacked.data();
    for (const auto& p : parts) cursor = std::copy_n(p.data(), p.numel(), cursor);
    return transposed(stacked);
}

Tensor concatenated(const std::vector<Tensor>& parts) {
    int64_t n = 0;
    for (const auto& p : parts) n += p.numel();
    Tensor out({n});
    float* cursor = out.data();
    for (const auto& p : parts) cursor = std::copy_n(p.data(), p.numel(), cursor);
    return out;
}

std::string export_model(const Transformer& model, HfFolder& out) {
    const ModelConfig& c = model.config();
    if (c.norm != NormKind::layernorm) return "GPT-2 normalises with LayerNorm, this model with " + to_string(c.norm);
    if (c.positions != PositionKind::learned)
        return "GPT-2 learns absolute positions, this model uses '" + to_string(c.positions) + "' positions";
    if (c.mlp != MlpKind::gelu) return "GPT-2's MLP is GELU (tanh), this model's " + to_string(c.mlp);
    if (!c.linear_bias || !c.has_qkv_bias() || !c.has_out_bias()) return "GPT-2 has biases on every projection";
    if (c.n_kv_heads != c.n_heads) return "GPT-2 has no grouped-query attention";
    if (c.hs() * c.n_heads != c.d_model) return "GPT-2's heads split the model width exactly (head_dim = C / heads)";
    if (c.window > 0) return "GPT-2 attends to the whole context, this model to a window of " + std::to_string(c.window);
    if (std::string extra = unexportable_features(c); !extra.empty()) return extra;

    out.config = {{"activation_function", "gelu_new"},
                  {"architectures", {"GPT2LMHeadModel"}},
                  {"attn_pdrop", 0.0},
                  {"bos_token_id", nullptr},
                  {"embd_pdrop", 0.0},
                  {"eos_token_id", nullptr},
                  {"initializer_range", config_number(c.init_std)},
                  {"layer_norm_epsilon", config_number(c.norm_eps)},
                  {"model_type", "gpt2"},
                  {"n_embd", c.d_model},
                  {"n_head", c.n_heads},
                  {"n_inner", c.ff()},
                  {"n_layer", c.n_layers},
                  {"n_positions", c.max_seq_len},
                  {"reorder_and_upcast_attn", false},
                  {"resid_pdrop", 0.0},
                  {"scale_attn_by_inverse_layer_idx", false},
                  {"scale_attn_weights", true},
                  {"summary_activation", nullptr},
                  {"summary_first_dropout", 0.0},
                  {"summary_proj_to_labels", true},
                  {"summary_type", "cls_index"},
                  {"summary_use_proj", true},
                  {"torch_dtype", "float32"},
                  {"use_cache", true},
                  {"vocab_size", c.vocab_size}};
    if (!c.tied_embeddings) out.config["tie_word_embeddings"] = false;
    auto tensor = [&](const std::string& param) { return parameter_tensor(model, param); };
    auto& t = out.tensors;
    t["transformer.wte.weight"] = tensor("embed.tokens");
    t["transformer.wpe.weight"] = tensor("embed.positions");
    for (int l = 0; l < c.n_layers; ++l) {
        const std::string hf = fmt::format("transformer.h.{}.", l), own = fmt::format("layers.{}.", l);
        t[hf + "ln_1.weight"] = tensor(own + "attn_norm.weight");
        t[hf + "ln_1.bias"] = tensor(own + "attn_norm.bias");
        t[hf + "attn.c_attn.weight"] =
            stacked_transposed({tensor(own + "attn.wq"), tensor(own + "attn.wk"), tensor(own + "attn.wv")});
        t[hf + "attn.c_attn.bias"] = concatenated({tensor(own + "attn.bq"), tensor(own + "attn.bk"), tensor(own + "attn.bv")});
        t[hf + "attn.c_proj.weight"] = transposed(tensor(own + "attn.wo"));
        t[hf + "attn.c_proj.bias"] = tensor(own + "attn.bo");
        t[hf + "ln_2.weight"] = tensor(own + "mlp_norm.weight");
        t[hf + "ln_2.bias"] = tensor(own + "mlp_norm.bias");
        t[hf + "mlp.c_fc.weight"] = transposed(tensor(own + "mlp.w_up"));
        t[hf + "mlp.c_fc.bias"] = tensor(own + "mlp.b_up");
        t[hf + "mlp.c_proj.weight"] = transposed(tensor(own + "mlp.w_down"));
        t[hf + "mlp.c_proj.bias"] = tensor(own + "mlp.b_down");
    }
    t["transformer.ln_f.weight"] = tensor("final_norm.weight");
    t["transformer.ln_f.bias"] = tensor("final_norm.bias");
    if (!c.tied_embeddings) t["lm_head.weight"] = tensor("lm_head");
    return "";
}

}  // namespace

const Architecture& gpt2_architecture() {
    static const Architecture architecture{"gpt2", read_config, load_weights, export_model};
    return architecture;
}

}  // namespace sinklab
