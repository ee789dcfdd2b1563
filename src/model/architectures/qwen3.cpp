// Qwen3: Llama with an RMSNorm over each query and key head before RoPE (one (HS) weight shared by
// the heads), and a head size that need not be hidden_size / heads.
#include "model/architectures/architecture.h"
#include "model/architectures/llama_family.h"

namespace sinklab {

namespace {

ModelConfig read_config(const HfConfig& hf) {
    if (hf.boolean("use_sliding_window", false))
        hf.fail("use_sliding_window", "is true; sinklab runs Qwen3 with full attention only (released checkpoints "
                                      "set it false)");
    ModelConfig c = read_llama_family_config(hf, /*tied_default=*/false);
    c.window = 0;  // sliding_window is only a size while use_sliding_window is false
    c.qk_norm = QkNorm::per_head;
    return c;
}

void load_weights(WeightLoader& loader) { load_llama_family_weights(loader, {}); }

}  // namespace

const Architecture& qwen3_architecture() {
    static const Architecture architecture{"qwen3", read_config, load_weights};
    return architecture;
}

}  // namespace sinklab
