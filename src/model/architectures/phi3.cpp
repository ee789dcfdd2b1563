// Phi-3 / Phi-3.5: Llama with fused projections (qkv_proj holds [q; k; v] rows, gate_up_proj
// [gate; up]) and LongRoPE (short and long frequency factors, rope_scaling type longrope).
#include "model/architectures/architecture.h"
#include "model/architectures/llama_family.h"

namespace sinklab {

namespace {

ModelConfig read_config(const HfConfig& hf) { return read_llama_family_config(hf, /*tied_default=*/false); }

void load_weights(WeightLoader& loader) {
    LlamaFamilyLayout layout;
    layout.fused_qkv = true;
    layout.fused_gate_up = true;
    load_llama_family_weights(loader, layout);
}

}  // namespace

const Architecture& phi3_architecture() {
    static const Architecture architecture{"phi3", read_config, load_weights};
    return architecture;
}

}  // namespace sinklab
