#include "metrics/massive_activations.h"

#include <algorithm>
#include <cmath>

namespace sinklab {

double LayerActivations::top_to_median() const {
    return top.empty() || median <= 0.0 ? 0.0 : std::abs(top[0].value) / median;
}

namespace {

// Largest |value| first; ties in (sample, position, dim) order, so the lists are deterministic.
bool larger_entry(const ActivationEntry& a, const ActivationEntry& b) {
    const float x = std::abs(a.value), y = std::abs(b.value);
    if (x != y) return x > y;
    if (a.sample != b.sample) return a.sample < b.sample;
    if (a.position != b.position) return a.position < b.position;
    return a.dim < b.dim;
}

// Keeps the `limit` largest entries of `list` (sorted, largest first).
void keep_largest(std::vector<ActivationEntry>& list, size_t limit) {
    std::sort(list.begin(), list.end(), larger_entry);
    if (list.size() > limit) list.resize(limit);
}

// One sample's findings, merged into the layer in sample order.
struct SampleActivations {
    double median = 0.0;
    std::vector<ActivationEntry> top, massive;
    long massive_count = 0;
    std::map<int, long> dims, positions;
};

}  // namespace

MassiveActivationAccumulator::MassiveActivationAccumulator(int layers, int C, MassiveThresholds thresholds)
    : C_(C), thresholds_(thresholds), layers_(layers), median_sum_(layers, 0.0), samples_(layers, 0) {}

void MassiveActivationAccumulator::add(int layer, const float* hidden, int B, int T, long first_sample) {
    const long n = static_cast<long>(T) * C_;
    std::vector<SampleActivations> found(B);
    #pragma omp parallel for schedule(dynamic, 1)
    for (int b = 0; b < B; ++b) {
        const float* h = hidden + static_cast<long>(b) * n;
        SampleActivations& s = found[b];
        // the median |h| as torch.median takes it (the lower middle value), which Sun et al. use
        std::vector<float> magnitude(n);
        for (long i = 0; i < n; ++i) magnitude[i] = std::abs(h[i]);
        auto middle = magnitude.begin() + (n - 1) / 2;
        std::nth_element(magnitude.begin(), middle, magnitude.end());
        s.median = *middle;
        const double bar = std::max(thresholds_.absolute, thresholds_.relative * s.median);
        for (long i = 0; i < n; ++i) {
            const float v = h[i];
            const ActivationEntry e{first_sample + b, static_cast<int>(i / C_) + 1, static_cast<int>(i % C_), v};
            if (s.top.size() < kTop || larger_entry(e, s.top.back())) {
                s.top.push_back(e);
                keep_largest(s.top, kTop);
            }
            if (std::abs(v) > bar) {
                ++s.massive_count;
                ++s.dims[e.dim];
                ++s.positions[e.position];
                s.massive.push_back(e);
                if (s.massive.size() > 4 * kListedMassive) keep_largest(s.massive, kListedMassive);
            }
        }
    }
    LayerActivations& out = layers_[layer];
    for (const SampleActivations& s : found) {
        median_sum_[layer] += s.median;
        out.top.insert(out.top.end(), s.top.begin(), s.top.end());
        out.massive.insert(out.massive.end(), s.massive.begin(), s.massive.end());
        out.massive_count += s.massive_count;
        for (const auto& [dim, count] : s.dims) out.massive_dims[dim] += count;
        for (const auto& [position, count] : s.positions) out.massive_positions[position] += count;
    }
    keep_largest(out.top, kTop);
    keep_largest(out.massive, kListedMassive);
    samples_[layer] += B;
    out.median = median_sum_[layer] / samples_[layer];
}

MassiveRatioAccumulator::MassiveRatioAccumulator(int layers) : magnitudes_(layers) {}

void MassiveRatioAccumulator::add(int layer, const float* hidden, long n) {
    std::vector<float>& values = magnitudes_[layer];
    for (long i = 0; i < n; ++i) values.push_back(std::abs(hidden[i]));
}

double MassiveRatioAccumulator::ratio() {
    double ratio = 0.0;
    for (std::vector<float>& values : magnitudes_) {
        if (values.empty()) continue;
        const auto middle = values.begin() + static_cast<long>(values.size() / 2);
        std::nth_element(values.begin(), middle, values.end());
        const double median = *middle;
        const double largest = *std::max_element(values.begin(), values.end());
        if (median > 0) ratio = std::max(ratio, largest / median);
    }
    return ratio;
}

}  // namespace sinklab
