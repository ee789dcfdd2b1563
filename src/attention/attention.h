#pragma once
// The reference attention kernel: materialises the weights (B, NH, T, T), saves them for backward
// and for probes. Query, key and value heads are read from one fused projection buffer. Every
// design of AttentionSpec runs through this one kernel (docs/attention-designs.md).
#include <string>
#include <vector>

#include "attention/attention_spec.h"
#include "ops/grad_write.h"

namespace sinklab {

class Rng;

struct AttentionDims {
    int B = 0, T = 0;
    int NH = 0;   // query heads
    int NKV = 0;  // key/value heads; NH % NKV == 0, query head h reads kv head h / (NH / NKV)
    int HS = 0;   // head size
    // qkv rows are (NH + 2 NKV) * HS floats: q heads, then k heads, then v heads.
    long qkv_stride() const { return static_cast<long>(NH + 2 * NKV) * HS; }
    long out_stride() const { return static_cast<long>(NH) * HS; }
};

// A positional score bias added to the token columns (never to the slot), computed by the kernels
// from the query and key positions (ops/position_bias.h): ALiBi -m_h |p_i - p_j| with the paper's
// slopes, or T5's relative buckets table[bucket(p_j - p_i), h]. No kernel builds an (NH, T, T) table.
enum class ScoreBiasKind { none, alibi, relative };

struct ScoreBias {
    ScoreBiasKind kind = ScoreBiasKind::none;
    const float* relative_table = nullptr;  // (kRelativeBuckets, NH), kind relative
};

struct AttentionInputs {
    const float* qkv = nullptr;  // (B, T, (NH + 2 NKV) * HS)
    ScoreBias bias;              // token i of a sequence sits at position i
};

// The learnable tensors of a design, one set per layer. H below is NH, or 1 when
// spec.shared_heads (one vector for all heads). Slot vectors belong to query heads, also under GQA.
// Null when the design has no such tensor; attention_param_infos lists the ones it has.
struct AttentionParams {
    const float* slot_k = nullptr;        // (H, HS) slot key k*, slots kv and k; never rotated
    const float* slot_v = nullptr;        // (H, HS) slot value v*, slot kv
    const float* slot_score = nullptr;    // (NH) slot logit of slot score (gpt-oss sinks), not scaled
    const float* sigmoid_bias = nullptr;  // (H) b of sigmoid_learnable: f = sigmoid(s + b)
    const float* value_bias = nullptr;    // (H, HS) added to every output row of a head (v_bias)
};

// Gradients of AttentionParams, same shapes; backward accumulates (+=). A null entry is skipped
// (the tensor is frozen). relative_table (kRelativeBuckets, NH) receives d/d ScoreBias::relative_table
// (T5's learned bucket table), summed over the batch.
struct AttentionParamGrads {
    float* slot_k = nullptr;
    float* slot_v = nullptr;
    float* slot_score = nullptr;
    float* sigmoid_bias = nullptr;
    float* value_bias = nullptr;
    float* relative_table = nullptr;
};

// Initialisation conventions (research/variants.md b4).
enum class AttentionParamInit {
    slot_normal,      // N(0, kSlotInitStd): Gu et al.'s k*, v* and value bias (lit_gpt/model_kv_bias.py)
    model_normal,     // N(0, the model's init std): gpt-oss sinks as initialised by HF (initializer_range)
    neg_log_context,  // -ln(training context length): Apple's sigmoid attention bias
};
inline constexpr float kSlotInitStd = 0.02f;
float default_sigmoid_bias(int context);  // -ln(context)

struct AttentionParamInfo {
    std::string name;  // slot_k, slot_v, slot_score, sigmoid_bias, value_bias
    std::vector<int> shape;
    AttentionParamInit init;
    const float* AttentionParams::*value;  // where the tensor goes in AttentionParams
    float* AttentionParamGrads::*grad;     // and its gradient in AttentionParamGrads
};

// The learnable tensors of `spec` for NH heads of size HS, in a fixed order (empty for softmax).
std::vector<AttentionParamInfo> attention_param_infos(const AttentionSpec& spec, int NH, int HS);

// Fills one tensor by its convention; init_std is the model's, context its training length.
void init_attention_param(float* data, const AttentionParamInfo& info, Rng& rng, float init_std, int context);

// What the forward pass keeps for backward (probes read the weights and slot weights too). Which
// buffers a design needs beyond the weights: attention_saved_needs.
struct AttentionSaved {
    float* weights = nullptr;       // (B, NH, T, T) weights of the token columns, zero where masked
    float* slot_weights = nullptr;  // (B, NH, T) the weight of the slot column
    float* row_sums = nullptr;      // (B, NH, T) S of each row, which the normaliser Z = N(S) reads
    float* scores = nullptr;        // (B, NH, T, T) the scores over the visible keys (softpick, soft-capping)
    // The forward computes rows in blocks of 32, each over the keys any of its rows sees. true: the
    // weights buffer holds zeros beyond those keys already (it was zeroed, and only calls with the
    // same dims and mask have written it since), so the forward writes only the keys the blocks
    // see; a third to a half less memory traffic on a causal mask. false: every row is written whole,
    // as it is whenever the mask has key lengths (they change from one batch to the next).
    bool zeros_kept = false;
};

struct AttentionSavedNeeds {
    bool slot_weights = false;  // designs with a slot
    // Designs normalised by other than softmax: with S, the gradient follows from the weights alone
    // (f' is a function of f = w Z for sigmoid, elu + 1, identity and the linear kernel).
    bool row_sums = false;
    // softpick: zero weights where e^s < 1 still have a gradient that needs e^s; soft-capping: the
    // cap's derivative 1 - (s / c)^2 needs the capped score
    bool scores = false;
};
AttentionSavedNeeds attention_saved_needs(const AttentionSpec& spec);

// out (B, T, NH * HS) and the saved buffers of the design. Masks (window, prefix) apply to token
// columns before the slot joins.
void attention_forward(float* out, const AttentionSaved& saved, const AttentionInputs& in,
                       const AttentionParams& params, const AttentionDims& dims, const AttentionSpec& spec,
                       const AttentionMask& mask);

// Accumulates dqkv (B, T, (NH + 2 NKV) * HS) (or writes it, GradWrite::overwrite) and dparams from
// dout (B, T, NH * HS); `saved` holds the forward's buffers (read only).
void attention_backward(float* dqkv, const AttentionParamGrads& dparams, const float* dout, const AttentionInputs& in,
                        const AttentionParams& params, const AttentionSaved& saved, const AttentionDims& dims,
                        const AttentionSpec& spec, const AttentionMask& mask,
                        GradWrite dqkv_write = GradWrite::accumulate);

// The same for designs that keep only their weights (softmax, the unnormalised sigmoid with a
// fixed b, elu1 and identity; the kernel part of gated and sink_token).
void attention_forward(float* out, float* weights, const AttentionInputs& in, const AttentionDims& dims,
                       const AttentionSpec& spec, const AttentionMask& mask);
void attention_backward(float* dqkv, const float* dout, const AttentionInputs& in, const float* weights,
                        const AttentionDims& dims, const AttentionSpec& spec, const AttentionMask& mask);

float attention_scale(const AttentionSpec& spec, int HS);

}  // namespace sinklab
