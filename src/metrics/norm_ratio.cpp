#include "metrics/norm_ratio.h"

#include <cmath>

namespace sinklab {

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

MeanNormAccumulator::MeanNormAccumulator(int layers, int groups)
    : L_(layers), G_(groups), sum_(static_cast<size_t>(layers) * groups, 0.0), samples_(layers, 0) {}

void MeanNormAccumulator::add(int layer, const float* data, long stride, int width, int B, int T) {
    for (int b = 0; b < B; ++b)
        for (int g = 0; g < G_; ++g) {
            double total = 0.0;
            for (int t = 0; t < T; ++t) {
                const float* x = data + (static_cast<long>(b) * T + t) * stride + static_cast<long>(g) * width;
                double s = 0.0;
                for (int e = 0; e < width; ++e) s += static_cast<double>(x[e]) * x[e];
                total += std::sqrt(s);
            }
            sum_[static_cast<size_t>(layer) * G_ + g] += total / T;
        }
    samples_[layer] += B;
}

std::vector<std::vector<double>> MeanNormAccumulator::mean() const {
    std::vector<std::vector<double>> out(L_, std::vector<double>(G_, 0.0));
    for (int l = 0; l < L_; ++l)
        for (int g = 0; g < G_; ++g)
            if (samples_[l]) out[l][g] = sum_[static_cast<size_t>(l) * G_ + g] / samples_[l];
    return out;
}

}  // namespace sinklab
