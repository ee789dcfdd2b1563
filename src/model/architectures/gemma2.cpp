// Gemma 2: Gemma with norms before and after both sub-layers (sandwich), even layers attending to
// a sliding window and odd layers to the whole context, soft-capped attention scores and logits
// (c tanh(x / c)), and scores scaled by query_pre_attn_scalar^-1/2 instead of head_dim^-1/2.
#include <cmath>

#include "model/architectures/architecture.h"
#include "model/architectures/gemma.h"
#include "model/architectures/llama_family.h"

namespace sinklab {

namespace {

ModelConfig read_config(const HfConfig& hf) {
    ModelConfig c = read_gemma_config(hf);
    c.norm_placement = NormPlacement::sandwich;
    // transformers 4.47: layer i slides when i is even
    const int window = c.window;
    c.window = 0;
    if (window > 0) {
        c.layer_windows.assign(c.n_layers, 0);
        for (int l = 0; l < c.n_layers; l += 2) c.layer_windows[l] = window;
    }
    c.attention.scale = static_cast<float>(1.0 / std::sqrt(hf.positive_number("query_pre_attn_scalar", c.hs())));
    c.attention.softcap = static_cast<float>(hf.number("attn_logit_softcapping", 0.0));
    c.final_logit_softcap = static_cast<float>(hf.number("final_logit_softcapping", 0.0));
    if (c.attention.softcap < 0) hf.fail("attn_logit_softcapping", "must be positive or null");
    if (c.final_logit_softcap < 0) hf.fail("final_logit_softcapping", "must be positive or null");
    return c;
}

void load_weights(WeightLoader& loader) {
    LlamaFamilyLayout layout;
    layout.attn_norm = "input_layernorm";
    layout.attn_out_norm = "post_attention_layernorm";
    layout.mlp_norm = "pre_feedforward_layernorm";
    layout.mlp_out_norm = "post_feedforward_layernorm";
    load_llama_family_weights(loader, layout);
}

}  // namespace

const Architecture& gemma2_architecture() {
    static const Architecture architecture{"gemma2", read_config, load_weights};
    return architecture;
}

}  // namespace sinklab
