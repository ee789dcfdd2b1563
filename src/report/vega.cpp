#include "report/vega.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "core/error.h"
#include "report/html.h"

namespace sinklab {

using nlohmann::json;

namespace {

constexpr const char* kSchema = "https://vega.github.io/schema/vega-lite/v6.json";  // a name; nothing is fetched
// Okabe & Ito's colour-blind-safe palette (yellow left out: too pale on white).
constexpr const char* kPalette[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000"};
// Whole numbers (steps, layers) up to millions with thousands separators, fractions to 6 digits.
constexpr const char* kXFormat = ",.6~g";

json palette(size_t n) {
    json range = json::array();
    for (size_t i = 0; i < n; ++i) range.push_back(kPalette[i % std::size(kPalette)]);
    return range;
}

json base_spec(const ChartOptions& o) {
    json spec = {{"$schema", kSchema}, {"width", o.width}, {"height", o.height}, {"config", {{"view", {{"stroke", nullptr}}}}}};
    if (!o.title.empty()) spec["title"] = o.title;
    return spec;
}

json y_scale(const ChartOptions& o) {
    json scale = {{"type", o.log_y ? "log" : "linear"}};
    if (!o.log_y) scale["zero"] = true;
    if (o.y_min || o.y_max) {
        SINKLAB_CHECK(o.y_min && o.y_max, "report", "chart '{}': give both y_min and y_max, or neither", o.title);
        scale["domain"] = {*o.y_min, *o.y_max};
    }
    return scale;
}

bool drawable(double y, bool log_y) { return std::isfinite(y) && (!log_y || y > 0.0); }

// The reference lines as two layers over the chart: a dashed rule and its label at the right end.
void add_rules(json& layers, const ChartOptions& o) {
    if (o.rules.empty()) return;
    json values = json::array();
    for (const ReferenceLine& r : o.rules) {
        SINKLAB_CHECK(drawable(r.y, o.log_y), "report", "chart '{}': the line '{}' at {} cannot be drawn", o.title,
                      r.label, r.y);
        values.push_back({{"y", r.y}, {"label", r.label}});
    }
    const json y = {{"field", "y"}, {"type", "quantitative"}};
    layers.push_back({{"data", {{"values", values}}},
                      {"mark", {{"type", "rule"}, {"strokeDash", {5, 4}}, {"color", "#57606a"}, {"strokeWidth", 1.5}}},
                      {"encoding",
                       {{"y", y},
                        {"tooltip", {{{"field", "label"}, {"title", "line"}},
                                     {{"field", "y"}, {"title", "value"}, {"format", kNumberFormat}}}}}}});
    layers.push_back({{"data", {{"values", values}}},
                      {"mark", {{"type", "text"}, {"align", "right"}, {"baseline", "bottom"}, {"dy", -3},
                                {"color", "#57606a"}, {"fontSize", 11}}},
                      {"encoding", {{"y", y}, {"x", {{"value", o.width}}}, {"text", {{"field", "label"}}}}}});
}

// Series names as the colour legend shows them (no title: the names say what they are).
json series_color(const std::vector<std::string>& names) {
    return {{"field", "series"},
            {"type", "nominal"},
            {"title", nullptr},
            {"sort", names},
            {"scale", {{"domain", names}, {"range", palette(names.size())}}},
            {"legend", {{"orient", "right"}, {"labelLimit", 220}}}};
}

// Clicking a legend entry (or a mark) keeps that series; shift-click adds one; a click elsewhere resets.
json legend_pick() {
    return {{"name", "pick"}, {"select", {{"type", "point"}, {"fields", {"series"}}}}, {"bind", "legend"}};
}
const json kPickedOpacity = {{"condition", {{"param", "pick"}, {"value", 1}}}, {"value", 0.12}};

}  // namespace

json vega_line_chart(const std::vector<Series>& series, const ChartOptions& o) {
    SINKLAB_CHECK(!series.empty(), "report", "line chart '{}' has no series", o.title);
    json values = json::array();
    std::vector<std::string> names;
    for (const Series& s : series) {
        SINKLAB_CHECK(s.x.size() == s.y.size(), "report", "series '{}' of '{}' has {} x and {} y values", s.name,
                      o.title, s.x.size(), s.y.size());
        names.push_back(s.name);
        for (size_t i = 0; i < s.x.size(); ++i)
            if (std::isfinite(s.x[i]) && drawable(s.y[i], o.log_y))
                values.push_back({{"series", s.name}, {"x", s.x[i]}, {"y", s.y[i]}, {"dashed", s.dashed}});
    }
    // A point per value where they stay apart (layers, evaluations); a long curve (every training
    // step) is a line alone, whose tooltip shows the value nearest the pointer.
    size_t longest = 0;
    for (const Series& s : series) longest = std::max(longest, s.x.size());
    const bool points = longest <= 200;
    bool whole_x = true;  // steps, layers, powers: ticks on whole numbers only
    for (const Series& s : series)
        for (double x : s.x) whole_x = whole_x && std::isfinite(x) && x == std::floor(x);
    json x_axis = json::object();  // Vega's own tick format: 4,000 and 0.074, never 4e+3
    if (whole_x) x_axis["tickMinStep"] = 1;
    json spec = base_spec(o);
    spec["data"] = {{"values", values}};
    json lines = {
        {"params", {{{"name", "zoom"}, {"select", "interval"}, {"bind", "scales"}}, legend_pick()}},
        {"mark", {{"type", "line"}, {"point", points ? json{{"filled", true}, {"size", 36}} : json(false)},
                  {"strokeWidth", points ? 2 : 1.5}}},
        {"encoding",
         {{"x", {{"field", "x"}, {"type", "quantitative"}, {"title", o.x_label}, {"scale", {{"zero", false}}},
                 {"axis", x_axis}}},
          {"y", {{"field", "y"}, {"type", "quantitative"}, {"title", o.y_label}, {"scale", y_scale(o)}}},
          {"color", series_color(names)},
          {"strokeDash", {{"field", "dashed"}, {"type", "nominal"}, {"legend", nullptr},
                          {"scale", {{"domain", {false, true}}, {"range", {{1, 0}, {6, 4}}}}}}},
          {"opacity", kPickedOpacity},
          {"tooltip", {{{"field", "series"}, {"title", "series"}},
                       {{"field", "x"}, {"title", o.x_label.empty() ? "x" : o.x_label}, {"format", kXFormat}},
                       {{"field", "y"}, {"title", o.y_label.empty() ? "y" : o.y_label}, {"format", kNumberFormat}}}}}}};
    json layers = json::array({lines});
    add_rules(layers, o);
    spec["layer"] = std::move(layers);
    return spec;
}

json vega_bar_chart(const std::vector<std::string>& categories, const std::vector<BarSeries>& series,
                    const ChartOptions& o) {
    SINKLAB_CHECK(!series.empty() && !categories.empty(), "report", "bar chart '{}' has no bars", o.title);
    json values = json::array();
    std::vector<std::string> names;
    for (const BarSeries& s : series) {
        SINKLAB_CHECK(s.values.size() == categories.size(), "report", "bar series '{}' of '{}' has {} values for {} categories",
                      s.name, o.title, s.values.size(), categories.size());
        names.push_back(s.name);
        for (size_t c = 0; c < categories.size(); ++c)
            if (drawable(s.values[c], o.log_y))
                values.push_back({{"category", categories[c]}, {"series", s.name}, {"value", s.values[c]}});
    }
    json spec = base_spec(o);
    spec["data"] = {{"values", values}};
    json bars = {
        {"params", {legend_pick()}},
        {"mark", {{"type", "bar"}, {"cornerRadiusEnd", 1}}},
        {"encoding",
         {{"x", {{"field", "category"}, {"type", "nominal"}, {"title", o.x_label}, {"sort", categories},
                 {"axis", {{"labelAngle", 0}}}}},
          {"xOffset", {{"field", "series"}, {"type", "nominal"}, {"sort", names}}},
          {"y", {{"field", "value"}, {"type", "quantitative"}, {"title", o.y_label}, {"scale", y_scale(o)}}},
          {"color", series_color(names)},
          {"opacity", kPickedOpacity},
          {"tooltip", {{{"field", "series"}, {"title", "series"}},
                       {{"field", "category"}, {"title", o.x_label.empty() ? "category" : o.x_label}},
                       {{"field", "value"}, {"title", o.y_label.empty() ? "value" : o.y_label},
                        {"format", kNumberFormat}}}}}}};
    json layers = json::array({bars});
    add_rules(layers, o);
    spec["layer"] = std::move(layers);
    return spec;
}

json vega_scatter_chart(const std::vector<ScatterPoint>& points, const ChartOptions& o) {
    json values = json::array();
    std::vector<std::string> names;
    for (const ScatterPoint& p : points) {
        if (!std::isfinite(p.x) || !drawable(p.y, o.log_y)) continue;
        if (std::find(names.begin(), names.end(), p.series) == names.end()) names.push_back(p.series);
        values.push_back({{"series", p.series}, {"label", p.label}, {"x", p.x}, {"y", p.y}});
    }
    SINKLAB_CHECK(!values.empty(), "report", "scatter '{}' has no point to draw", o.title);
    json spec = base_spec(o);
    spec["data"] = {{"values", values}};
    json marks = {
        {"params", {{{"name", "zoom"}, {"select", "interval"}, {"bind", "scales"}}, legend_pick()}},
        {"mark", {{"type", "point"}, {"filled", true}, {"size", 60}}},
        {"encoding",
         {{"x", {{"field", "x"}, {"type", "quantitative"}, {"title", o.x_label}}},
          {"y", {{"field", "y"}, {"type", "quantitative"}, {"title", o.y_label}, {"scale", y_scale(o)}}},
          {"color", series_color(names)},
          {"opacity", kPickedOpacity},
          {"tooltip", {{{"field", "series"}, {"title", "series"}},
                       {{"field", "label"}, {"title", "point"}},
                       {{"field", "x"}, {"title", o.x_label.empty() ? "x" : o.x_label}, {"format", kNumberFormat}},
                       {{"field", "y"}, {"title", o.y_label.empty() ? "y" : o.y_label}, {"format", kNumberFormat}}}}}}};
    json layers = json::array({marks});
    add_rules(layers, o);
    spec["layer"] = std::move(layers);
    return spec;
}

json vega_heatmap(const HeatmapFigure& f) {
    SINKLAB_CHECK(f.rows > 0 && f.cols > 0 && !f.png.empty(), "report", "heatmap '{}' is empty", f.title);
    SINKLAB_CHECK(f.scale.vmax > f.scale.vmin && (f.scale.kind != ScaleKind::log || f.scale.vmin > 0), "report",
                  "heatmap '{}': the colour range [{}, {}] is empty{}", f.title, f.scale.vmin, f.scale.vmax,
                  f.scale.kind == ScaleKind::log ? " or not positive (log scale)" : "");
    // Cells centred on whole positions: column j spans [j - 0.5, j + 0.5].
    const double x0 = f.first_col - 0.5, x1 = f.first_col + f.cols - 0.5;
    const double y0 = f.first_row - 0.5, y1 = f.first_row + f.rows - 0.5;
    const json axis = {{"format", "d"}, {"tickMinStep", 1}, {"grid", false}};
    const json x = {{"field", "x"}, {"type", "quantitative"}, {"title", f.x_label},
                    {"scale", {{"domain", {x0, x1}}, {"nice", false}, {"zero", false}}}, {"axis", axis}};
    const json y = {{"field", "y"}, {"type", "quantitative"}, {"title", f.y_label},
                    {"scale", {{"domain", {y0, y1}}, {"nice", false}, {"zero", false}, {"reverse", true}}},
                    {"axis", axis}};
    json spec = {{"$schema", kSchema}, {"width", f.side}, {"height", f.side}};
    if (!f.title.empty()) spec["title"] = f.title;
    const json image = {
        {"data", {{"values", {{{"x", (x0 + x1) / 2}, {"y", (y0 + y1) / 2},
                               {"url", "data:image/png;base64," + base64_encode(f.png)}}}}}},
        {"mark", {{"type", "image"}, {"width", f.side}, {"height", f.side}, {"aspect", false}, {"align", "center"},
                  {"baseline", "middle"}}},
        {"encoding", {{"x", x}, {"y", y}, {"url", {{"field", "url"}, {"type", "nominal"}}}}}};
    // An invisible mark at the corners carries the colour scale, so that Vega draws its colour bar.
    const json bar = {
        {"data", {{"values", {{{"x", x0}, {"y", y0}, {"v", f.scale.vmin}}, {{"x", x1}, {"y", y1}, {"v", f.scale.vmax}}}}}},
        {"mark", {{"type", "point"}, {"size", 0}, {"filled", true}, {"opacity", 1}}},
        {"encoding",
         {{"x", x},
          {"y", y},
          {"color", {{"field", "v"}, {"type", "quantitative"}, {"title", f.color_label},
                     {"scale", {{"type", f.scale.kind == ScaleKind::log ? "log" : "linear"},
                                {"domain", {f.scale.vmin, f.scale.vmax}},
                                {"scheme", f.colormap == Colormap::magma ? "magma" : "viridis"}}},
                     {"legend", {{"format", "~g"}, {"gradientLength", f.side - 20}}}}}}}};
    spec["layer"] = {image, bar};
    return spec;
}

}  // namespace sinklab
