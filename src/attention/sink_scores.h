#pragma once
// Sink scores from attention weights (DESIGN.md section 4, Gu et al. 2025):
// alpha_k = 1/(T-k+1) sum_{t=k..T} A_{t,k} (1-indexed), the mean weight that the queries able to
// see key k put on it; Sink_k^eps = share of (sample, layer, head) with alpha_k > eps (strict).
#include <cstddef>
#include <vector>

namespace sinklab {

class SinkScoreAccumulator {
public:
    // Tracks key positions 1..K of L layers with H heads each.
    SinkScoreAccumulator(int layers, int heads, int positions, float eps);
    // weights (B, H, T, T) of `layer`: B more samples for that layer.
    void add(int layer, const float* weights, int B, int T);

    int positions() const { return K_; }
    // Sink_k^eps in percent for position k (1-indexed), over samples x layers x heads.
    double sink_percent(int k) const;
    // Per layer: Sink_k^eps in percent over samples x heads.
    std::vector<double> sink_percent_per_layer(int k) const;
    // Mean alpha_k over samples, per [layer][head].
    std::vector<std::vector<double>> alpha(int k) const;
    // Mean alpha_k over samples and heads, per layer.
    std::vector<double> alpha_per_layer(int k) const;
    long samples(int layer) const { return samples_[layer]; }

private:
    std::size_t index(int layer, int head, int k) const {
        return (static_cast<std::size_t>(layer) * H_ + head) * K_ + (k - 1);
    }
    int L_, H_, K_;
    float eps_;
    std::vector<double> alpha_sum_;  // (L, H, K)
    std::vector<long> above_;        // (L, H, K) count of samples with alpha > eps
    std::vector<long> samples_;      // (L)
};

}  // namespace sinklab
