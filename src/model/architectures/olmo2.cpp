// OLMo 2: RMSNorm applied to each sub-layer's output before the residual add instead of to its
// input (post_attention_layernorm, post_feedforward_layernorm), and an RMSNorm over the whole query
// (NH*HS) and key (NKV*HS) projections before RoPE.
#include "model/architectures/architecture.h"
#include "model/architectures/llama_family.h"

namespace sinklab {

namespace {

ModelConfig read_config(const HfConfig& hf) {
    ModelConfig c = read_llama_family_config(hf, /*tied_default=*/false);
    c.norm_placement = NormPlacement::output;
    c.qk_norm = QkNorm::full;
    return c;
}

void load_weights(WeightLoader& loader) {
    LlamaFamilyLayout layout;
    layout.attn_norm = nullptr;
    layout.attn_out_norm = "post_attention_layernorm";
    layout.mlp_norm = nullptr;
    layout.mlp_out_norm = "post_feedforward_layernorm";
    load_llama_family_weights(loader, layout);
}

}  // namespace

const Architecture& olmo2_architecture() {
    static const Architecture architecture{"olmo2", read_config, load_weights};
    return architecture;
}

}  // namespace sinklab
