#pragma once
// Persistent homology of the attention graph (Ruscio et al. 2025, ANALYSIS.md section 3).
//
// Faithful (topology.ipynb): D = 1 - A in float32, not symmetrised, downsampled to 30 tokens, then
// ripser.py. Its non-zero diagonal sends ripser.py down its sparse (COO) path: vertex i is born at
// D_ii, edges come only from the upper triangle (i < j) and exact zeros are dropped. For causal
// attention every edge is then born at 1, so the "Betti numbers" (bar counts) measure
// self-attention, not sinks.
// Corrected: the symmetrised distance D_ij = 1 - max(A_ij, A_ji), D_ii = 0, a Vietoris-Rips complex
// up to dimension 2 and persistent cohomology over Z/2 (GUDHI).
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/eigen.h"
#include "analysis/sample.h"

namespace sinklab::analysis {

struct Bar {
    double birth;
    double death;  // +inf for an essential class
};

struct Barcode {
    std::vector<Bar> h0;  // sorted by (birth, death)
    std::vector<Bar> h1;
};

// ripser.py's diagrams (maxdim=1) for a square distance matrix taken through its COO path: vertex
// births D_ii, edges D_ij for i < j with D_ij != 0, bars kept only when death > birth. H0 is a
// port of ripser's compute_dim_0_pairs (union-find, elder rule, edges ordered by value and then
// by decreasing edge index); H1 is the persistent homology of the same edge graph's flag complex
// (GUDHI), which ignores vertex births exactly as ripser's H1 does. For row-stochastic attention
// ripser.py's dense path (all-zero diagonal) only happens for the identity matrix, where both
// paths agree, so this covers every faithful input.
Barcode ripser_coo_barcode(const Eigen::MatrixXf& distance);

// Vietoris-Rips persistence (H0 and H1 over Z/2, complex up to dimension 2) of a symmetric
// distance matrix with a zero diagonal. Zero-length bars are dropped.
Barcode rips_barcode(const Eigen::MatrixXd& distance);

// Bars longer than eps: the corrected topology's count of persistent features.
int persistent_bars(const std::vector<Bar>& bars, double eps);

// topology.ipynb's layer selection: step = max(1, L / 4), {0, step, 2 step, L - 1}, deduplicated.
std::vector<int> faithful_topology_layers(int num_layers);

struct TopologyOptions {
    int max_points = 30;                                // faithful downsampling
    std::vector<double> density_thresholds = {0.2, 0.4};  // faithful connection densities
    double persistence_eps = 0.01;                      // corrected: bars longer than this count
    std::vector<double> betti_scales = {0.5, 0.9, 0.99};  // corrected: beta_d(r) = #{birth <= r < death}
    bool symmetrize_max = true;                         // corrected: 1 - max(A, A^T); else 1 - (A + A^T)/2
    int corrected_max_points = 128;  // corrected Rips grows as T^3: longer sequences are downsampled
    std::vector<int> layers;         // empty: every layer (faithful_topology_layers() reproduces the notebook)
};

struct HeadStats {
    int head;
    double avg_attention, max_attention, std_attention;
    double entropy;      // -sum_ij A log2(A + 1e-10) over the whole matrix
    int top_token;       // argmax_j of the column means (a position: sinklab has no token strings here)
    double top_strength;
};

struct DensityAt {
    double tau;
    double density;  // #(A > tau) / T^2
    int connections;
};

struct TopologyLayer {
    int layer;
    // faithful
    std::vector<int> faithful_points;  // the kept token positions
    Barcode faithful;
    double attention_mean, attention_max, attention_min, attention_std;  // of the float32 head average
    std::vector<DensityAt> densities;
    std::vector<HeadStats> heads;  // empty without per-head input
    // corrected
    std::vector<int> corrected_points;
    Barcode corrected;
};

struct TopologyResult {
    double persistence_eps;
    std::vector<double> betti_scales;
    bool symmetrize_max;
    std::vector<TopologyLayer> layers;
    nlohmann::json to_json() const;
};

TopologyResult analyze_topology(const AttentionSample& sample, const TopologyOptions& options = {});

// topology.ipynb's cross-sample statistics on the faithful numbers: specialised heads (the same
// top token in >= min_consistency of >= min_samples samples) and Welch's t-test between every
// pair of analysed layers for the bar counts, attention mean/max and dim-0 persistence.
nlohmann::json topology_summary(const std::vector<TopologyResult>& samples, int min_samples = 5,
                                double min_consistency = 0.3);

}  // namespace sinklab::analysis
