// Gemma: Llama with embeddings scaled by sqrt(hidden_size), RMSNorm weights stored as w for a
// scale of (1 + w), a GeGLU MLP (tanh GELU), and tied embeddings.
#include "model/architectures/gemma.h"

#include <cmath>

#include "model/architectures/architecture.h"
#include "model/architectures/llama_family.h"

namespace sinklab {

ModelConfig read_gemma_config(const HfConfig& hf) {
    ModelConfig c = read_llama_family_config(hf, /*tied_default=*/true);
    // transformers reads hidden_activation and, when it is unset, uses the tanh GELU whatever
    // hidden_act says (the original checkpoints say "gelu" but were trained with the approximation).
    c.mlp = gated_mlp_of(hf, "hidden_activation", hf.string("hidden_activation", "gelu_pytorch_tanh"));
    c.norm_weight_offset = 1.0f;
    c.embed_scale = std::sqrt(static_cast<float>(c.d_model));
    return c;
}

namespace {

void load_weights(WeightLoader& loader) { load_llama_family_weights(loader, {}); }

}  // namespace

const Architecture& gemma_architecture() {
    static const Architecture architecture{"gemma", read_gemma_config, load_weights};
    return architecture;
}

}  // namespace sinklab
