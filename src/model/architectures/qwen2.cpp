// Qwen2 / Qwen2.5: Llama with biases on the q, k and v projections (none on o).
#include "model/architectures/architecture.h"
#include "model/architectures/llama_family.h"

namespace sinklab {

namespace {

ModelConfig read_config(const HfConfig& hf) {
    if (hf.boolean("use_sliding_window", false))
        hf.fail("use_sliding_window", "is true; sinklab runs Qwen2 with full attention only (released checkpoints "
                                      "set it false)");
    ModelConfig c = read_llama_family_config(hf, /*tied_default=*/false);
    c.window = 0;  // sliding_window is only a size while use_sliding_window is false
    c.qkv_bias = true;
    c.out_bias = false;
    return c;
}

void load_weights(WeightLoader& loader) { load_llama_family_weights(loader, {}); }

}  // namespace

const Architecture& qwen2_architecture() {
    static const Architecture architecture{"qwen2", read_config, load_weights};
    return architecture;
}

}  // namespace sinklab
