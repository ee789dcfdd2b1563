#include "analysis/sample.h"

#include <cmath>

#include "core/error.h"

namespace sinklab::analysis {

namespace {

void check_attention_matrix(const Eigen::MatrixXd& a, Eigen::Index T, const std::string& what) {
    SINKLAB_CHECK(a.rows() == T && a.cols() == T, "analysis", "{} is {}x{}, expected {}x{} (T x T)", what,
                  a.rows(), a.cols(), T, T);
    for (Eigen::Index i = 0; i < T; ++i) {
        for (Eigen::Index j = 0; j < T; ++j) {
            const double v = a(i, j);
            SINKLAB_CHECK(std::isfinite(v) && v >= -1e-6, "analysis",
                          "{} entry ({}, {}) is {}; attention weights must be finite and non-negative", what,
                          i, j, v);
        }
        const double row_sum = a.row(i).sum();
        SINKLAB_CHECK(std::fabs(row_sum - 1.0) <= 1e-3, "analysis",
                      "{} row {} sums to {}; pass softmax-normalised attention (every row sums to 1)", what, i,
                      row_sum);
    }
}

}  // namespace

void validate_sample(const AttentionSample& sample) {
    const int L = sample.num_layers();
    SINKLAB_CHECK(L > 0, "analysis", "the sample has no attention layers");
    const Eigen::Index T = sample.num_tokens();
    SINKLAB_CHECK(T > 0, "analysis", "the sample has zero tokens");
    for (int l = 0; l < L; ++l) check_attention_matrix(sample.attention[l], T, fmt::format("layer {} attention", l));
    if (sample.has_heads()) {
        SINKLAB_CHECK(static_cast<int>(sample.heads.size()) == L, "analysis",
                      "per-head attention has {} layers but the head average has {}", sample.heads.size(), L);
        for (int l = 0; l < L; ++l) {
            SINKLAB_CHECK(!sample.heads[l].empty(), "analysis", "layer {} has no per-head attention", l);
            for (size_t h = 0; h < sample.heads[l].size(); ++h)
                check_attention_matrix(sample.heads[l][h], T, fmt::format("layer {} head {} attention", l, h));
        }
    }
    for (const MarkedToken& token : sample.special_tokens)
        SINKLAB_CHECK(token.position >= 0 && token.position < T, "analysis",
                      "special token {} is at position {}, outside the sample's tokens 0..{}", token.name,
                      token.position, T - 1);
    if (sample.has_hidden()) {
        SINKLAB_CHECK(static_cast<int>(sample.hidden.size()) == L + 1, "analysis",
                      "{} hidden states given for {} layers; pass L + 1 (the embedding output first)",
                      sample.hidden.size(), L);
        const Eigen::Index D = sample.hidden.front().cols();
        for (int l = 0; l <= L; ++l) {
            const Eigen::MatrixXd& h = sample.hidden[l];
            SINKLAB_CHECK(h.rows() == T && h.cols() == D && D > 0, "analysis",
                          "hidden state {} is {}x{}, expected {}x{} (T x D)", l, h.rows(), h.cols(), T, D);
        }
    }
}

bool is_causal(const Eigen::MatrixXd& attention) {
    for (Eigen::Index j = 1; j < attention.cols(); ++j)
        for (Eigen::Index i = 0; i < j && i < attention.rows(); ++i)
            if (attention(i, j) != 0.0) return false;
    return true;
}

std::vector<int> select_layers(const std::vector<int>& requested, int num_layers) {
    if (requested.empty()) {
        std::vector<int> all(num_layers);
        for (int l = 0; l < num_layers; ++l) all[l] = l;
        return all;
    }
    for (int l : requested)
        SINKLAB_CHECK(l >= 0 && l < num_layers, "analysis", "layer {} requested but the sample has layers 0..{}", l,
                      num_layers - 1);
    return requested;
}

}  // namespace sinklab::analysis
