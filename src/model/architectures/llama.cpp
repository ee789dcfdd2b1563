// Llama (1, 2, 3.x): RMSNorm, RoPE (with llama3 or linear scaling), SwiGLU, grouped-query attention.
// Also the target of `sinklab export` for llama-style sinklab models.
#include "core/error.h"
#include "model/architectures/architecture.h"
#include "model/architectures/llama_family.h"

namespace sinklab {

namespace {

ModelConfig read_config(const HfConfig& hf) {
    // Llama has no sliding window; a stray key would silently change the mask.
    hf.require_unset("sliding_window", "Llama attends to the whole context (use model_type mistral)");
    return read_llama_family_config(hf, /*tied_default=*/false);
}

void load_weights(WeightLoader& loader) { load_llama_family_weights(loader, {}); }

std::string export_model(const Transformer& model, HfFolder& out) {
    const ModelConfig& c = model.config();
    if (c.norm != NormKind::rmsnorm) return "Llama normalises with RMSNorm, this model with " + to_string(c.norm);
    if (c.positions != PositionKind::rope) return "Llama uses RoPE, this model '" + to_string(c.positions) + "' positions";
    if (c.mlp != MlpKind::swiglu) return "Llama's MLP is SwiGLU, this model's " + to_string(c.mlp);
    if (c.linear_bias) return "this model has a bias on the MLP's down projection only (Llama's mlp_bias puts them on gate, up and down)";
    if (c.has_qkv_bias() != c.has_out_bias()) return "Llama's attention_bias covers q, k, v and o together";
    if (c.window > 0) return "Llama attends to the whole context, this model to a window of " + std::to_string(c.window);
    if (c.rotary_dim != 0 || !c.rope_inv_freq.empty() || c.rope_attention_factor != 1.0 || c.rope_long_from != 0)
        return "this model's RoPE is partial or scaled";
    if (std::string extra = unexportable_features(c); !extra.empty()) return extra;

    const int C = c.d_model, L = c.n_layers;
    out.config = {{"architectures", {"LlamaForCausalLM"}},
                  {"attention_bias", c.has_qkv_bias()},
                  {"attention_dropout", 0.0},
                  {"bos_token_id", nullptr},
                  {"eos_token_id", nullptr},
                  {"head_dim", c.hs()},
                  {"hidden_act", "silu"},
                  {"hidden_size", C},
                  {"initializer_range", config_number(c.init_std)},
                  {"intermediate_size", c.ff()},
                  {"max_position_embeddings", c.max_seq_len},
                  {"mlp_bias", false},
                  {"model_type", "llama"},
                  {"num_attention_heads", c.n_heads},
                  {"num_hidden_layers", L},
                  {"num_key_value_heads", c.n_kv_heads},
                  {"pretraining_tp", 1},
                  {"rms_norm_eps", config_number(c.norm_eps)},
                  {"rope_scaling", nullptr},
                  {"rope_theta", c.rope_theta},
                  {"tie_word_embeddings", c.tied_embeddings},
                  {"torch_dtype", "float32"},
                  {"use_cache", true},
                  {"vocab_size", c.vocab_size}};
    auto tensor = [&](const std::string& param) { return parameter_tensor(model, param); };
    auto& t = out.tensors;
    t["model.embed_tokens.weight"] = tensor("embed.tokens");
    for (int l = 0; l < L; ++l) {
        const std::string hf = fmt::format("model.layers.{}.", l), own = fmt::format("layers.{}.", l);
        t[hf + "input_layernorm.weight"] = tensor(own + "attn_norm.weight");
        for (const char* x : {"q", "k", "v"}) {
            t[hf + "self_attn." + x + "_proj.weight"] = tensor(own + "attn.w" + x);
            if (c.has_qkv_bias()) t[hf + "self_attn." + x + "_proj.bias"] = tensor(own + "attn.b" + x);
        }
        t[hf + "self_attn.o_proj.weight"] = tensor(own + "attn.wo");
        if (c.has_out_bias()) t[hf + "self_attn.o_proj.bias"] = tensor(own + "attn.bo");
        t[hf + "post_attention_layernorm.weight"] = tensor(own + "mlp_norm.weight");
        t[hf + "mlp.gate_proj.weight"] = tensor(own + "mlp.w_gate");
        t[hf + "mlp.up_proj.weight"] = tensor(own + "mlp.w_up");
        t[hf + "mlp.down_proj.weight"] = tensor(own + "mlp.w_down");
    }
    t["model.norm.weight"] = tensor("final_norm.weight");
    if (!c.tied_embeddings) t["lm_head.weight"] = tensor("lm_head");
    return "";
}

}  // namespace

const Architecture& llama_architecture() {
    static const Architecture architecture{"llama", read_config, load_weights, export_model};
    return architecture;
}

}  // namespace sinklab
