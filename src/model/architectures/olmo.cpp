// OLMo (1): Llama with non-parametric LayerNorms (no weight, no bias; eps 1e-5 fixed by the
// architecture), hence no norm tensors at all.
#include "model/architectures/architecture.h"
#include "model/architectures/llama_family.h"

namespace sinklab {

namespace {

ModelConfig read_config(const HfConfig& hf) {
    hf.require_unset("clip_qkv", "clamping q, k and v is not implemented");
    ModelConfig c = read_llama_family_config(hf, /*tied_default=*/false);
    c.norm = NormKind::layernorm;
    c.norm_affine = false;
    c.norm_eps = 1e-5f;  // OlmoLayerNorm's constant; the config has no key for it
    return c;
}

void load_weights(WeightLoader& loader) { load_llama_family_weights(loader, {}); }

}  // namespace

const Architecture& olmo_architecture() {
    static const Architecture architecture{"olmo", read_config, load_weights};
    return architecture;
}

}  // namespace sinklab
