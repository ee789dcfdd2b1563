#pragma once
// Interactive figures as Vega-Lite specs (https://vega.github.io/vega-lite/), written as JSON and
// drawn in the page by vega, vega-lite and vega-embed (npm packages that scripts/setup.sh installs
// and ReportPage inlines, so the page stays one offline file). Every chart has tooltips on its
// marks (the values as the tables print them), curves zoom and pan (drag, wheel; double-click
// resets), and clicking a legend entry shows one series alone (shift-click adds another).
//
// A heatmap stays a PNG (report/heatmap.h), drawn as an image mark inside a Vega view that gives it
// axes with token positions and a colour bar of the same colour map and scale.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/colormap.h"

namespace sinklab {

// d3-format of every number the figures and tables show: three significant digits, trailing zeros
// dropped (0.0741, 12.5, 3.3e-05).
inline constexpr const char* kNumberFormat = ".3~g";

struct Series {
    std::string name{};
    std::vector<double> x{};
    std::vector<double> y{};  // as long as x; a non-finite value (or, on a log axis, one <= 0) is left out
    bool dashed = false;      // baselines, e.g. uniform attention
};

struct BarSeries {
    std::string name{};
    std::vector<double> values{};  // one per category
};

// A horizontal line across the plot with its label, e.g. alpha_1 of uniform attention.
struct ReferenceLine {
    double y = 0.0;
    std::string label{};
};

struct ChartOptions {
    std::string title{};
    std::string x_label{};
    std::string y_label{};
    bool log_y = false;
    std::optional<double> y_min{};  // axis range; default: the data's (bars and lines: from 0 unless log)
    std::optional<double> y_max{};
    std::vector<ReferenceLine> rules{};
    int width = 600;
    int height = 300;
};

// Lines with points, one colour per series (a colour-blind-safe palette, Okabe & Ito); zoom and pan.
nlohmann::json vega_line_chart(const std::vector<Series>& series, const ChartOptions& options);

// Grouped bars: one group per category (e.g. layer), one bar per series in each group.
nlohmann::json vega_bar_chart(const std::vector<std::string>& categories, const std::vector<BarSeries>& series,
                              const ChartOptions& options);

// A point of a scatter: its coordinates, the series it is coloured by (its legend entry, e.g.
// "layer 2") and its own name in the tooltip (e.g. "head 3").
struct ScatterPoint {
    double x = 0.0;
    double y = 0.0;
    std::string series{};
    std::string label{};
};

// Points, one colour per series in the order they first appear; zoom and pan; a point's tooltip
// shows its series, label and values. Non-finite points are left out.
nlohmann::json vega_scatter_chart(const std::vector<ScatterPoint>& points, const ChartOptions& options);

struct HeatmapFigure {
    std::string png{};       // the map's PNG bytes (encode_png), rows top to bottom
    int rows = 0, cols = 0;  // the matrix the PNG draws (before pooling)
    int first_row = 1, first_col = 1;  // the position of the first row and column on the axes
    Colormap colormap = Colormap::viridis;
    ValueScale scale{};  // the PNG's colour scale: kind, vmin, vmax
    std::string title{};
    std::string x_label = "key position";
    std::string y_label = "query position";
    std::string color_label = "attention weight";
    int side = 260;  // pixels of the plot's square
};

// The PNG with axes (rows and columns at their positions) and a colour bar.
nlohmann::json vega_heatmap(const HeatmapFigure& figure);

}  // namespace sinklab
