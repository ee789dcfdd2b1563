#pragma once
// Attention maps as images: rows are queries (top to bottom), columns keys (left to right).
// Long sequences are pooled by averaging square blocks so that no side exceeds max_side pixels;
// small maps are enlarged by an integer nearest-neighbour factor so that they stay legible.
// Masked entries (the upper causal triangle, and any NaN) are drawn in a neutral grey that no
// colour map value takes, so "masked" never reads as "zero weight".
#include <optional>
#include <string>
#include <string_view>

#include "report/colormap.h"
#include "report/image.h"

namespace sinklab {

struct HeatmapOptions {
    Colormap colormap = Colormap::viridis;
    ScaleKind scale = ScaleKind::linear;
    double log_floor = 1e-4;       // log scale: values below clamp to this
    std::optional<double> vmin{};  // colour range; default: the range of the drawn (pooled) values,
    std::optional<double> vmax{};  // the low end raised to log_floor on a log scale
    bool causal = true;            // mask key j > query i + (cols - rows) (bottom-right aligned, so a
                                   // leading slot column or cached keys stay visible)
    int max_side = 1024;           // pool until both sides fit
    int min_side = 256;            // enlarge until the longer side reaches this (never past max_side)
    Rgb masked_color = {0xc8, 0xc8, 0xc8};
};

struct Heatmap {
    Image image;
    int pool = 1;       // each pixel block averages pool x pool entries
    int upscale = 1;    // each (pooled) entry is drawn as upscale x upscale pixels
    double vmin = 0.0;  // the value range the colours span (for a colour bar)
    double vmax = 0.0;

    // "<stem>_pool<k>.png" when pooled, "<stem>.png" otherwise, e.g. "layer03_head-avg_pool4.png".
    std::string file_name(std::string_view stem) const;
};

// `values` is (rows, cols), row-major. A pooled pixel is the mean of the visible entries of its
// block (blocks on the causal diagonal average their visible part only); a block with no visible
// entry is masked.
Heatmap render_heatmap(const float* values, int rows, int cols, const HeatmapOptions& options = {});

}  // namespace sinklab
