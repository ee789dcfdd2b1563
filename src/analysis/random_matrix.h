#pragma once
// Random-matrix statistics of attention (Ruscio et al. 2025, ANALYSIS.md section 6).
//
// Faithful (rmt.ipynb): eigenvalue magnitudes of A (non-symmetric), spectral gap, participation
// ratio, stable rank, spectral norm, bulk edge, sink concentration, row entropy and a KL divergence
// of the top-10 |lambda| against Marchenko-Pastur. A causal A is triangular: its eigenvalues are its
// diagonal, so these are self-attention statistics.
// Corrected: the eigenvalues of X X^T / T for the column-centred X = A - 1 mu^T (mu the mean row),
// scaled by the entry variance sigma^2 = ||X||_F^2 / T^2 and compared with MP(gamma = 1) by a KS
// distance, moments and outliers above the edge (1 + sqrt(gamma))^2; for causal A the diagonal
// statistics are reported under their own names.
#include <optional>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/eigen.h"
#include "analysis/sample.h"

namespace sinklab::analysis {

// Marchenko-Pastur law of the eigenvalues of X X^T / n for X (p x n) with iid entries of variance
// sigma2 and gamma = p / n in (0, 1].
struct MarchenkoPastur {
    double gamma;
    double sigma2 = 1.0;

    double lower_edge() const;  // sigma2 (1 - sqrt(gamma))^2
    double upper_edge() const;  // sigma2 (1 + sqrt(gamma))^2
    double density(double x) const;
    double cdf(double x) const;  // closed form (random_matrix.cpp derives it)
    // E[x^k] = sigma2^k sum_{r=0}^{k-1} N(k, r + 1) gamma^r, N the Narayana numbers.
    double moment(int k) const;
};

struct MpComparison {
    double ks_distance;             // sup |F_empirical - F_MP|
    std::vector<double> moments;    // empirical E[x^k], k = 1..4
    std::vector<double> mp_moments;  // the law's
    double min_eigenvalue, max_eigenvalue;
    std::vector<double> outliers;   // eigenvalues above the upper edge, descending
};
MpComparison compare_with_marchenko_pastur(std::span<const double> eigenvalues, const MarchenkoPastur& law);

// rmt.ipynb's compute_marchenko_pastur_distance: the values divided by their mean, a 20-bin density
// histogram (numpy's binning), the MP density (gamma = 1 replaced by 0.99) at the bin centres, both
// normalised, then scipy.stats.entropy(hist, mp). +inf (returned as such) when the histogram has
// mass where the density is 0; NaN for fewer than 2 values.
double faithful_mp_kl(std::span<const double> values, double gamma = 1.0, int bins = 20);

struct RandomMatrixOptions {
    int top_eigenvalues = 10;  // rmt.ipynb keeps the top 10 |lambda| and feeds only those to MP-KL
    int mp_bins = 20;
    std::vector<int> layers;  // empty: every layer
};

struct FaithfulRmt {
    std::vector<double> top_eigenvalues;  // |lambda| descending, the first top_eigenvalues
    double largest_eigenvalue;
    double spectral_gap;  // |lambda_1| / |lambda_2| (+inf when lambda_2 = 0)
    double participation_ratio;
    double stable_rank;
    double spectral_norm;
    double bulk_edge, bulk_mean, bulk_std;
    double sink_concentration;
    double entropy;  // mean over rows of -sum_j A log2(A + 1e-10)
    double marchenko_pastur_kl;
};

struct CorrectedRmt {
    double sigma2;                       // entry variance of the centred A
    std::optional<MpComparison> mp;      // empty when the centred A is 0 (all rows equal)
    std::vector<double> eigenvalues;     // of X X^T / (T sigma2), descending
    // Causal A only: the diagonal is the spectrum.
    std::optional<double> self_attention_mean;               // mean_i A_ii
    std::optional<double> self_attention_max_after_first;    // max_{i>=1} A_ii (the mixing rate)
    std::optional<double> self_attention_participation;      // (sum A_ii)^2 / sum A_ii^2
};

struct RandomMatrixLayer {
    int layer;
    bool causal;
    FaithfulRmt faithful;
    CorrectedRmt corrected;
};

struct RandomMatrixResult {
    std::vector<RandomMatrixLayer> layers;
    nlohmann::json to_json() const;
};

FaithfulRmt faithful_rmt(const Eigen::MatrixXd& attention, const RandomMatrixOptions& options = {});
CorrectedRmt corrected_rmt(const Eigen::MatrixXd& attention);
RandomMatrixResult analyze_random_matrix(const AttentionSample& sample, const RandomMatrixOptions& options = {});

}  // namespace sinklab::analysis
