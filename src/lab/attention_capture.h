#pragma once
// One B = 1 forward of any model as the analyses read it (analysis/attention_graph.h): the
// Transformer's taps (attn_slot_weights, attn_weights, embed, block_out) become one
// sample's attention graph per layer, with the slot as node 0 and the probe's proxy for designs
// whose rows do not sum to 1. Used by `sinklab analyze` and the report's measurements alike.
#include <functional>

#include "analysis/attention_graph.h"
#include "metrics/sink_scores.h"
#include "model/transformer.h"

namespace sinklab {

// How the analyses read `spec`'s rows: the probe's proxy (metrics/proxy.h) for unnormalised
// and signed designs, and w / sum w for softpick, whose rows sum to at most 1.
analysis::RowProxy graph_proxy(const AttentionSpec& spec);

class AttentionGraphCapture final : public TensorObserver {
public:
    // `on_layer(layer, weights, NH, T)` (optional) sees each layer's raw token weights (NH, T, T) as
    // they stream by, e.g. to draw them, before the next layer overwrites them.
    using LayerHook = std::function<void(int layer, const float* weights, int NH, int T)>;
    AttentionGraphCapture(const ModelConfig& config, bool keep_heads, bool keep_hidden, LayerHook on_layer = {});

    void observe(Tap tap, int layer, const float* data, const Shape& shape) override;

    analysis::AttentionGraphBuilder graph;

private:
    LayerHook on_layer_;
    SlotWeightsTap slot_;  // a slot design's weights until its layer's weights tap
};

}  // namespace sinklab
