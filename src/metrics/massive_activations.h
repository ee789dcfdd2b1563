#pragma once
// Massive activations in the residual stream (Sun et al. 2024), read from each block's output
// (Tap::block_out): the probe's per-sample lists and the training log's one-number ratio.
#include <map>
#include <vector>

namespace sinklab {

// Massive activations at each block's output (Sun et al. 2024): entries with |h| > 100 and
// > 1000 x the median |h| of that sample's (T, C) hidden state. Also the three largest |h| and the
// median, so that models that never cross 100 still show how far their top entries stand out.
struct ActivationEntry {
    long sample = 0;
    int position = 0;  // 1-indexed token position
    int dim = 0;
    float value = 0.0f;  // signed
};

struct LayerActivations {
    std::vector<ActivationEntry> top;     // the 3 largest |h| over all samples, largest first
    double median = 0.0;                  // the median |h| of a sample's hidden state, averaged over samples
    long massive_count = 0;               // massive entries over all samples
    std::vector<ActivationEntry> massive; // the largest of them (at most kListedMassive), largest first
    std::map<int, long> massive_dims;     // dim -> massive entries in it
    std::map<int, long> massive_positions;  // position -> massive entries at it
    double top_to_median() const;           // |top[0]| / median
};

struct MassiveThresholds {
    double absolute = 100.0;
    double relative = 1000.0;  // x the median |h|
};

class MassiveActivationAccumulator {
public:
    static constexpr int kTop = 3;
    static constexpr int kListedMassive = 32;
    MassiveActivationAccumulator(int layers, int C, MassiveThresholds thresholds = {});
    // hidden (B*T, C) of `layer`; the batch's samples are numbered from first_sample.
    void add(int layer, const float* hidden, int B, int T, long first_sample);
    const LayerActivations& layer(int l) const { return layers_[l]; }
    int layers() const { return static_cast<int>(layers_.size()); }
    const MassiveThresholds& thresholds() const { return thresholds_; }

private:
    int C_;
    MassiveThresholds thresholds_;
    std::vector<LayerActivations> layers_;
    std::vector<double> median_sum_;
    std::vector<long> samples_;
};

// The training log's massive-activation ratio: the largest over layers of max|h| / median|h| of the
// residual stream at a block's output, every (sample, token, channel) of a layer pooled (the median
// is the upper middle value); layers whose median is 0 are left out. A coarser number than the
// probe's per-sample one above, kept as train_log.jsonl has always written it.
class MassiveRatioAccumulator {
public:
    explicit MassiveRatioAccumulator(int layers);
    void add(int layer, const float* hidden, long n);  // hidden: n entries of `layer`'s output
    double ratio();
    // The |h| gathered for a layer, in no particular order: accumulators over disjoint samples combine
    // by pooling them (the median of the pool is the one of a single accumulator).
    int layers() const { return static_cast<int>(magnitudes_.size()); }
    std::vector<float>& magnitudes(int layer) { return magnitudes_[layer]; }

private:
    std::vector<std::vector<float>> magnitudes_;  // per layer, |h| of every (token, channel)
};

}  // namespace sinklab
