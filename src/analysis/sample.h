#pragma once
// The plain data every analysis reads: one sample's attention (and optionally hidden states),
// captured from a model by the caller. Analyses never touch the model.
#include <string>
#include <vector>

#include "analysis/eigen.h"

namespace sinklab::analysis {

// A token the caller marks by its position (0-indexed): an encoder's [CLS] at 0 and [SEP] at T-1.
struct MarkedToken {
    std::string name;
    int position = 0;
};

struct AttentionSample {
    // L entries, each (T, T): the head-averaged attention of layer l, rows are queries and columns
    // keys, every row sums to 1. Causal models have exact zeros above the diagonal.
    std::vector<Eigen::MatrixXd> attention;
    // Optional, L entries of H matrices (T, T): the per-head attention whose mean is `attention`.
    std::vector<std::vector<Eigen::MatrixXd>> heads;
    // Optional, L + 1 entries (T, D): the residual stream, hidden[l] entering layer l and hidden[L]
    // leaving the last layer (HF `output_hidden_states` order: hidden[0] is the embedding output).
    // Non-finite entries (fp16 overflow) are read as 0, as the notebooks' np.nan_to_num does.
    std::vector<Eigen::MatrixXd> hidden;
    // Optional: the special tokens of the sample, whose stationary mass the diffusion of a
    // non-causal (bidirectional) layer reports.
    std::vector<MarkedToken> special_tokens;

    int num_layers() const { return static_cast<int>(attention.size()); }
    int num_tokens() const { return attention.empty() ? 0 : static_cast<int>(attention.front().rows()); }
    bool has_heads() const { return !heads.empty(); }
    bool has_hidden() const { return !hidden.empty(); }
};

// Throws sinklab::Error("analysis", ...) naming the layer/head/row at fault when shapes disagree,
// an entry is not finite or negative, or a row does not sum to 1 within 1e-3 (fp16 attention
// averaged over heads stays well inside that).
void validate_sample(const AttentionSample& sample);

// Every entry strictly above the diagonal is exactly zero (a causal mask leaves exact zeros).
bool is_causal(const Eigen::MatrixXd& attention);

// Layer indices to analyse: `requested` if not empty (each checked against L), else 0..L-1.
std::vector<int> select_layers(const std::vector<int>& requested, int num_layers);

}  // namespace sinklab::analysis
