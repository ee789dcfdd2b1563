#pragma once
// Gemma's config, which Gemma 2 starts from (gemma.cpp, gemma2.cpp).
#include "model/architectures/hf_config.h"
#include "model/config.h"

namespace sinklab {

// The Llama family's keys plus Gemma's differences: embeddings scaled by sqrt(hidden_size), RMSNorm
// weights w for a scale of (1 + w), a GeGLU MLP (tanh GELU unless hidden_activation says otherwise),
// tied embeddings by default.
ModelConfig read_gemma_config(const HfConfig& hf);

}  // namespace sinklab
