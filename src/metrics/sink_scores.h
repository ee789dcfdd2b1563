#pragma once
// Sink scores from attention weights (DESIGN.md section 4, Gu et al. 2025):
// alpha_k = 1/(T-k+1) sum_{t=k..T} A_{t,k} (1-indexed), the mean weight that the queries able to
// see key k put on it; Sink_k^eps = share of (sample, layer, head) with alpha_k > eps (strict).
// Bidirectional attention (causal false): every query sees every key, so alpha_k = 1/T sum_{t=1..T} A_{t,k}.
// Position 0 is the slot column * of designs with a slot (Gu et al.'s column 0): every query sees
// it, so alpha_* is the mean over the T queries of the slot weight. Unnormalised designs are read
// through their proxy (metrics/proxy.h), applied per query row before alpha.
#include <cstddef>
#include <vector>

#include "core/tensor.h"
#include "metrics/proxy.h"

namespace sinklab {

class SinkScoreAccumulator {
public:
    static constexpr int kSlot = 0;  // the position of the slot column *

    // Tracks key positions 1..K (and the slot, when the weights have one) of L layers with H heads each.
    SinkScoreAccumulator(int layers, int heads, int positions, float eps, bool causal = true);
    // weights (B, H, T, T) of `layer`: B more samples for that layer.
    void add(int layer, const float* weights, int B, int T);
    // The same with the slot weights (B, H, T) of a design with a slot (null otherwise), the
    // weights read through `proxy`. A slot is given on every add or on none.
    void add(int layer, const float* weights, const float* slot_weights, int B, int T, ProxyKind proxy);

    // The same from column sums (B, H, columns): each key's weight summed over the queries (what
    // attention_weight_stats gives for every key, columns = T, or the blockwise kernel's
    // Tap::attn_column_sums for the first keys, proxies already applied), read as alpha_k = sum_k /
    // (T - k + 1) (bidirectional: sum_k / T); slot_sums (B, H) is the slot's weight summed over the
    // T queries, or null. Needs T >= positions and columns >= positions; columns 0 means T.
    void add_column_sums(int layer, const float* column_sums, const float* slot_sums, int B, int T, int columns = 0);

    int positions() const { return K_; }
    bool has_slot() const { return has_slot_; }
    // Sink_k^eps in percent for position k (1-indexed; kSlot for the slot), over samples x layers x heads.
    double sink_percent(int k) const;
    // Per layer: Sink_k^eps in percent over samples x heads.
    std::vector<double> sink_percent_per_layer(int k) const;
    // Mean alpha_k over samples, per [layer][head].
    std::vector<std::vector<double>> alpha(int k) const;
    // Mean alpha_k over samples and heads, per layer.
    std::vector<double> alpha_per_layer(int k) const;
    long samples(int layer) const { return samples_[layer]; }

    // Its sums and counts as one list, and back: accumulators over disjoint samples (the ranks of a
    // distributed evaluation) combine by adding their lists element by element. Counts stay exact
    // (below 2^53); the alpha sums then differ from one accumulator's only in their rounding.
    std::vector<double> totals() const;
    void set_totals(const std::vector<double>& totals);

private:
    std::size_t index(int layer, int head, int k) const;
    // Counts one alpha_k of (layer, head) and notes whether this add has a slot.
    void record(int layer, int head, int k, double alpha);
    void begin_add(bool with_slot);
    int L_, H_, K_;
    float eps_;
    bool causal_;
    bool has_slot_ = false, any_added_ = false;
    std::vector<double> alpha_sum_;  // (L, H, K + 1), position 0 the slot
    std::vector<long> above_;        // (L, H, K + 1) count of samples with alpha > eps
    std::vector<long> samples_;      // (L)
};

// Designs with a slot tap its weights (B, NH, T) as Tap::attn_slot_weights just before the same
// layer's Tap::attn_weights (metrics/taps.h): this keeps them until that tap, so that a reader of the
// weights gets the slot column with them.
class SlotWeightsTap {
public:
    void keep(int layer, const float* slot_weights, const Shape& shape);
    // The slot weights kept for this layer's weights tap, or null (a design without a slot), then
    // forgotten; the pointer stays valid until the next keep.
    const float* take(int layer);

private:
    std::vector<float> weights_;  // (B, NH, T) of layer_
    int layer_ = -1;
};

}  // namespace sinklab
