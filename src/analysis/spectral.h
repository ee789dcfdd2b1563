#pragma once
// Spectral analysis of the attention graph (Ruscio et al. 2025, ANALYSIS.md section 4).
//
// Faithful: the binarised graph B = 1[A > tau] of fiedler.ipynb and laplacian.ipynb, with their
// in-degree metrics (networkx semantics: self-loops count once toward the in-degree; the node set
// is the edge list's, or all T nodes where laplacian.ipynb builds the graph with from_numpy_array)
// and the combinatorial Laplacian of S = (B + B^T) / 2 on all T nodes.
// Corrected: the weighted Laplacian of W = (A + A^T) / 2 with W_ii = 0, its normalised Laplacian,
// and in-degree metrics over all T nodes without self-loops.
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/eigen.h"
#include "analysis/sample.h"

namespace sinklab::analysis {

struct SpectralOptions {
    // fiedler.ipynb's list as written in its main(); the 0.5 is probably a typo for 0.05.
    std::vector<double> fiedler_thresholds = {0.001, 0.005, 0.01, 0.02, 0.5, 0.1, 0.2};
    std::vector<double> laplacian_thresholds = {0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2};
    int dense_max = 256;   // connected components larger than this use Spectra shift-invert
    double shift = -1e-3;  // shift-invert sigma, slightly negative because a Laplacian is singular
    std::vector<int> layers;  // empty: every layer
};

// The smallest eigenvalues of a symmetric matrix, ascending.
struct Spectrum {
    std::vector<double> eigenvalues;
    std::string solver;  // "dense" or "shift-invert": the solver of the largest connected block
};

// The `count` smallest eigenvalues of the symmetric matrix m. The matrix is split into the
// connected blocks of its off-diagonal pattern (a graph Laplacian: the connected components, each
// contributing one 0), then each block of up to dense_max rows goes to Eigen's
// SelfAdjointEigenSolver and each larger one to Spectra's shift-invert Lanczos around `shift`
// (dense Eigen if Lanczos does not converge). Splitting keeps Lanczos away from the multiple zero
// eigenvalue of a disconnected graph, which a Krylov method cannot resolve.
Spectrum smallest_eigenvalues(const Eigen::MatrixXd& m, int count, int dense_max = 256, double shift = -1e-3);

// diag(S 1) - S for a symmetric, non-negative S (self-loops cancel).
Eigen::MatrixXd laplacian(const Eigen::MatrixXd& s);
// I - D^-1/2 W D^-1/2 with W's diagonal ignored; rows and columns of isolated nodes are zero
// (networkx.normalized_laplacian_matrix's convention). Eigenvalues lie in [0, 2].
Eigen::MatrixXd normalized_laplacian(const Eigen::MatrixXd& w);

// In-degree metrics of one node set, formulas of laplacian.ipynb / fiedler.ipynb.
struct InDegreeMetrics {
    int nodes = 0;
    double max_in_degree = 0.0;
    double basic_star_likeness = 0.0;    // max_indeg / max(1, N - 1)
    double degree_centralization = 0.0;  // sum_v (max_indeg - indeg_v) / (N - 1)^2 (Freeman)
    double degree_variance = 0.0;        // np.var(indeg)
    double gini = 0.0;                   // Gini of the in-degrees
    double star_likeness = 0.0;          // 0.3 basic + 0.7 gini (laplacian.ipynb)
};
InDegreeMetrics in_degree_metrics(std::span<const double> in_degrees);

// fiedler.ipynb at one threshold. With fewer than 2 connections the notebook stores only a zero
// Fiedler value and star-likeness; the other fields are then empty.
struct FiedlerThreshold {
    double tau;
    double fiedler_value;
    double star_likeness;  // basic, over the edge-list nodes
    std::optional<double> degree_centralization;
    std::optional<double> degree_variance;
    std::optional<double> connection_density;
};

// laplacian.ipynb at one threshold. Full metrics exist only when the notebook computes them: the
// threshold is effective (density in [0.05, 0.95]) or layer % 4 == 0.
struct LaplacianThreshold {
    double tau;
    double connection_density;
    bool effective;
    bool computed;
    bool too_few_connections;  // < 2 connections: the notebook's all-zero record
    int connections = 0;
    std::vector<double> eigenvalues;  // the 3 smallest of L
    double fiedler_value = 0.0;
    double spectral_gap = 0.0;  // lambda_3 - lambda_2
    InDegreeMetrics degrees;    // all T nodes for T <= 50, the edge-list nodes above
    std::optional<double> avg_shortest_path;  // T <= 30: undirected S, largest component
    std::optional<double> clustering;         // T <= 30: average clustering of undirected S
};

struct CorrectedInDegree {
    double tau;
    InDegreeMetrics degrees;  // all T nodes, self-loops dropped
};

struct SpectralLayer {
    int layer;
    std::vector<FiedlerThreshold> fiedler;      // faithful
    std::vector<LaplacianThreshold> laplacian;  // faithful
    Spectrum weighted;                          // corrected: L of W
    Spectrum normalized;                        // corrected: normalised L of W
    std::vector<CorrectedInDegree> in_degree;   // corrected, at laplacian_thresholds
};

struct SpectralResult {
    std::vector<SpectralLayer> layers;
    nlohmann::json to_json() const;
};

SpectralResult analyze_spectral(const AttentionSample& sample, const SpectralOptions& options = {});

// fiedler.ipynb's cross-sample statistic: per layer and threshold, Pearson r and p over samples
// of the Fiedler value against star-likeness, centralization, variance and density (pairs where
// both exist); "overall" is the mean over layers of r and of p.
nlohmann::json fiedler_correlations(const std::vector<SpectralResult>& samples);

}  // namespace sinklab::analysis
