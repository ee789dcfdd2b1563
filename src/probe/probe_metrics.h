#pragma once
// The probe's metrics (DESIGN.md section 4, research/variants.md b1-b3), each an accumulator fed
// one layer's tap of one batch at a time, so that nothing of size T x T (or L x T x C) is kept.
// Positions k are 1-indexed as in the definitions; layers and heads are 0-indexed.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sinklab {

// The metrics, by the names `--metrics` takes.
enum class Metric { sink, entropy, massive, hidden_norms, value_drain, geometry };
const std::vector<Metric>& all_metrics();
std::string metric_name(Metric metric);
// "all" or a comma-separated list of names; throws for an unknown name, listing the known ones.
std::vector<Metric> parse_metrics(const std::string& list);

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

// The sink key's own manifold: per layer and query head, the mean over queries t of cos(q_t, k_1),
// and the mean over queries t > 1 of the mean over keys 1 < j <= t of cos(q_t, k_j) (causal
// pairs; prefix sums of the unit keys make it linear in T). Queries and keys after RoPE.
class SinkGeometryAccumulator {
public:
    SinkGeometryAccumulator(int layers, int heads, int kv_heads, int head_size);
    void add(int layer, const float* qkv, int B, int T);  // qkv (B*T, (NH + 2 NKV) * HS)
    std::vector<std::vector<double>> cos_first() const;   // [layer][head]
    std::vector<std::vector<double>> cos_rest() const;

private:
    int L_, NH_, NKV_, HS_;
    std::vector<double> first_sum_, rest_sum_;  // (L, NH) of per-sample means
    std::vector<long> samples_;
};

}  // namespace sinklab
