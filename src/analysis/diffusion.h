#pragma once
// Powers of causal attention (Pappone 2025, ANALYSIS.md section 7): how much of the mass of A^k,
// of products of layers, and of gradient-routing column sums ends on token 0, against the exact
// baseline of uniform causal attention U_T (U_ij = 1/i for j <= i, 1-indexed).
//
// Two row conventions, both reported: "faithful" averages over all T rows (DESIGN.md section 4,
// the blog's figures); "corrected" averages over rows 1..T-1, because row 0 of a causal A^k is e_0
// whatever A is, so it adds 1/T of pure structure to every number.
//
// A non-causal layer (an encoder's bidirectional attention) is no DAG: nothing forces A^k towards
// e_0. Its powers converge to 1 pi^T, pi the stationary distribution of the row-stochastic A
// (pi^T A = pi^T), at the rate |lambda_2|; the layer reports pi, pi's mass on each marked special
// token and |lambda_2|, and its baselines are those of uniform bidirectional attention U = 1 1^T / T
// (U^k = U, so s_k(U) = 1/T for every k and depth, lazy walks included). Both row conventions then
// average over all rows: row 0 is no different from the others.
#include <optional>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/eigen.h"
#include "analysis/sample.h"

namespace sinklab::analysis {

struct DiffusionOptions {
    std::vector<int> powers = {1, 2, 4, 8, 16};  // k of s_k, Delta_k and the column sums c^(k)
    std::vector<double> levels = {0.5, 0.9};     // k*_level: the smallest k with s_k >= level
    int max_power = 256;                         // k* is null when not reached by this power
    std::vector<int> layers;                     // empty: every layer
};

struct PowerMass {
    int k;
    double mass;      // s_k(A)
    double baseline;  // s_k(U_T), same row convention
    double excess;    // mass - baseline
};

struct MassLevel {
    double level;
    std::optional<int> k;           // k*_level of A
    std::optional<int> baseline_k;  // k*_level of U_T
};

struct ColumnRouting {
    int k;
    double column0_share;              // c^(k)_0 / (number of rows summed)
    std::vector<double> column_sums;   // c^(k)_j = sum_i (A^k)_ij, (T)
};

// All numbers of one row convention.
struct DiffusionView {
    std::vector<PowerMass> power_mass;
    std::vector<MassLevel> levels;
    // Depth composition: P = A^l ... A^0 and the lazy residual walk prod_m (I + A^m) / 2, with
    // their baselines s_{l+1}(U_T) and s_{l+1}((I + U_T) / 2).
    double depth_mass;
    double depth_baseline;
    double lazy_depth_mass;
    double lazy_depth_baseline;
    std::vector<ColumnRouting> routing;
    std::vector<std::vector<double>> head_power_mass;  // (H, powers); empty without per-head input
};

// The stationary distribution of a non-causal layer and its mass on the marked special tokens.
struct StationaryMass {
    std::vector<double> distribution;  // pi, (T), sums to 1
    std::vector<std::pair<MarkedToken, double>> special_tokens;  // pi at each marked token
    double uniform;                    // 1/T: pi of uniform attention
};

struct DiffusionLayer {
    int layer;
    bool causal;
    // The rate of A^k -> its limit: for causal A, max_{i>=1} A_ii, the exact second eigenvalue
    // (limit 1 e_0^T); for non-causal A, |lambda_2|, the second largest eigenvalue modulus (limit 1 pi^T).
    std::optional<double> mixing_rate;
    std::optional<StationaryMass> stationary;  // non-causal layers
    DiffusionView all_rows;   // faithful
    DiffusionView from_row1;  // corrected
};

struct DiffusionResult {
    std::vector<int> powers;
    std::vector<DiffusionLayer> layers;
    nlohmann::json to_json() const;
};

// O(k_max T^2) per layer: only matrix-vector products (triangular for causal layers).
DiffusionResult analyze_diffusion(const AttentionSample& sample, const DiffusionOptions& options = {});

// ---- closed forms for U_T (1-indexed in the comments, 0-indexed in the returned containers) ----

// h_0..h_{k_max} of the complete homogeneous symmetric polynomials of x, by the all-positive DP
// h[0] = 1; for each x: for r = 1..k_max: h[r] += x h[r-1].
std::vector<double> complete_homogeneous(std::span<const double> x, int k_max);
// U_T itself, (T, T).
Eigen::MatrixXd uniform_causal_attention(int T);
// (U^k)_ij = (1/i) h_{k-1}(1/j, ..., 1/i) for j <= i, (T, T).
Eigen::MatrixXd uniform_causal_power(int T, int k);
// c^(k)_j = sum_i (U^k)_ij = h_k(1/j, ..., 1/T), (T).
std::vector<double> uniform_column_sums(int T, int k);
// s_k(U_T) = h_k(1, 1/2, ..., 1/T) / T (all rows).
double uniform_power_mass(int T, int k);
// s_k((I + U_T) / 2) = 2^-k sum_r C(k, r) h_r(1, ..., 1/T) / T (all rows).
double uniform_lazy_power_mass(int T, int k);
// The rows-from-1 version of an all-rows mass of a matrix whose row 0 is e_0: (T s - 1) / (T - 1).
double mass_from_row1(double all_rows_mass, int T);

// pi with pi^T A = pi^T and sum pi = 1 for a row-stochastic A whose chain has one closed class
// (softmax attention without a causal mask: every entry positive), by a dense LU solve of
// (A^T - I) pi = 0 with one equation replaced by sum pi = 1, A's rows renormalised to sum 1 exactly.
Eigen::VectorXd stationary_distribution(const Eigen::MatrixXd& attention);

}  // namespace sinklab::analysis
