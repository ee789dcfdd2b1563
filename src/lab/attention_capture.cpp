#include "lab/attention_capture.h"

#include "core/error.h"
#include "metrics/proxy.h"

namespace sinklab {

analysis::RowProxy graph_proxy(const AttentionSpec& spec) {
    switch (sink_metric_proxy(spec)) {
        case ProxyKind::ratio: return analysis::RowProxy::ratio;
        case ProxyKind::abs_ratio: return analysis::RowProxy::abs_ratio;
        case ProxyKind::none: break;
    }
    // softpick: relu(e^s - 1) / sum |e^s - 1| leaves rows below 1 (the probe reads its weights raw)
    return spec.kind == AttentionKind::softpick ? analysis::RowProxy::ratio : analysis::RowProxy::none;
}

AttentionGraphCapture::AttentionGraphCapture(const ModelConfig& config, bool keep_heads, bool keep_hidden,
                                             LayerHook on_layer)
    : graph(config.n_layers, graph_proxy(config.attention), config.attention.has_slot(), keep_heads, keep_hidden),
      on_layer_(std::move(on_layer)) {}

void AttentionGraphCapture::observe(Tap tap, int layer, const float* data, const Shape& shape) {
    if (tap == Tap::attn_slot_weights) {
        slot_.keep(layer, data, shape);
    } else if (tap == Tap::attn_weights) {
        SINKLAB_CHECK(shape.size() == 4 && shape[0] == 1 && shape[3] == shape[2], "analysis",
                      "the attention weights of layer {} are not (1, NH, T, T)", layer);
        const int NH = static_cast<int>(shape[1]), T = static_cast<int>(shape[2]);
        if (on_layer_) on_layer_(layer, data, NH, T);
        graph.add_weights(layer, data, slot_.take(layer), NH, T);
    } else if (tap == Tap::embed || tap == Tap::block_out) {
        graph.add_hidden(tap == Tap::embed ? 0 : layer + 1, data, static_cast<int>(shape[0]), static_cast<int>(shape[1]));
    }
}

}  // namespace sinklab
