#include "report/heatmap.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"

namespace sinklab {

namespace {

int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Means of the visible entries of each pool x pool block; NaN where a block has none.
std::vector<double> pool_blocks(const float* values, int rows, int cols, int pool, bool causal) {
    const int pooled_rows = ceil_div(rows, pool), pooled_cols = ceil_div(cols, pool);
    const long shift = static_cast<long>(cols) - rows;  // query i sees keys j <= i + shift
    std::vector<double> pooled(static_cast<size_t>(pooled_rows) * pooled_cols);
    std::vector<double> sum(pooled_cols);
    std::vector<long> count(pooled_cols);
    for (int bi = 0; bi < pooled_rows; bi++) {
        std::fill(sum.begin(), sum.end(), 0.0);
        std::fill(count.begin(), count.end(), 0);
        for (int i = bi * pool; i < std::min(rows, (bi + 1) * pool); i++) {
            const float* row = values + static_cast<size_t>(i) * cols;
            const int visible =
                causal ? static_cast<int>(std::clamp(i + shift + 1, 0L, static_cast<long>(cols))) : cols;
            for (int bj = 0; bj * pool < visible; bj++) {
                for (int j = bj * pool; j < std::min(visible, (bj + 1) * pool); j++) {
                    if (std::isnan(row[j])) continue;
                    sum[bj] += row[j];
                    count[bj]++;
                }
            }
        }
        for (int bj = 0; bj < pooled_cols; bj++)
            pooled[static_cast<size_t>(bi) * pooled_cols + bj] =
                count[bj] > 0 ? sum[bj] / count[bj] : std::numeric_limits<double>::quiet_NaN();
    }
    return pooled;
}

}  // namespace

std::string Heatmap::file_name(std::string_view stem) const {
    return pool > 1 ? fmt::format("{}_pool{}.png", stem, pool) : fmt::format("{}.png", stem);
}

Heatmap render_heatmap(const float* values, int rows, int cols, const HeatmapOptions& options) {
    SINKLAB_CHECK(values != nullptr && rows > 0 && cols > 0, "report",
                  "heatmap of a {}x{} map: expected a non-empty (rows, cols) buffer", rows, cols);
    SINKLAB_CHECK(options.max_side >= 1 && options.min_side >= 1, "report",
                  "heatmap max_side {} and min_side {}: both must be at least 1 pixel", options.max_side,
                  options.min_side);
    SINKLAB_CHECK(options.scale != ScaleKind::log || options.log_floor > 0.0, "report",
                  "heatmap log scale with floor {}: the floor must be positive", options.log_floor);

    Heatmap heatmap;
    heatmap.pool = ceil_div(std::max(rows, cols), options.max_side);
    const int pooled_rows = ceil_div(rows, heatmap.pool), pooled_cols = ceil_div(cols, heatmap.pool);
    const std::vector<double> pooled = pool_blocks(values, rows, cols, heatmap.pool, options.causal);

    const int longest = std::max(pooled_rows, pooled_cols);
    if (longest < options.min_side)
        heatmap.upscale = std::max(1, std::min(ceil_div(options.min_side, longest), options.max_side / longest));

    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (double v : pooled) {
        if (std::isnan(v)) continue;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    if (lo > hi) lo = hi = 0.0;  // everything masked
    if (options.scale == ScaleKind::log) lo = std::max(lo, options.log_floor);
    heatmap.vmin = options.vmin.value_or(lo);
    heatmap.vmax = options.vmax.value_or(hi);
    const ValueScale scale{options.scale, heatmap.vmin, heatmap.vmax, options.log_floor};

    const int u = heatmap.upscale;
    heatmap.image = Image(pooled_cols * u, pooled_rows * u);
    for (int bi = 0; bi < pooled_rows; bi++) {
        for (int bj = 0; bj < pooled_cols; bj++) {
            const double v = pooled[static_cast<size_t>(bi) * pooled_cols + bj];
            const Rgb color = std::isnan(v) ? options.masked_color : colormap_rgb(options.colormap, scale.normalize(v));
            for (int y = bi * u; y < (bi + 1) * u; y++)
                for (int x = bj * u; x < (bj + 1) * u; x++) heatmap.image.set(x, y, color);
        }
    }
    return heatmap;
}

}  // namespace sinklab
