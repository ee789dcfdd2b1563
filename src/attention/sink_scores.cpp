#include "attention/sink_scores.h"

#include "core/error.h"

namespace sinklab {

SinkScoreAccumulator::SinkScoreAccumulator(int layers, int heads, int positions, float eps)
    : L_(layers), H_(heads), K_(positions), eps_(eps),
      alpha_sum_(static_cast<size_t>(layers) * heads * positions, 0.0),
      above_(static_cast<size_t>(layers) * heads * positions, 0),
      samples_(layers, 0) {}

void SinkScoreAccumulator::add(int layer, const float* weights, int B, int T) {
    SINKLAB_ASSERT(layer >= 0 && layer < L_);
    const int K = K_ < T ? K_ : T;
    for (int b = 0; b < B; ++b) {
        for (int h = 0; h < H_; ++h) {
            const float* A = weights + (static_cast<long>(b) * H_ + h) * T * T;
            for (int k = 1; k <= K; ++k) {
                double sum = 0.0;
                for (int t = k; t <= T; ++t) sum += A[static_cast<long>(t - 1) * T + (k - 1)];
                const double alpha = sum / (T - k + 1);
                alpha_sum_[index(layer, h, k)] += alpha;
                above_[index(layer, h, k)] += alpha > eps_;
            }
        }
    }
    samples_[layer] += B;
}

double SinkScoreAccumulator::sink_percent(int k) const {
    long above = 0, total = 0;
    for (int l = 0; l < L_; ++l) {
        for (int h = 0; h < H_; ++h) above += above_[index(l, h, k)];
        total += samples_[l] * H_;
    }
    return total > 0 ? 100.0 * above / total : 0.0;
}

std::vector<double> SinkScoreAccumulator::sink_percent_per_layer(int k) const {
    std::vector<double> out(L_, 0.0);
    for (int l = 0; l < L_; ++l) {
        long above = 0;
        for (int h = 0; h < H_; ++h) above += above_[index(l, h, k)];
        out[l] = samples_[l] > 0 ? 100.0 * above / (samples_[l] * H_) : 0.0;
    }
    return out;
}

std::vector<std::vector<double>> SinkScoreAccumulator::alpha(int k) const {
    std::vector<std::vector<double>> out(L_, std::vector<double>(H_, 0.0));
    for (int l = 0; l < L_; ++l)
        for (int h = 0; h < H_; ++h)
            out[l][h] = samples_[l] > 0 ? alpha_sum_[index(l, h, k)] / samples_[l] : 0.0;
    return out;
}

std::vector<double> SinkScoreAccumulator::alpha_per_layer(int k) const {
    std::vector<double> out(L_, 0.0);
    auto a = alpha(k);
    for (int l = 0; l < L_; ++l) {
        for (int h = 0; h < H_; ++h) out[l] += a[l][h];
        out[l] /= H_;
    }
    return out;
}

}  // namespace sinklab
