#pragma once
// Value-space analyses (Ruscio et al. 2025, ANALYSIS.md section 5): how attention weights relate to
// the residual-stream vectors they mix.
//
// - Geometric-semantic alignment (attention_value.ipynb): Pearson r between A_ij and cos(h_i, h_j).
//   Faithful: all ordered pairs i != j, for a causal model including the masked upper triangle
//   (where A_ij = 0), which mixes "is j visible" with "how much". Corrected: only the visible pairs
//   j < i of a causal layer (every i != j otherwise).
// - Attention entropy per query (nats) against the transformation magnitude ||h^{l+1}_i - h^l_i||.
// - Directional influence (reference_point.ipynb) of the reference set R. Faithful: tokens in R
//   enter the per-sample mean with dummy values (0.5, 0.5, 0). Corrected: the mean excludes R.
// - KL sink removal (KL.ipynb): KL of each head's rows to the head average, before and after the
//   sink columns are masked. Faithful: 20 rows when T > 20. Corrected: every row.
// The notebook's PCA correlation is left out: a principal component's sign is arbitrary, so the
// Pearson r of matched component scores has an arbitrary sign as well.
#include <optional>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/eigen.h"
#include "analysis/sample.h"

namespace sinklab::analysis {

struct ValueSpaceOptions {
    double gsa_scale_limit = 1e3;  // attention_value.ipynb rescales h when max|h| exceeds this
    double di_scale_limit = 1e5;   // reference_point.ipynb's limit
    double reference_threshold = 0.1;
    std::vector<double> kl_percentiles = {80.0, 90.0, 95.0};
    int kl_rows = 20;  // faithful KL uses this many rows (np.linspace) when T > kl_rows
    std::vector<int> layers;  // empty: every layer (faithful_kl_layers() reproduces KL.ipynb)
};

// KL.ipynb's layer selection: all layers up to 6, else 0, 1, 3, 5, ... (odd, below L - 1), L - 1.
std::vector<int> faithful_kl_layers(int num_layers);

// The reference set R of reference_point.ipynb: tokens whose column mean (1/T) sum_i A_ij exceeds
// `threshold`; if none, the top max(1, floor(0.1 T)) by column mean; at most max(1, floor(0.3 T)),
// keeping the largest. Ascending positions.
std::vector<int> reference_tokens(const Eigen::MatrixXd& attention, double threshold = 0.1);

// Pearson r of (A_ij, cos(h_i, h_j)) over the pairs i != j (visible_only: j < i), with h rescaled to
// max|h| = scale_limit when larger; 0.0 when either side has zero variance (the notebook's guard).
double geometric_semantic_alignment(const Eigen::MatrixXd& attention, const Eigen::MatrixXd& hidden,
                                    bool visible_only, double scale_limit = 1e3);

// Per-query entropy in nats over the entries above 100 float32 epsilons, renormalised.
Eigen::VectorXd attention_entropy(const Eigen::MatrixXd& attention);

// ||h_out_i - h_in_i||_2 after rescaling both by one factor to max|h| <= scale_limit and clipping
// each difference to +-scale_limit (attention_value.ipynb).
Eigen::VectorXd transformation_magnitude(const Eigen::MatrixXd& h_in, const Eigen::MatrixXd& h_out,
                                         double scale_limit = 1e3);

struct DirectionalInfluence {
    std::vector<int> reference;  // R
    // Per token; tokens in R carry the notebook's dummies 0.5, 0.5, 0.
    std::vector<double> influence, relative_magnitude, information_change;
    // Faithful means (all tokens, dummies included) and corrected ones (tokens outside R; empty when
    // every token is in R).
    double mean_influence, mean_relative_magnitude, mean_information_change;
    std::optional<double> corrected_influence, corrected_relative_magnitude, corrected_information_change;
};
DirectionalInfluence directional_influence(const Eigen::MatrixXd& attention, const Eigen::MatrixXd& hidden,
                                           double reference_threshold = 0.1, double scale_limit = 1e5);

struct SinkRemoval {
    double percentile;
    std::vector<int> sinks;  // tokens whose summed incoming attention (all heads) >= the percentile
    double sink_attention_percentage;
    double avg_sink_concentration;  // over the first min(H, 4) heads, as the notebook
    double kl_without_sinks;        // mean over heads
    double kl_reduction;            // mean over heads of KL_with - KL_without
};
struct KlSinkRemoval {
    double kl;  // mean over heads of mean_i KL(A^h_i || mean_h A^h_i)
    std::vector<SinkRemoval> by_percentile;
};
// `rows` > 0 evaluates only np.linspace(0, T-1, rows) rows when T > rows (faithful); 0: every row.
KlSinkRemoval kl_sink_removal(const std::vector<Eigen::MatrixXd>& heads, std::span<const double> percentiles,
                              int rows);

struct HiddenStateMetrics {
    double gsa_faithful, gsa_corrected;
    double entropy_mean, entropy_std;
    double magnitude_mean, magnitude_std;
    double entropy_magnitude_correlation;
    DirectionalInfluence influence;
};

struct ValueSpaceLayer {
    int layer;
    bool causal;
    std::optional<HiddenStateMetrics> hidden;  // needs hidden states
    std::optional<KlSinkRemoval> kl_faithful;  // needs per-head attention
    std::optional<KlSinkRemoval> kl_corrected;
};

struct ValueSpaceResult {
    std::vector<ValueSpaceLayer> layers;
    nlohmann::json to_json() const;
};

// Needs hidden states or per-head attention (or both); throws when the sample has neither.
ValueSpaceResult analyze_value_space(const AttentionSample& sample, const ValueSpaceOptions& options = {});

// attention_value.ipynb's cross-sample statistics of GSA (faithful and corrected) and of the
// entropy-magnitude r: pooled over (sample, layer): mean, median, std, one-sample t-test against 0;
// first against last layer (Welch); the trend of the per-layer means against the layer index
// (Spearman and Pearson).
nlohmann::json value_space_summary(const std::vector<ValueSpaceResult>& samples);

}  // namespace sinklab::analysis
