#pragma once
// Statistics of attention weights (DESIGN.md section 4), read from the taps of metrics/taps.h: how
// much weight each key column receives, the entropy of each query row, the slot column's total,
// and the head average that maps and the analyses read.
#include <vector>

#include "metrics/proxy.h"

namespace sinklab {

// Column sums and row entropies of materialised weights (B, NH, T, T) (zero where masked), read
// through the design's sink-metric proxy (each row rescaled by 1 / (sum + 1e-8) of its weights or of
// their absolute values, as Gu et al. read unnormalised designs). The same statistics the blockwise
// kernel taps as Tap::attn_column_sums and Tap::attn_row_entropy, and the reference it is tested
// against. column_sums (B, NH, T): sum over queries i of w_ij; row_entropy (B, NH, T):
// -sum_j w_ij ln w_ij of query row i, in nats. A null output is not computed.
void attention_weight_stats(float* column_sums, float* row_entropy, const float* weights, int B, int NH, int T,
                            ProxyKind proxy = ProxyKind::none);

// sums (B, NH): the slot column's weight summed over the T queries (every query sees it), from the
// slot weights (B, NH, T) of Tap::attn_slot_weights.
void slot_weight_sums(std::vector<float>& sums, const float* slot_weights, int B, int NH, int T);

// out (T, K) = (1/NH) sum_h weights[h], the head average of one sample's attention (NH, T, K), summed
// over the heads in order in out's precision (float for heatmaps, double for the analyses).
void head_average(float* out, const float* weights, int NH, long plane);
void head_average(double* out, const float* weights, int NH, long plane);

// Per (layer, head) means of accumulated sums: sums (L, H) layer-major, each layer's over its
// samples[l] (0 where none came). What every per-head accumulator of metrics/ reports.
std::vector<std::vector<double>> layer_head_means(const std::vector<double>& sums, const std::vector<long>& samples,
                                                  int heads);

// Mean entropy (nats) of the attention rows of each head: over queries, then over samples.
class EntropyAccumulator {
public:
    EntropyAccumulator(int layers, int heads);
    void add(int layer, const float* row_entropy, int B, int T);  // row_entropy (B, H, T)
    std::vector<std::vector<double>> mean() const;                 // [layer][head]

private:
    int L_, H_;
    std::vector<double> sum_;  // (L, H) of per-sample means
    std::vector<long> samples_;
};

}  // namespace sinklab
