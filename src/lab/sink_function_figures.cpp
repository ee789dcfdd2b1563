#include "lab/sink_function_figures.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "report/heatmap.h"
#include "report/png.h"
#include "report/vega.h"

namespace sinklab {

namespace {

// JSON null for a number that was not measured.
nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

const OverMixingRun* find_run(const ModelOverMixing& m, const std::string& condition) {
    for (const OverMixingRun& run : m.runs)
        if (run.condition == condition) return &run;
    return nullptr;
}

// An encoder's change is measured on both sides of the replaced token, at |d| (bidirectional attention).
bool both_sides(const ModelOverMixing& m) {
    return !m.runs.empty() && m.runs.front().result.distance_convention == kBidirectionalDistances;
}

// The over-mixing caption from the numbers: the last layer's mean change with the sink, and each
// condition's against it.
std::string over_mixing_caption(const ModelOverMixing& m) {
    const OverMixingRun* with = find_run(m, "with sink");
    std::string text = fmt::format("Mean relative change of the residual stream {} one replaced token ({}), per "
                                   "layer, with the model's sink and with it taken away.",
                                   both_sides(m) ? "on both sides of" : "after", m.input);
    if (!with || with->result.layers == 0) return text;
    const int last = with->result.layers - 1;
    const double base = with->result.residual[last].mean;
    if (!std::isfinite(base)) return text;
    text += fmt::format(" At the last layer the change is {:.3g} with the sink", base);
    for (const OverMixingRun& run : m.runs) {
        if (&run == with || run.result.layers <= last) continue;
        const double v = run.result.residual[last].mean;
        if (std::isfinite(v)) text += fmt::format("; {:.3g} with {} ({:.3g} times as much)", v, run.condition, v / base);
    }
    return text + ".";
}

}  // namespace

nlohmann::json over_mixing_layer_records(const ModelOverMixing& m) {
    nlohmann::json rows = nlohmann::json::array();
    for (const OverMixingRun& run : m.runs)
        for (int l = 0; l < run.result.layers; ++l)
            rows.push_back({{"sink", run.condition},
                            {"layer", l},
                            {"mean", number(run.result.residual[l].mean)},
                            {"p90", number(run.result.residual[l].p90)},
                            {"heads_mean", number(run.result.heads_pooled[l].mean)}});
    return rows;
}

nlohmann::json over_mixing_distance_records(const ModelOverMixing& m) {
    nlohmann::json rows = nlohmann::json::array();
    for (const OverMixingRun& run : m.runs)
        for (int l = 0; l < run.result.layers; ++l)
            for (size_t d = 0; d < run.result.residual_by_distance[l].size(); ++d)
                rows.push_back({{"sink", run.condition},
                                {"layer", l},
                                {"distance", d + 1},
                                {"mean", number(run.result.residual_by_distance[l][d])}});
    return rows;
}

nlohmann::json no_op_records(const ProbeResult& r) {
    nlohmann::json rows = nlohmann::json::array();
    for (size_t l = 0; l < r.head_output_ratio.size(); ++l)
        for (size_t h = 0; h < r.head_output_ratio[l].size(); ++h)
            rows.push_back({{"layer", l},
                            {"head", h},
                            {"sink_share", number(r.sink_share[l][h])},
                            {"output_ratio", number(r.head_output_ratio[l][h])}});
    return rows;
}

void add_over_mixing_figures(ReportPage& page, const ModelOverMixing& m) {
    if (m.runs.empty() || m.runs.front().result.layers == 0) return;
    const int layers = m.runs.front().result.layers;
    std::vector<std::string> categories;
    for (int l = 0; l < layers; ++l) categories.push_back(std::to_string(l));
    std::vector<BarSeries> bars;
    for (const OverMixingRun& run : m.runs) {
        if (run.result.layers != layers) continue;
        BarSeries s{run.condition, {}};
        for (int l = 0; l < layers; ++l) s.values.push_back(run.result.residual[l].mean);
        bars.push_back(std::move(s));
    }
    page.vega_figure(vega_bar_chart(categories, bars,
                                    {.title = "Over-mixing: change of the residual stream", .x_label = "layer",
                                     .y_label = "mean ||h(x') - h(x)|| / ||h(x)||"}),
                     over_mixing_caption(m));

    // One map per condition, rows layers, columns distances, on one colour range.
    double vmax = 0.0;
    for (const OverMixingRun& run : m.runs)
        for (const auto& layer : run.result.residual_by_distance)
            for (double v : layer)
                if (std::isfinite(v)) vmax = std::max(vmax, v);
    if (!(vmax > 0.0)) return;
    HeatmapOptions options;
    options.causal = false;
    options.vmin = 0.0;
    options.vmax = vmax;
    options.max_side = 512;
    options.min_side = 128;
    for (const OverMixingRun& run : m.runs) {
        const auto& grid = run.result.residual_by_distance;
        const int rows = static_cast<int>(grid.size()), cols = rows ? static_cast<int>(grid[0].size()) : 0;
        if (rows == 0 || cols == 0) continue;
        std::vector<float> values;
        for (const auto& layer : grid)
            for (double v : layer) values.push_back(static_cast<float>(v));
        HeatmapFigure f;
        f.png = encode_png(render_heatmap(values.data(), rows, cols, options).image);
        f.rows = rows;
        f.cols = cols;
        f.first_row = 0;
        f.first_col = 1;
        f.scale = {ScaleKind::linear, 0.0, vmax, 1e-4};
        f.title = "Over-mixing by layer and distance: " + run.condition;
        f.x_label = "distance from the replaced token";
        f.y_label = "layer";
        f.color_label = "relative change";
        f.side = 220;
        page.vega_figure(vega_heatmap(f),
                         fmt::format("Mean change of the residual stream by layer (rows) and distance from the "
                                     "replaced token (columns{}), {}; every condition of this model on one colour "
                                     "range (0 to {:.3g}; grey: no position that far): how far, and how deep, a "
                                     "change spreads.",
                                     both_sides(m) ? ", |d| on both sides" : "", run.condition, vmax));
    }
}

void add_no_op_figure(ReportPage& page, const ProbeResult& r, const std::string& input) {
    if (r.head_output_ratio.empty()) return;
    std::vector<ScatterPoint> points;
    std::vector<double> sinking, others;  // output ratios of heads above and below 0.3 on the sink
    for (size_t l = 0; l < r.head_output_ratio.size(); ++l)
        for (size_t h = 0; h < r.head_output_ratio[l].size(); ++h) {
            const double share = r.sink_share[l][h], ratio = r.head_output_ratio[l][h];
            if (!std::isfinite(share) || !std::isfinite(ratio)) continue;
            points.push_back({share, ratio, fmt::format("layer {}", l), fmt::format("head {}", h)});
            (share > 0.3 ? sinking : others).push_back(ratio);
        }
    if (points.empty()) return;
    auto mean = [](const std::vector<double>& v) {
        double s = 0.0;
        for (double x : v) s += x;
        return s / static_cast<double>(v.size());
    };
    std::string caption = fmt::format(
        "One point per head ({} input): its mean attention on the sink ({}) against its mean output norm over its "
        "mean value norm; a head that parks its attention on a sink should output almost nothing. ",
        input, r.sink_share_of);
    if (sinking.empty())
        caption += fmt::format("No head puts more than 0.3 of its attention on the sink; the {} heads' ratios lie "
                               "between {:.3g} and {:.3g}.",
                               others.size(), *std::min_element(others.begin(), others.end()),
                               *std::max_element(others.begin(), others.end()));
    else if (others.empty())
        caption += fmt::format("Every head puts more than 0.3 of its attention on the sink (mean ratio {:.3g}).",
                               mean(sinking));
    else
        caption += fmt::format("The {} heads above 0.3 have a mean ratio of {:.3g}, the other {} of {:.3g}.",
                               sinking.size(), mean(sinking), others.size(), mean(others));
    page.vega_figure(vega_scatter_chart(points, {.title = "No-op reading of each head",
                                                 .x_label = "attention on the " + r.sink_share_of,
                                                 .y_label = "mean ||o_t|| / mean ||v_j||"}),
                     caption);
}

}  // namespace sinklab
