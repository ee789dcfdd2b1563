#pragma once
// The memory a transformer run will take, from its configuration alone, before anything is
// allocated (core/memory.h refuses what the machine cannot hold). It counts what Transformer
// allocates for a forward over (B, T) (ensure_activations, and for training the gradient buffers
// and the materialised attention backward's per-thread (T, T) scratch) and the parameters; the small buffers
// (norm statistics, RoPE tables) are left out, so it is a floor, close to the peak of a training step.
#include <cstdint>

#include "model/config.h"

namespace sinklab {

struct TransformerMemory {
    double parameters = 0;   // the weights
    double training = 0;     // gradients and AdamW's two moments (3 x the weights); 0 for inference
    double activations = 0;  // the forward's buffers (and the backward's when training)
    double total() const { return parameters + training + activations; }
};

// Bytes for `config` running batches of B sequences of T tokens. `materialised`: the run takes the
// materialised attention kernel, which stores the (T, T) weights of every layer (and, when training,
// a (T, T) scratch per thread); the blockwise kernel keeps row statistics and tiles only.
// Computed in double, so absurd sizes give an absurd number, never an overflow (and sizes that are
// not positive give 0: ModelConfig::validate refuses them).
TransformerMemory transformer_memory(const ModelConfig& config, int64_t B, int64_t T, bool training,
                                     bool materialised, int threads);

}  // namespace sinklab
