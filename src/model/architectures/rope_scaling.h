#pragma once
// RoPE settings of a Hugging Face config.json, shared by every architecture with rotary positions:
// rope_theta, partial_rotary_factor and rope_scaling (default, linear, llama3, longrope, yarn), turned
// into ModelConfig's rotary_dim, inverse frequencies and attention factor. The formulas are
// transformers' modeling_rope_utils.py (and Phi-3's LongRoPE class of transformers 4.47; YaRN as
// transformers 4.55 and openai/gpt-oss compute it).
#include "model/architectures/hf_config.h"
#include "model/config.h"

namespace sinklab {

// Reads the RoPE keys of `hf` into `c` (whose head size and max_seq_len are already set).
// `theta_key` names the base ("rope_theta"; GPT-NeoX's older configs say "rotary_emb_base") and
// `partial_key` the rotated fraction of each head ("partial_rotary_factor"; NeoX: "rotary_pct").
void read_rope_settings(const HfConfig& hf, ModelConfig& c, const char* theta_key = "rope_theta",
                        const char* partial_key = "partial_rotary_factor");

}  // namespace sinklab
