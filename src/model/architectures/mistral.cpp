// Mistral: Llama with a sliding attention window (sliding_window keys, the query's own included).
#include "model/architectures/architecture.h"
#include "model/architectures/llama_family.h"

namespace sinklab {

namespace {

ModelConfig read_config(const HfConfig& hf) { return read_llama_family_config(hf, /*tied_default=*/false); }

void load_weights(WeightLoader& loader) { load_llama_family_weights(loader, {}); }

}  // namespace

const Architecture& mistral_architecture() {
    static const Architecture architecture{"mistral", read_config, load_weights};
    return architecture;
}

}  // namespace sinklab
