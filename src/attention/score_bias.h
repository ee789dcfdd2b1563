#pragma once
// Positional score biases as the kernels read them (attention.h, ScoreBias): functions of the query
// and key positions, never an (NH, T, T) table. Within one sequence (materialised and blockwise
// kernels) the bias depends on the signed distance j - i alone, so each head keeps one value per
// distance: (NH, 2T - 1) floats, linear in T. The cache kernel's positions are arbitrary (a
// streaming cache re-indexes its keys), so it asks for single values.
#include <vector>

#include "attention/attention.h"

namespace sinklab {

class DistanceBias {
public:
    DistanceBias() = default;
    // The bias of `bias` for NH heads over sequences of T tokens (token i at position i).
    DistanceBias(const ScoreBias& bias, int NH, int T);

    bool empty() const { return values_.empty(); }
    // (2T - 1) floats per head: entry j - i + T - 1 is the bias of key j seen by query i.
    long width() const { return 2L * T_ - 1; }
    // p with p[j] = the bias of key j for query i in head h, for every key j in [0, T).
    const float* row(int h, int i) const { return values_.data() + h * width() + (T_ - 1 - i); }
    // The same offset into a per-distance buffer of this layout (a gradient ddist (NH, 2T - 1)).
    static double* row(double* per_distance, int h, int i, int T) {
        return per_distance + h * (2L * T - 1) + (T - 1 - i);
    }
    // dtable (kRelativeBuckets, NH) += ddist (NH, 2T - 1) gathered by bucket (relative only).
    void table_gradient(float* dtable, const double* ddist) const;

private:
    ScoreBiasKind kind_ = ScoreBiasKind::none;
    int NH_ = 0, T_ = 0;
    std::vector<float> values_;  // (NH, 2T - 1)
};

// One bias value for arbitrary positions: query at position pi, key at pj, head h of NH; `slopes`
// are alibi_slopes(NH) for ALiBi (unused otherwise).
float score_bias_value(const ScoreBias& bias, const std::vector<float>& slopes, int h, int NH, int pi, int pj);

}  // namespace sinklab
