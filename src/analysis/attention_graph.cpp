#include "analysis/attention_graph.h"

#include <algorithm>
#include <cmath>

#include "analysis/results.h"
#include "core/error.h"

namespace sinklab::analysis {

const char* row_proxy_name(RowProxy proxy) {
    switch (proxy) {
        case RowProxy::none: return "none";
        case RowProxy::ratio: return "ratio";
        case RowProxy::abs_ratio: return "abs_ratio";
    }
    return "?";
}

AttentionGraphBuilder::AttentionGraphBuilder(int layers, RowProxy proxy, bool slot, bool keep_heads, bool keep_hidden)
    : proxy_(proxy), slot_(slot), keep_heads_(keep_heads), keep_hidden_(keep_hidden), raw_(layers) {
    SINKLAB_CHECK(layers > 0, "analysis", "an attention graph needs at least one layer");
    sample_.attention.resize(layers);
    if (keep_heads_) sample_.heads.resize(layers);
    if (keep_hidden_) sample_.hidden.resize(layers + 1);
}

void AttentionGraphBuilder::read_row(int layer, const float* row, const float* slot_weight, int T, double* out) {
    // out: the row over the graph's nodes (slot first when there is one)
    const int offset = slot_ ? 1 : 0;
    if (slot_) out[0] = *slot_weight;
    for (int j = 0; j < T; ++j) out[offset + j] = row[j];
    const int N = T + offset;
    double raw = 0.0, norm = 0.0;
    for (int j = 0; j < N; ++j) {
        raw += out[j];
        norm += proxy_ == RowProxy::abs_ratio ? std::abs(out[j]) : out[j];
    }
    RawRowSums& r = raw_[layer];
    r.min = r.rows == 0 ? raw : std::min(r.min, raw);
    r.max = r.rows == 0 ? raw : std::max(r.max, raw);
    r.sum += raw;
    ++r.rows;
    if (proxy_ == RowProxy::none) return;
    if (norm == 0.0) {
        ++r.empty_rows;
        return;  // the caller makes it a self-loop
    }
    for (int j = 0; j < N; ++j) out[j] = (proxy_ == RowProxy::abs_ratio ? std::abs(out[j]) : out[j]) / norm;
}

void AttentionGraphBuilder::add_weights(int layer, const float* weights, const float* slot, int NH, int T) {
    SINKLAB_ASSERT(layer >= 0 && layer < static_cast<int>(sample_.attention.size()));
    SINKLAB_CHECK(slot_ == (slot != nullptr), "analysis", "layer {}: {}", layer,
                  slot_ ? "the design has a slot, but its weights did not come with the layer's"
                        : "slot weights given for a design without a slot");
    const int offset = slot_ ? 1 : 0, N = T + offset;
    Eigen::MatrixXd mean = Eigen::MatrixXd::Zero(N, N);  // (N, N)
    if (keep_heads_) sample_.heads[layer].assign(NH, Eigen::MatrixXd::Zero(N, N));
    std::vector<double> row(N);
    for (int h = 0; h < NH; ++h) {
        for (int i = 0; i < T; ++i) {
            const long before = raw_[layer].empty_rows;
            read_row(layer, weights + (static_cast<size_t>(h) * T + i) * T, slot ? slot + static_cast<size_t>(h) * T + i : nullptr,
                     T, row.data());
            if (raw_[layer].empty_rows != before) {  // no weight at all: the query keeps to itself
                std::fill(row.begin(), row.end(), 0.0);
                row[offset + i] = 1.0;
            }
            for (int j = 0; j < N; ++j) {
                mean(offset + i, j) += row[j] / NH;
                if (keep_heads_) sample_.heads[layer][h](offset + i, j) = row[j];
            }
        }
        if (slot_ && keep_heads_) sample_.heads[layer][h](0, 0) = 1.0;
    }
    if (slot_) mean(0, 0) = 1.0;  // the slot is no query: it keeps to itself, as a causal first row
    sample_.attention[layer] = std::move(mean);
}

void AttentionGraphBuilder::add_hidden(int index, const float* hidden, int T, int C) {
    if (!keep_hidden_) return;
    SINKLAB_ASSERT(index >= 0 && index < static_cast<int>(sample_.hidden.size()));
    const int offset = slot_ ? 1 : 0;
    Eigen::MatrixXd h = Eigen::MatrixXd::Zero(T + offset, C);  // (N, C)
    for (int i = 0; i < T; ++i)
        for (int c = 0; c < C; ++c) h(offset + i, c) = hidden[static_cast<size_t>(i) * C + c];
    sample_.hidden[index] = std::move(h);
}

const AttentionSample& AttentionGraphBuilder::sample() const {
    for (size_t l = 0; l < sample_.attention.size(); ++l)
        SINKLAB_CHECK(sample_.attention[l].size() > 0, "analysis", "layer {}: no attention weights were captured", l);
    if (keep_hidden_)
        for (size_t i = 0; i < sample_.hidden.size(); ++i)
            SINKLAB_CHECK(sample_.hidden[i].size() > 0, "analysis", "hidden state {} was not captured", i);
    return sample_;
}

AttentionSample AttentionGraphBuilder::take_sample() {
    sample();  // checks
    return std::move(sample_);
}

int AttentionGraphBuilder::graph_nodes() const {
    return sample_.attention.empty() ? 0 : static_cast<int>(sample_.attention.front().rows());
}

void accumulate_raw_row_sums(std::vector<RawRowSums>& total, const std::vector<RawRowSums>& more) {
    if (total.empty()) {
        total = more;
        return;
    }
    SINKLAB_ASSERT(total.size() == more.size());
    for (size_t l = 0; l < more.size(); ++l) {
        RawRowSums& t = total[l];
        const RawRowSums& m = more[l];
        if (m.rows == 0) continue;
        t.min = t.rows == 0 ? m.min : std::min(t.min, m.min);
        t.max = t.rows == 0 ? m.max : std::max(t.max, m.max);
        t.sum += m.sum;
        t.rows += m.rows;
        t.empty_rows += m.empty_rows;
    }
}

nlohmann::json graph_reading_json(int graph_nodes, bool slot, bool sink_token, RowProxy proxy,
                                  const std::vector<RawRowSums>& raw) {
    nlohmann::json layers = nlohmann::json::array();
    for (size_t l = 0; l < raw.size(); ++l)
        layers.push_back({{"layer", l},
                          {"min", json_number(raw[l].min)},
                          {"mean", json_number(raw[l].mean())},
                          {"max", json_number(raw[l].max)},
                          {"rows", raw[l].rows},
                          {"empty_rows", raw[l].empty_rows}});
    const char* node0 = slot ? "slot" : sink_token ? "sink_token" : "token 1";
    return {{"graph_nodes", graph_nodes},
            {"node0", node0},
            {"proxy", row_proxy_name(proxy)},
            {"definition",
             proxy == RowProxy::none
                 ? "the design's weights as they are (every row sums to 1)"
                 : proxy == RowProxy::ratio ? "each row of weights w read as w / sum w (the probe's proxy)"
                                            : "each row of weights w read as |w| / sum |w| (the probe's proxy for "
                                              "signed kernels)"},
            {"raw_row_sums", std::move(layers)}};
}

std::vector<double> node0_column_means(const AttentionSample& sample) {
    std::vector<double> out;
    for (const Eigen::MatrixXd& a : sample.attention) {
        const Eigen::Index N = a.rows();
        out.push_back(N > 1 ? a.col(0).tail(N - 1).mean() : 0.0);
    }
    return out;
}

}  // namespace sinklab::analysis
