#include "ops/position_bias.h"

#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace sinklab {

namespace {

// ofirpress/attention_with_linear_biases get_slopes_power_of_2: start = 2^(-8/n), slope_h = start^(h+1)
std::vector<float> power_of_two_slopes(int n) {
    const double start = std::pow(2.0, -8.0 / n);
    std::vector<float> slopes(n);
    for (int h = 0; h < n; ++h) slopes[h] = static_cast<float>(std::pow(start, h + 1));
    return slopes;
}

}  // namespace

std::vector<float> alibi_slopes(int NH) {
    SINKLAB_CHECK(NH > 0, "ops", "ALiBi needs at least one head, got {}", NH);
    int closest = 1;
    while (closest * 2 <= NH) closest *= 2;
    std::vector<float> slopes = power_of_two_slopes(closest);
    if (closest == NH) return slopes;
    const std::vector<float> extra = power_of_two_slopes(2 * closest);
    for (int i = 0; static_cast<int>(slopes.size()) < NH; i += 2) slopes.push_back(extra[i]);
    return slopes;
}

void alibi_bias(float* bias, int NH, int T) {
    const std::vector<float> slopes = alibi_slopes(NH);
    for (int h = 0; h < NH; ++h)
        for (int i = 0; i < T; ++i)
            for (int j = 0; j < T; ++j)
                bias[(static_cast<long>(h) * T + i) * T + j] = -slopes[h] * static_cast<float>(std::abs(i - j));
}

int relative_position_bucket(int relative_position, int buckets, int max_distance) {
    // Hugging Face T5Attention._relative_position_bucket, bidirectional=False
    const int n = relative_position < 0 ? -relative_position : 0;
    const int max_exact = buckets / 2;
    if (n < max_exact) return n;
    const int large = max_exact + static_cast<int>(std::log(static_cast<float>(n) / max_exact) /
                                                   std::log(static_cast<float>(max_distance) / max_exact) *
                                                   (buckets - max_exact));
    return large < buckets - 1 ? large : buckets - 1;
}

void relative_bias_forward(float* bias, const float* table, int NH, int T) {
    for (int i = 0; i < T; ++i)
        for (int j = 0; j < T; ++j) {
            const float* row = table + static_cast<long>(relative_position_bucket(j - i)) * NH;
            for (int h = 0; h < NH; ++h) bias[(static_cast<long>(h) * T + i) * T + j] = row[h];
        }
}

void relative_bias_backward(float* dtable, const float* dbias, int NH, int T) {
    // in the forward pass this was: bias(h, i, j) = table[bucket(j - i), h]
    for (int i = 0; i < T; ++i)
        for (int j = 0; j < T; ++j) {
            float* row = dtable + static_cast<long>(relative_position_bucket(j - i)) * NH;
            for (int h = 0; h < NH; ++h) row[h] += dbias[(static_cast<long>(h) * T + i) * T + j];
        }
}

}  // namespace sinklab
