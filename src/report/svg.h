#pragma once
// Small, dependency-free SVG charts for reports: a title, axes with "nice" ticks, axis labels, a
// legend, light grid lines, and a tooltip (<title>) on every marker and bar. The output is a
// standalone <svg> element that can be written as a .svg file or inlined in HTML; it uses no ids,
// so any number of charts can share a page.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "report/colormap.h"

namespace sinklab {

// Escapes & < > " ' and drops the control characters XML 1.0 forbids.
std::string xml_escape(std::string_view text);

struct Series {
    std::string name{};
    std::vector<double> x{};
    std::vector<double> y{};  // as long as x; a NaN (or, on a log axis, a value <= 0) breaks the line
    bool dashed = false;      // for baselines, e.g. uniform attention
};

struct LineChartOptions {
    std::string title{};
    std::string x_label{};
    std::string y_label{};
    int width = 640;
    int height = 360;
    bool log_y = false;
    std::optional<double> y_min{};  // axis range; default: the data's, widened to the nearest ticks
    std::optional<double> y_max{};
};

// Series are coloured in order from a colour-blind-safe palette (Okabe & Ito); x ticks are whole
// numbers when every x is (layers, steps, positions).
std::string line_chart(const std::vector<Series>& series, const LineChartOptions& options);

struct BarSeries {
    std::string name{};
    std::vector<double> values{};  // one per category
};

struct BarChartOptions {
    std::string title{};
    std::string x_label{};
    std::string y_label{};
    int width = 640;
    int height = 360;
};

// Grouped bars: one group per category (e.g. layer), one bar per series (e.g. run) in each group.
// The y axis always includes 0.
std::string bar_chart(const std::vector<std::string>& categories, const std::vector<BarSeries>& series,
                      const BarChartOptions& options);

struct ColorBarOptions {
    Colormap colormap = Colormap::viridis;
    ValueScale scale{};   // the heatmap's: kind, vmin, vmax, log_floor
    std::string label{};  // e.g. "attention weight"
    int width = 280;
};

// A horizontal colour bar with ticks, to sit beside heatmaps drawn with the same map and scale.
std::string color_bar(const ColorBarOptions& options);

}  // namespace sinklab
