#pragma once
// First-token norm ratios (Gu et al. 2025) of the residual stream, keys and values, and mean norms
// (the no-op reading's output and value norms).
#include <vector>

namespace sinklab {

// Gu et al. (research/variants.md b2): ||x_1|| / mean_{t>1} ||x_t|| of per-token L2 norms, the
// norms averaged over samples first. Used for the residual stream and for keys and values.
class NormRatioAccumulator {
public:
    // rows (B*T) of `groups` vectors of `width` floats each, at group g of row r:
    // data + r * stride + g * width.
    NormRatioAccumulator(int layers, int groups);
    void add(int layer, const float* data, long stride, int width, int B, int T);
    std::vector<std::vector<double>> ratio() const;  // [layer][group]

private:
    int L_, G_;
    std::vector<double> first_sum_, rest_sum_;  // (L, G) of ||x_1|| and mean_{t>1} ||x_t|| over samples
};

// The mean L2 norm of vectors per layer and group (head): over positions, then over samples. The
// no-op reading divides a head's mean output norm by its mean value norm.
class MeanNormAccumulator {
public:
    // rows (B*T) of `groups` vectors of `width` floats at data + r * stride + g * width
    MeanNormAccumulator(int layers, int groups);
    void add(int layer, const float* data, long stride, int width, int B, int T);
    std::vector<std::vector<double>> mean() const;  // [layer][group]

private:
    int L_, G_;
    std::vector<double> sum_;  // (L, G) of per-sample means
    std::vector<long> samples_;
};

}  // namespace sinklab
