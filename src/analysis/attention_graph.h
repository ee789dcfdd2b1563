#pragma once
// Every attention design as a graph the analyses can read (docs/analysis.md, "Every design"):
// one row-stochastic matrix per layer (and per head), whatever the design wrote.
//
// - A slot column (kv_bias, k_bias, softmax1, score_bias: a key every query sees) becomes node 0 of a
//   graph of T + 1 nodes, as a sink_token model's prepended token already is: row i + 1 is query i
//   with the slot's weight in column 0 and the tokens' weights in columns 1..T; row 0, the slot
//   itself, attends to itself only (A_00 = 1, as the first row of any causal map).
// - Designs whose rows do not sum to 1 (unnormalised sigmoid and elu1, identity kernels of either
//   sign, softpick's relu(e^s - 1) / sum |e^s - 1|) are read through the proxy the probe uses for
//   the sink scores (Gu et al.): w / sum w, or |w| / sum |w| for signed kernels. The raw row sums
//   are kept beside the graph, so that what the proxy hid stays visible. A row with no weight at
//   all (softpick when every score is <= 0) has nothing to normalise: it becomes a self-loop, and
//   is counted.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/sample.h"

namespace sinklab::analysis {

// How a design's rows are read (the probe's names: AttentionSpec::proxy).
enum class RowProxy {
    none,       // the weights as they are (rows already sum to 1)
    ratio,      // w / sum w
    abs_ratio,  // |w| / sum |w|
};
const char* row_proxy_name(RowProxy proxy);  // "none", "ratio", "abs_ratio"

// The design's raw row sums in one layer, over heads, query rows and samples (slot included).
struct RawRowSums {
    double min = 0.0, max = 0.0, sum = 0.0;
    long rows = 0;
    long empty_rows = 0;  // rows with no weight (self-loops in the graph)
    double mean() const { return rows > 0 ? sum / rows : 0.0; }
};

// Builds one sample's AttentionSample from a forward's taps, one layer at a time.
class AttentionGraphBuilder {
public:
    // `slot`: the design has a slot column (node 0). `keep_heads`: keep every head's graph as well
    // as their mean. `keep_hidden`: keep the residual stream (L + 1 states).
    AttentionGraphBuilder(int layers, RowProxy proxy, bool slot, bool keep_heads, bool keep_hidden);

    // One layer's weights (NH, T, T) for query rows and token columns (B = 1), with the slot's weights
    // (NH, T) for a design with a slot (null otherwise).
    void add_weights(int layer, const float* weights, const float* slot_weights, int NH, int T);
    // Residual stream state `index` (0: the embedding output, l + 1: block l's output), (T, C). With a
    // slot, a zero row is put first: the slot has no state in the residual stream (value-space
    // analyses read its similarities as 0, the notebooks' guard for a zero vector).
    void add_hidden(int index, const float* hidden, int T, int C);

    // The sample (every layer added); throws naming the layer when one is missing.
    const AttentionSample& sample() const;
    AttentionSample take_sample();
    const std::vector<RawRowSums>& raw_row_sums() const { return raw_; }
    int graph_nodes() const;  // T, or T + 1 with a slot (0 before the first layer)

private:
    // Row i of head h as weights over the graph's nodes, the proxy applied; updates raw_.
    void read_row(int layer, const float* row, const float* slot_weight, int T, double* out);
    RowProxy proxy_;
    bool slot_, keep_heads_, keep_hidden_;
    AttentionSample sample_;
    std::vector<RawRowSums> raw_;
};

// The graph's description for JSON: nodes, slot, proxy, and per layer the raw row sums
// (min, mean, max, rows, empty rows), summed over the samples given.
nlohmann::json graph_reading_json(int graph_nodes, bool slot, bool sink_token, RowProxy proxy,
                                  const std::vector<RawRowSums>& raw);
// Adds `more` (another sample's sums) into `total`, layer by layer.
void accumulate_raw_row_sums(std::vector<RawRowSums>& total, const std::vector<RawRowSums>& more);

// Per layer, the mean over query rows of the weight on node 0 (rows 1..N-1 of an N-node graph, the
// first row being node 0's own): with a slot, alpha_* of the probe averaged over heads; with a
// sink token, its alpha_1 without the token's own row.
std::vector<double> node0_column_means(const AttentionSample& sample);

}  // namespace sinklab::analysis
