#pragma once
// Attention heatmaps of one sample as PNG files: every layer and head, and each layer's mean over
// heads. They come from the materialised path, one layer at a time, so their memory is one layer's
// (NH, T, T) weights; long sequences are pooled to at most 1024 x 1024 pixels (report/heatmap.h).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "report/heatmap.h"

namespace sinklab {

struct AttentionMapOptions {
    Colormap colormap = Colormap::viridis;
    ScaleKind scale = ScaleKind::linear;
    int max_side = 1024;
    // One layer's weights may not exceed this; beyond it the command says to shorten --seq-len.
    double max_layer_bytes = 4.0 * (1L << 30);
};

// Runs `tokens` (one sequence of T) and writes DIR/layerLL_headHH[_poolP].png and
// DIR/layerLL_head-avg[_poolP].png (P the pooling factor when T > max_side). Returns the file names.
std::vector<std::string> write_attention_maps(Transformer& model, const int32_t* tokens, int T,
                                              const std::filesystem::path& dir, const AttentionMapOptions& options);

}  // namespace sinklab
