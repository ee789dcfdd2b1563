#include "metrics/sink_geometry.h"

#include <algorithm>
#include <cmath>

#include "metrics/attention_stats.h"

namespace sinklab {

SinkGeometryAccumulator::SinkGeometryAccumulator(int layers, int heads, int kv_heads, int head_size, bool causal)
    : L_(layers), NH_(heads), NKV_(kv_heads), HS_(head_size), causal_(causal),
      first_sum_(static_cast<size_t>(layers) * heads, 0.0), rest_sum_(static_cast<size_t>(layers) * heads, 0.0), samples_(layers, 0) {}

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
                // sum of the unit keys 2..t; bidirectional: every query sees all of 2..T from the start
                std::fill(prefix.begin(), prefix.end(), 0.0);
                if (!causal_)
                    for (int j = 1; j < T; ++j) {
                        unit(k.data(), rows + j * stride + k_at, HS_);
                        for (int e = 0; e < HS_; ++e) prefix[e] += k[e];
                    }
                double first_sum = 0.0, rest_sum = 0.0;
                for (int t = 0; t < T; ++t) {
                    unit(q.data(), rows + t * stride + q_at, HS_);
                    if (causal_ && t > 0) {
                        unit(k.data(), rows + t * stride + k_at, HS_);
                        for (int e = 0; e < HS_; ++e) prefix[e] += k[e];
                    }
                    double with_first = 0.0, with_rest = 0.0;
                    for (int e = 0; e < HS_; ++e) {
                        with_first += q[e] * k1[e];
                        with_rest += q[e] * prefix[e];
                    }
                    first_sum += with_first;
                    if (!causal_) rest_sum += with_rest / (T - 1);  // keys 2..T
                    else if (t > 0) rest_sum += with_rest / t;      // t keys 2..t+1 (1-indexed) are visible
                }
                first[static_cast<size_t>(b) * NH_ + h] = first_sum / T;
                rest[static_cast<size_t>(b) * NH_ + h] = rest_sum / (causal_ ? T - 1 : T);
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
    return layer_head_means(first_sum_, samples_, NH_);
}

std::vector<std::vector<double>> SinkGeometryAccumulator::cos_rest() const {
    return layer_head_means(rest_sum_, samples_, NH_);
}

}  // namespace sinklab
