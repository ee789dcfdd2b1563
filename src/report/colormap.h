#pragma once
// Perceptually uniform colour maps (matplotlib's viridis and magma) and the value scales that feed
// them: linear, or logarithmic with a floor so that zeros and tiny weights stay drawable.
#include <string_view>

#include "report/image.h"

namespace sinklab {

enum class Colormap { viridis, magma };

// "viridis" | "magma"; anything else throws, listing the valid names.
Colormap colormap_from_name(std::string_view name);
std::string_view colormap_name(Colormap map);

// The colour at t in [0, 1] (clamped), looked up like matplotlib: entry floor(t * 256), capped at 255.
Rgb colormap_rgb(Colormap map, double t);

enum class ScaleKind { linear, log };

// Maps a value onto [0, 1]: linear between vmin and vmax, or linear in log10 between them, every
// value (and vmin) below log_floor first clamped up to log_floor. A degenerate range maps to 0.
struct ValueScale {
    ScaleKind kind = ScaleKind::linear;
    double vmin = 0.0;
    double vmax = 1.0;
    double log_floor = 1e-4;

    double normalize(double value) const;
};

}  // namespace sinklab
