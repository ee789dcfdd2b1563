#include "attention/score_bias.h"

#include <cstdlib>

#include "core/error.h"
#include "ops/position_bias.h"

namespace sinklab {

DistanceBias::DistanceBias(const ScoreBias& bias, int NH, int T) : kind_(bias.kind), NH_(NH), T_(T) {
    if (bias.kind == ScoreBiasKind::none) return;
    SINKLAB_CHECK(bias.kind != ScoreBiasKind::relative || bias.relative_table, "attention",
                  "a relative score bias needs its bucket table (kRelativeBuckets, NH)");
    const std::vector<float> slopes = bias.kind == ScoreBiasKind::alibi ? alibi_slopes(NH) : std::vector<float>{};
    values_.resize(static_cast<size_t>(NH) * width());
    for (int h = 0; h < NH; ++h)
        for (int d = -(T - 1); d <= T - 1; ++d)  // d = j - i
            values_[h * width() + d + T - 1] = score_bias_value(bias, slopes, h, NH, 0, d);
}

void DistanceBias::table_gradient(float* dtable, const double* ddist) const {
    SINKLAB_ASSERT(kind_ == ScoreBiasKind::relative);
    // in the forward pass this was: bias(h, d) = table[bucket(d), h]
    std::vector<double> sums(static_cast<size_t>(kRelativeBuckets) * NH_, 0.0);
    for (int h = 0; h < NH_; ++h)
        for (int d = -(T_ - 1); d <= T_ - 1; ++d)
            sums[static_cast<long>(relative_position_bucket(d)) * NH_ + h] += ddist[h * width() + d + T_ - 1];
    for (size_t i = 0; i < sums.size(); ++i) dtable[i] += static_cast<float>(sums[i]);
}

float score_bias_value(const ScoreBias& bias, const std::vector<float>& slopes, int h, int NH, int pi, int pj) {
    switch (bias.kind) {
        case ScoreBiasKind::alibi: return -slopes[h] * static_cast<float>(std::abs(pi - pj));
        case ScoreBiasKind::relative:
            return bias.relative_table[static_cast<long>(relative_position_bucket(pj - pi)) * NH + h];
        case ScoreBiasKind::none: break;
    }
    return 0.0f;
}

}  // namespace sinklab
