#pragma once
// RoBERTa's mapping, which XLM-RoBERTa shares (same architecture and tensor names).
#include "model/architectures/hf_config.h"
#include "model/architectures/weight_loader.h"
#include "model/config.h"

namespace sinklab {

ModelConfig read_roberta_config(const HfConfig& hf);
void load_roberta_weights(WeightLoader& loader);

}  // namespace sinklab
