#include "probe/probe_metrics.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace sinklab {

const std::vector<Metric>& all_metrics() {
    static const std::vector<Metric> metrics = {Metric::sink,         Metric::entropy,     Metric::massive,
                                                Metric::hidden_norms, Metric::value_drain, Metric::geometry};
    return metrics;
}

std::string metric_name(Metric metric) {
    switch (metric) {
        case Metric::sink: return "sink";
        case Metric::entropy: return "entropy";
        case Metric::massive: return "massive";
        case Metric::hidden_norms: return "hidden_norms";
        case Metric::value_drain: return "value_drain";
        case Metric::geometry: return "geometry";
    }
    return "";
}

std::vector<Metric> parse_metrics(const std::string& list) {
    if (list == "all") return all_metrics();
    std::vector<Metric> metrics;
    size_t start = 0;
    while (start <= list.size()) {
        const size_t comma = std::min(list.find(',', start), list.size());
        const std::string name = list.substr(start, comma - start);
        bool found = false;
        for (Metric m : all_metrics())
            if (metric_name(m) == name) {
                if (std::find(metrics.begin(), metrics.end(), m) == metrics.end()) metrics.push_back(m);
                found = true;
            }
        if (!found) {
            std::string known;
            for (Metric m : all_metrics()) known += (known.empty() ? "" : ", ") + metric_name(m);
            fail("probe", "--metrics: unknown metric '{}' (known: all, {})", name, known);
        }
        start = comma + 1;
    }
    return metrics;
}

// ---- Entropy ----------------------------------------------------------------------------------

EntropyAccumulator::EntropyAccumulator(int layers, int heads)
    : L_(layers), H_(heads), sum_(static_cast<size_t>(layers) * heads, 0.0), samples_(layers, 0) {}

void EntropyAccumulator::add(int layer, const float* row_entropy, int B, int T) {
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < H_; ++h) {
            const float* rows = row_entropy + (static_cast<long>(b) * H_ + h) * T;
            double sum = 0.0;
            for (int t = 0; t < T; ++t) sum += rows[t];
            sum_[static_cast<size_t>(layer) * H_ + h] += sum / T;
        }
    samples_[layer] += B;
}

std::vector<std::vector<double>> EntropyAccumulator::mean() const {
    std::vector<std::vector<double>> out(L_, std::vector<double>(H_, 0.0));
    for (int l = 0; l < L_; ++l)
        for (int h = 0; h < H_; ++h)
            out[l][h] = samples_[l] > 0 ? sum_[static_cast<size_t>(l) * H_ + h] / samples_[l] : 0.0;
    return out;
}

// ---- Massive activations ----------------------------------------------------------------------

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

// ---- Norm ratios ------------------------------------------------------------------------------

NormRatioAccumulator::NormRatioAccumulator(int layers, int groups)
    : L_(layers), G_(groups), first_sum_(static_cast<size_t>(layers) * groups, 0.0),
      rest_sum_(static_cast<size_t>(layers) * groups, 0.0) {}

void NormRatioAccumulator::add(int layer, const float* data, long stride, int width, int B, int T) {
    auto norm = [&](long row, int g) {
        const float* x = data + row * stride + static_cast<long>(g) * width;
        double s = 0.0;
        for (int e = 0; e < width; ++e) s += static_cast<double>(x[e]) * x[e];
        return std::sqrt(s);
    };
    for (int b = 0; b < B; ++b)
        for (int g = 0; g < G_; ++g) {
            const long first = static_cast<long>(b) * T;
            double rest = 0.0;
            for (int t = 1; t < T; ++t) rest += norm(first + t, g);
            first_sum_[static_cast<size_t>(layer) * G_ + g] += norm(first, g);
            rest_sum_[static_cast<size_t>(layer) * G_ + g] += rest / (T - 1);
        }
}

std::vector<std::vector<double>> NormRatioAccumulator::ratio() const {
    std::vector<std::vector<double>> out(L_, std::vector<double>(G_, 0.0));
    for (int l = 0; l < L_; ++l)
        for (int g = 0; g < G_; ++g) {
            const size_t i = static_cast<size_t>(l) * G_ + g;
            out[l][g] = rest_sum_[i] > 0.0 ? first_sum_[i] / rest_sum_[i] : 0.0;
        }
    return out;
}

// ---- Sink geometry ----------------------------------------------------------------------------

SinkGeometryAccumulator::SinkGeometryAccumulator(int layers, int heads, int kv_heads, int head_size)
    : L_(layers), NH_(heads), NKV_(kv_heads), HS_(head_size), first_sum_(static_cast<size_t>(layers) * heads, 0.0),
      rest_sum_(static_cast<size_t>(layers) * heads, 0.0), samples_(layers, 0) {}

namespace {

// x / ||x|| in double; a zero vector stays zero (its cosine with anything counts as 0).
void unit(double* out, const float* x, int n) {
    double s = 0.0;
    for (int e = 0; e < n; ++e) s += static_cast<double>(x[e]) * x[e];
    const double inv = s > 0.0 ? 1.0 / std::sqrt(s) : 0.0;
    for (int e = 0; e < n; ++e) out[e] = x[e] * inv;
}

}  // namespace

void SinkGeometryAccumulator::add(int layer, const float* qkv, int B, int T) {
    const long stride = static_cast<long>(NH_ + 2 * NKV_) * HS_;
    const int group = NH_ / NKV_;
    std::vector<double> first(static_cast<size_t>(B) * NH_), rest(first.size());  // per (b, h) means
    #pragma omp parallel
    {
        std::vector<double> q(HS_), k1(HS_), k(HS_), prefix(HS_);
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; ++b)
            for (int h = 0; h < NH_; ++h) {
                const float* rows = qkv + static_cast<long>(b) * T * stride;
                const long q_at = static_cast<long>(h) * HS_, k_at = static_cast<long>(NH_ + h / group) * HS_;
                unit(k1.data(), rows + k_at, HS_);
                std::fill(prefix.begin(), prefix.end(), 0.0);  // sum of the unit keys 2..t
                double first_sum = 0.0, rest_sum = 0.0;
                for (int t = 0; t < T; ++t) {
                    unit(q.data(), rows + t * stride + q_at, HS_);
                    if (t > 0) {
                        unit(k.data(), rows + t * stride + k_at, HS_);
                        for (int e = 0; e < HS_; ++e) prefix[e] += k[e];
                    }
                    double with_first = 0.0, with_rest = 0.0;
                    for (int e = 0; e < HS_; ++e) {
                        with_first += q[e] * k1[e];
                        with_rest += q[e] * prefix[e];
                    }
                    first_sum += with_first;
                    if (t > 0) rest_sum += with_rest / t;  // t keys 2..t+1 (1-indexed) are visible
                }
                first[static_cast<size_t>(b) * NH_ + h] = first_sum / T;
                rest[static_cast<size_t>(b) * NH_ + h] = rest_sum / (T - 1);
            }
    }
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < NH_; ++h) {
            first_sum_[static_cast<size_t>(layer) * NH_ + h] += first[static_cast<size_t>(b) * NH_ + h];
            rest_sum_[static_cast<size_t>(layer) * NH_ + h] += rest[static_cast<size_t>(b) * NH_ + h];
        }
    samples_[layer] += B;
}

std::vector<std::vector<double>> SinkGeometryAccumulator::cos_first() const {
    std::vector<std::vector<double>> out(L_, std::vector<double>(NH_, 0.0));
    for (int l = 0; l < L_; ++l)
        for (int h = 0; h < NH_; ++h)
            out[l][h] = samples_[l] > 0 ? first_sum_[static_cast<size_t>(l) * NH_ + h] / samples_[l] : 0.0;
    return out;
}

std::vector<std::vector<double>> SinkGeometryAccumulator::cos_rest() const {
    std::vector<std::vector<double>> out(L_, std::vector<double>(NH_, 0.0));
    for (int l = 0; l < L_; ++l)
        for (int h = 0; h < NH_; ++h)
            out[l][h] = samples_[l] > 0 ? rest_sum_[static_cast<size_t>(l) * NH_ + h] / samples_[l] : 0.0;
    return out;
}

}  // namespace sinklab
