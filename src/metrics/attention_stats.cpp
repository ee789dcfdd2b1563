#include "metrics/attention_stats.h"

#include <algorithm>
#include <cmath>

namespace sinklab {

void attention_weight_stats(float* column_sums, float* row_entropy, const float* weights, int B, int NH, int T,
                            ProxyKind proxy) {
    #pragma omp parallel
    {
        std::vector<double> column(column_sums ? T : 0);
        #pragma omp for schedule(static)
        for (long bh = 0; bh < static_cast<long>(B) * NH; ++bh) {
            std::fill(column.begin(), column.end(), 0.0);
            for (int i = 0; i < T; ++i) {
                const float* row = weights + (bh * T + i) * T;
                const double row_scale = proxy_row_scale(proxy, row, T);
                double entropy = 0.0;
                for (int j = 0; j < T; ++j) {
                    const double w = proxy_read(proxy, row[j]) * row_scale;
                    if (column_sums) column[j] += w;
                    if (w > 0.0) entropy -= w * std::log(w);
                }
                if (row_entropy) row_entropy[bh * T + i] = static_cast<float>(entropy);
            }
            if (column_sums)
                for (int j = 0; j < T; ++j) column_sums[bh * T + j] = static_cast<float>(column[j]);
        }
    }
}

void slot_weight_sums(std::vector<float>& sums, const float* slot_weights, int B, int NH, int T) {
    sums.assign(static_cast<size_t>(B) * NH, 0.0f);
    for (long bh = 0; bh < static_cast<long>(B) * NH; ++bh)
        for (int i = 0; i < T; ++i) sums[bh] += slot_weights[bh * T + i];
}

namespace {

template <typename Out>
void head_average_in(Out* out, const float* weights, int NH, long plane) {
    std::fill(out, out + plane, Out(0));
    for (int h = 0; h < NH; ++h) {
        const float* w = weights + h * plane;
        for (long i = 0; i < plane; ++i) out[i] += static_cast<Out>(w[i]) / NH;
    }
}

}  // namespace

void head_average(float* out, const float* weights, int NH, long plane) { head_average_in(out, weights, NH, plane); }
void head_average(double* out, const float* weights, int NH, long plane) { head_average_in(out, weights, NH, plane); }

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

std::vector<std::vector<double>> layer_head_means(const std::vector<double>& sums, const std::vector<long>& samples,
                                                  int heads) {
    const int layers = static_cast<int>(samples.size());
    std::vector<std::vector<double>> out(layers, std::vector<double>(heads, 0.0));
    for (int l = 0; l < layers; ++l)
        for (int h = 0; h < heads; ++h)
            out[l][h] = samples[l] > 0 ? sums[static_cast<size_t>(l) * heads + h] / samples[l] : 0.0;
    return out;
}

std::vector<std::vector<double>> EntropyAccumulator::mean() const { return layer_head_means(sum_, samples_, H_); }

}  // namespace sinklab
