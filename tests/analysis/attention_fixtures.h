#pragma once
// Attention patterns shared by the analysis tests.
#include <vector>

#include "analysis/eigen.h"
#include "analysis/sample.h"
#include "core/rng.h"

namespace sinklab::analysis::testing {

// Row-stochastic causal attention: random positive weights on j <= i plus `sink` extra weight on
// column 0 before normalising.
inline Eigen::MatrixXd random_causal(int T, Rng& rng, double sink = 0.0) {
    Eigen::MatrixXd a = Eigen::MatrixXd::Zero(T, T);
    for (int i = 0; i < T; ++i) {
        for (int j = 0; j <= i; ++j) a(i, j) = 0.05 + rng.uniform();
        a(i, 0) += sink * (i + 1);
        a.row(i) /= a.row(i).sum();
    }
    return a;
}

// Row-stochastic attention over all keys (an encoder).
inline Eigen::MatrixXd random_dense(int T, Rng& rng) {
    Eigen::MatrixXd a(T, T);
    for (int i = 0; i < T; ++i) {
        for (int j = 0; j < T; ++j) a(i, j) = 0.05 + rng.uniform();
        a.row(i) /= a.row(i).sum();
    }
    return a;
}

// The perfect sink of ANALYSIS.md section 8: A_00 = 1, A_i0 = to_sink and A_ii = 1 - to_sink.
inline Eigen::MatrixXd perfect_sink(int n, double to_sink = 0.9) {
    Eigen::MatrixXd a = Eigen::MatrixXd::Zero(n, n);
    a(0, 0) = 1.0;
    for (int i = 1; i < n; ++i) {
        a(i, 0) = to_sink;
        a(i, i) = 1.0 - to_sink;
    }
    return a;
}

inline AttentionSample sample_of(std::vector<Eigen::MatrixXd> layers) {
    AttentionSample s;
    s.attention = std::move(layers);
    return s;
}

// Harmonic numbers H_n^(p) = sum_{m=1}^{n} m^-p.
inline double harmonic(int n, int p = 1) {
    double h = 0.0;
    for (int m = 1; m <= n; ++m) h += 1.0 / std::pow(m, p);
    return h;
}

}  // namespace sinklab::analysis::testing
