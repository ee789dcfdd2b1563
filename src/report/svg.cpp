#include "report/svg.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>

#include "core/error.h"

namespace sinklab {

namespace {

// Okabe & Ito's colour-blind-safe palette (yellow left out: too pale on white).
constexpr const char* kPalette[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000"};
constexpr const char* kFont = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, 'DejaVu Sans', sans-serif";
constexpr const char* kInk = "#1f2328";
constexpr const char* kMuted = "#59636e";
constexpr const char* kAxis = "#8c959f";
constexpr const char* kGrid = "#e6e9ed";
constexpr double kFontSize = 12;
constexpr double kTitleSize = 15;

const char* series_color(size_t i) { return kPalette[i % std::size(kPalette)]; }

size_t code_points(std::string_view text) {
    return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// A generous estimate of rendered width (DejaVu Sans is wide), used only for layout.
double text_width(std::string_view text, double font_size) { return 0.62 * font_size * code_points(text); }

std::string superscript(int k) {
    static const char* digits[] = {"⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"};
    std::string out = k < 0 ? "⁻" : "";
    for (char c : std::to_string(std::abs(k))) out += digits[c - '0'];
    return out;
}

double nice_step(double raw) {
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / magnitude;
    return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * magnitude;
}

// A drawn value range with its ticks; log axes are linear in log10(value).
struct Axis {
    double lo = 0.0, hi = 1.0;
    bool log = false;
    std::vector<double> ticks;
    std::vector<std::string> labels;

    double fraction(double v) const {
        const double a = log ? std::log10(lo) : lo, b = log ? std::log10(hi) : hi;
        if (!(b > a)) return 0.0;
        return ((log ? std::log10(v) : v) - a) / (b - a);
    }
};

// Ticks every 1, 2 or 5 x 10^k; a free end is widened to the next tick.
Axis linear_axis(double lo, double hi, bool widen_lo, bool widen_hi, bool integer_steps) {
    Axis axis;
    if (!(hi > lo)) {
        const double pad = lo == 0.0 ? 1.0 : std::abs(lo) * 0.5;
        if (widen_lo) lo -= pad;
        if (widen_hi) hi += pad;
    }
    axis.lo = lo;
    axis.hi = hi;
    if (!(hi > lo)) {
        axis.ticks = {lo};
        axis.labels = {fmt::format("{:g}", lo)};
        return axis;
    }
    double step = nice_step((hi - lo) / 5.0);
    if (integer_steps) step = std::max(step, 1.0);
    if (widen_lo) axis.lo = std::floor(lo / step + 1e-9) * step;
    if (widen_hi) axis.hi = std::ceil(hi / step - 1e-9) * step;
    const int decimals = step >= 1.0 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
    const bool compact = std::max(std::abs(axis.lo), std::abs(axis.hi)) >= 1e6 || decimals > 6;
    for (double k = std::ceil(axis.lo / step - 1e-9); k * step <= axis.hi + step * 1e-9; k += 1.0) {
        const double v = k * step + 0.0;  // + 0.0 turns -0 into 0
        axis.ticks.push_back(v);
        axis.labels.push_back(compact ? fmt::format("{:g}", v) : fmt::format("{:.{}f}", v, decimals));
    }
    return axis;
}

std::string log_tick_label(int multiplier, int exponent) {
    if (exponent >= -4 && exponent <= 4) return fmt::format("{:g}", multiplier * std::pow(10.0, exponent));
    return multiplier == 1 ? "10" + superscript(exponent) : fmt::format("{}×10{}", multiplier, superscript(exponent));
}

// Ticks at powers of ten (every few when the range spans many decades); when that gives fewer than
// three ticks, or free ends widened to decades would leave the data under half the axis, ticks at
// 1, 2, 5 x 10^k, and failing that at every 1..9 x 10^k. Free ends widen to the next tick.
Axis log_axis(double lo, double hi, bool widen_lo, bool widen_hi) {
    static const std::vector<std::vector<int>> multipliers = {{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
    if (!(hi > lo)) {
        if (widen_lo) lo /= 2;
        if (widen_hi) hi *= 2;
    }
    const int klo = static_cast<int>(std::floor(std::log10(lo))) - 1;
    const int khi = static_cast<int>(std::ceil(std::log10(hi))) + 1;
    Axis axis;
    axis.log = true;
    for (size_t set = 0; set < multipliers.size(); set++) {
        struct Tick {
            double value;
            int multiplier, exponent;
        };
        std::vector<Tick> candidates;
        for (int k = klo; k <= khi; k++)
            for (int m : multipliers[set]) candidates.push_back({m * std::pow(10.0, k), m, k});
        double a = lo, b = hi;  // candidates ascend: a is the last one <= lo, b the first one >= hi
        if (widen_lo)
            for (const Tick& t : candidates)
                if (t.value <= lo * (1 + 1e-9)) a = t.value;
        if (widen_hi)
            for (auto t = candidates.rbegin(); t != candidates.rend(); ++t)
                if (t->value >= hi * (1 - 1e-9)) b = t->value;
        std::vector<Tick> ticks;
        for (const Tick& t : candidates)
            if (t.value >= a * (1 - 1e-9) && t.value <= b * (1 + 1e-9)) ticks.push_back(t);
        if (set == 0 && ticks.size() > 7) {
            // Every `every`-th decade, aligned so that 10^0 is a tick whenever it is in range.
            const int every = static_cast<int>((ticks.size() + 5) / 6);
            std::erase_if(ticks, [every](const Tick& t) { return t.exponent % every != 0; });
        }
        const double coverage = (std::log10(hi) - std::log10(lo)) / (std::log10(b) - std::log10(a));
        if (set + 1 < multipliers.size() && (ticks.size() < 3 || !(coverage >= 0.5))) continue;
        axis.lo = a;
        axis.hi = b;
        for (const Tick& t : ticks) {
            axis.ticks.push_back(t.value);
            axis.labels.push_back(log_tick_label(t.multiplier, t.exponent));
        }
        break;
    }
    return axis;
}

double max_label_width(const Axis& axis) {
    double w = 0;
    for (const auto& label : axis.labels) w = std::max(w, text_width(label, kFontSize));
    return w;
}

// The plot area inside the chart, in chart pixels.
struct Frame {
    double left = 0, top = 0, width = 0, height = 0;
    double x(double fraction) const { return left + fraction * width; }
    double y(double fraction) const { return top + (1.0 - fraction) * height; }
};

struct LegendEntry {
    std::string name;
    const char* color;
    bool line;  // a line sample (line charts) or a swatch (bar charts)
    bool dashed;
};

double legend_width(const std::vector<LegendEntry>& entries) {
    double w = 0;
    for (const auto& e : entries) w = std::max(w, text_width(e.name, kFontSize));
    return entries.empty() ? 0.0 : 32 + w;
}

class SvgWriter {
public:
    SvgWriter(int width, int height, std::string_view title) {
        append(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" )"
               R"(font-family="{}" font-size="{}" fill="{}" role="img">)",
               width, height, width, height, kFont, kFontSize, kInk);
        append("<title>{}</title>", xml_escape(title.empty() ? "chart" : title));
        append(R"(<rect width="{}" height="{}" fill="#ffffff"/>)", width, height);
    }

    template <typename... Args>
    void append(fmt::format_string<Args...> format, Args&&... args) {
        fmt::format_to(std::back_inserter(out_), format, std::forward<Args>(args)...);
    }

    void text(double x, double y, std::string_view anchor, std::string_view content, std::string_view extra = {}) {
        append(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="{}"{}>{}</text>)", x, y, anchor, extra, xml_escape(content));
    }

    void title(const Frame& f, std::string_view title) {
        if (title.empty()) return;
        text(f.left + f.width / 2, 22, "middle", title,
             fmt::format(R"( font-size="{}" font-weight="600")", kTitleSize));
    }

    // Horizontal grid lines and tick labels for the y axis, and its title.
    void y_axis(const Frame& f, const Axis& axis, std::string_view label) {
        for (size_t i = 0; i < axis.ticks.size(); i++) {
            const double y = f.y(axis.fraction(axis.ticks[i]));
            append(R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}"/>)", f.left, y,
                   f.left + f.width, y, kGrid);
            text(f.left - 6, y + 4, "end", axis.labels[i], fmt::format(R"( fill="{}")", kMuted));
        }
        if (!label.empty()) {
            const double x = f.left - max_label_width(axis) - 16, y = f.top + f.height / 2;
            text(x, y, "middle", label, fmt::format(R"svg( transform="rotate(-90 {:.1f} {:.1f})")svg", x, y));
        }
    }

    void frame_lines(const Frame& f) {
        append(R"(<path d="M{:.1f} {:.1f}V{:.1f}H{:.1f}" fill="none" stroke="{}"/>)", f.left, f.top, f.top + f.height,
               f.left + f.width, kAxis);
    }

    void x_label(const Frame& f, std::string_view label) {
        if (!label.empty()) text(f.left + f.width / 2, f.top + f.height + 38, "middle", label);
    }

    void legend(const std::vector<LegendEntry>& entries, double x, double top) {
        for (size_t i = 0; i < entries.size(); i++) {
            const auto& e = entries[i];
            const double y = top + 8 + 20.0 * i;
            if (e.line)
                append(R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}" stroke-width="2"{}/>)", x,
                       y, x + 22, y, e.color, e.dashed ? R"( stroke-dasharray="6 4")" : "");
            else
                append(R"(<rect x="{:.1f}" y="{:.1f}" width="14" height="10" fill="{}"/>)", x + 4, y - 5, e.color);
            text(x + 28, y + 4, "start", e.name);
        }
    }

    std::string finish() {
        out_ += "</svg>\n";
        return std::move(out_);
    }

private:
    std::string out_;
};

std::vector<LegendEntry> legend_entries(const std::vector<std::string>& names, const std::vector<bool>& dashed,
                                        bool line) {
    std::vector<LegendEntry> entries;
    if (std::all_of(names.begin(), names.end(), [](const std::string& n) { return n.empty(); })) return entries;
    for (size_t i = 0; i < names.size(); i++) entries.push_back({names[i], series_color(i), line, dashed[i]});
    return entries;
}

// Margins around the plot area for the given axis labels, titles and legend.
Frame layout(int width, int height, std::string_view title, const Axis& y_axis, std::string_view y_label,
             std::string_view x_label, double legend_w) {
    Frame f;
    f.left = 10 + max_label_width(y_axis) + 8 + (y_label.empty() ? 0 : 22);
    f.top = title.empty() ? 14 : 40;
    const double right = 16 + (legend_w > 0 ? legend_w + 16 : 0);
    const double bottom = 26 + (x_label.empty() ? 0 : 22);
    f.width = width - f.left - right;
    f.height = height - f.top - bottom;
    SINKLAB_CHECK(f.width >= 40 && f.height >= 40, "report",
                  "chart '{}' of {}x{} pixels leaves no room to plot: make it larger or the labels shorter", title,
                  width, height);
    return f;
}

std::string format_value(double v) { return fmt::format("{:.4g}", v); }

}  // namespace

std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default:
                if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n' || c == '\r') out += c;
        }
    }
    return out;
}

std::string line_chart(const std::vector<Series>& series, const LineChartOptions& options) {
    SINKLAB_CHECK(!series.empty(), "report", "line chart '{}': no series to draw", options.title);
    double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
    bool integer_x = true;
    for (const auto& s : series) {
        SINKLAB_CHECK(s.x.size() == s.y.size(), "report", "line chart '{}', series '{}': {} x values but {} y values",
                      options.title, s.name, s.x.size(), s.y.size());
        for (size_t i = 0; i < s.x.size(); i++) {
            if (!std::isfinite(s.x[i])) continue;
            x_lo = std::min(x_lo, s.x[i]);
            x_hi = std::max(x_hi, s.x[i]);
            integer_x = integer_x && s.x[i] == std::round(s.x[i]);
            if (!std::isfinite(s.y[i]) || (options.log_y && s.y[i] <= 0)) continue;
            y_lo = std::min(y_lo, s.y[i]);
            y_hi = std::max(y_hi, s.y[i]);
        }
    }
    SINKLAB_CHECK(y_lo <= y_hi, "report", "line chart '{}': no finite{} point to draw", options.title,
                  options.log_y ? ", positive (log-y)" : "");
    SINKLAB_CHECK(!options.log_y || options.y_min.value_or(1.0) > 0.0, "report",
                  "line chart '{}': a log-y axis needs y_min > 0, got {}", options.title, options.y_min.value_or(0));
    SINKLAB_CHECK(!options.y_min || !options.y_max || *options.y_min < *options.y_max, "report",
                  "line chart '{}': y_min {} must be below y_max {}", options.title, options.y_min.value_or(0),
                  options.y_max.value_or(0));

    const Axis x_axis = linear_axis(x_lo, x_hi, x_lo == x_hi, x_lo == x_hi, integer_x);
    const double lo = options.y_min.value_or(y_lo), hi = options.y_max.value_or(y_hi);
    const Axis y_axis = options.log_y ? log_axis(lo, hi, !options.y_min, !options.y_max)
                                      : linear_axis(lo, hi, !options.y_min, !options.y_max, false);

    std::vector<std::string> names;
    std::vector<bool> dashed;
    for (const auto& s : series) {
        names.push_back(s.name);
        dashed.push_back(s.dashed);
    }
    const auto legend = legend_entries(names, dashed, true);
    const Frame f = layout(options.width, options.height, options.title, y_axis, options.y_label, options.x_label,
                           legend_width(legend));

    SvgWriter svg(options.width, options.height, options.title);
    svg.title(f, options.title);
    svg.y_axis(f, y_axis, options.y_label);
    for (size_t i = 0; i < x_axis.ticks.size(); i++) {
        const double x = f.x(x_axis.fraction(x_axis.ticks[i]));
        svg.append(R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}"/>)", x, f.top + f.height, x,
                   f.top + f.height + 5, kAxis);
        svg.text(x, f.top + f.height + 18, "middle", x_axis.labels[i], fmt::format(R"( fill="{}")", kMuted));
    }
    svg.frame_lines(f);
    svg.x_label(f, options.x_label);

    // The data sit in a nested <svg> (padded by 4 px for the markers), which clips anything outside a
    // fixed y range without needing a clipPath id.
    constexpr double pad = 4;
    svg.append(R"(<svg x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}">)", f.left - pad, f.top - pad,
               f.width + 2 * pad, f.height + 2 * pad);
    for (size_t si = 0; si < series.size(); si++) {
        const Series& s = series[si];
        struct Point {
            double px, py, x, y;
        };
        std::vector<Point> points;
        std::string path;
        bool pen_down = false;
        for (size_t i = 0; i < s.x.size(); i++) {
            const bool valid = std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && !(options.log_y && s.y[i] <= 0);
            if (!valid) {
                pen_down = false;
                continue;
            }
            const Point p{pad + x_axis.fraction(s.x[i]) * f.width, pad + (1.0 - y_axis.fraction(s.y[i])) * f.height,
                          s.x[i], s.y[i]};
            fmt::format_to(std::back_inserter(path), "{}{:.1f} {:.1f}", pen_down ? "L" : "M", p.px, p.py);
            pen_down = true;
            points.push_back(p);
        }
        const char* color = series_color(si);
        svg.append(R"(<path d="{}" fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round"{}/>)", path, color,
                   s.dashed ? R"( stroke-dasharray="6 4")" : "");
        // Markers (with a tooltip) where they stay readable; not on dashed baselines.
        if (s.dashed || points.size() > 60) continue;
        for (const Point& p : points)
            svg.append(R"(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"><title>{}</title></circle>)", p.px, p.py,
                       color,
                       xml_escape(fmt::format("{}{}x = {}, y = {}", s.name, s.name.empty() ? "" : ": ",
                                              format_value(p.x), format_value(p.y))));
    }
    svg.append("</svg>");
    svg.legend(legend, f.left + f.width + 16, f.top);
    return svg.finish();
}

std::string bar_chart(const std::vector<std::string>& categories, const std::vector<BarSeries>& series,
                      const BarChartOptions& options) {
    SINKLAB_CHECK(!categories.empty() && !series.empty(), "report",
                  "bar chart '{}': needs at least one category and one series (got {} and {})", options.title,
                  categories.size(), series.size());
    double lo = 0.0, hi = 0.0;
    for (const auto& s : series) {
        SINKLAB_CHECK(s.values.size() == categories.size(), "report",
                      "bar chart '{}', series '{}': {} values for {} categories", options.title, s.name,
                      s.values.size(), categories.size());
        for (double v : s.values) {
            if (!std::isfinite(v)) continue;
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    }
    const Axis y_axis = linear_axis(lo, hi, lo < 0, true, false);

    std::vector<std::string> names;
    for (const auto& s : series) names.push_back(s.name);
    const auto legend = legend_entries(names, std::vector<bool>(series.size(), false), false);
    const Frame f = layout(options.width, options.height, options.title, y_axis, options.y_label, options.x_label,
                           legend_width(legend));

    SvgWriter svg(options.width, options.height, options.title);
    svg.title(f, options.title);
    svg.y_axis(f, y_axis, options.y_label);

    const double band = f.width / categories.size();
    const double bar = band * 0.8 / series.size();
    const double zero = f.y(y_axis.fraction(0.0));
    for (size_t si = 0; si < series.size(); si++) {
        for (size_t c = 0; c < categories.size(); c++) {
            const double v = series[si].values[c];
            if (!std::isfinite(v)) continue;
            const double x = f.left + band * c + band * 0.1 + bar * si;
            const double y = f.y(y_axis.fraction(v));
            svg.append(
                R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}"><title>{}</title></rect>)", x,
                std::min(y, zero), std::max(bar - 1.0, 1.0), std::abs(zero - y), series_color(si),
                xml_escape(fmt::format("{}{}{}: {}", series[si].name, series[si].name.empty() ? "" : ", ",
                                       categories[c], format_value(v))));
        }
    }
    // Category labels, thinned to every k-th when they would collide.
    double widest = 0;
    for (const auto& c : categories) widest = std::max(widest, text_width(c, kFontSize));
    const size_t every = std::max<size_t>(1, static_cast<size_t>(std::ceil((widest + 8) / band)));
    for (size_t c = 0; c < categories.size(); c += every)
        svg.text(f.left + band * (c + 0.5), f.top + f.height + 18, "middle", categories[c],
                 fmt::format(R"( fill="{}")", kMuted));
    svg.append(R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}"/>)", f.left, zero, f.left + f.width,
               zero, kAxis);
    svg.frame_lines(f);
    svg.x_label(f, options.x_label);
    svg.legend(legend, f.left + f.width + 16, f.top);
    return svg.finish();
}

std::string color_bar(const ColorBarOptions& options) {
    const ValueScale& scale = options.scale;
    const bool log = scale.kind == ScaleKind::log;
    const double lo = log ? std::max(scale.vmin, scale.log_floor) : scale.vmin;
    const double hi = log ? std::max(scale.vmax, scale.log_floor) : scale.vmax;
    const Axis axis = log ? log_axis(lo, hi, false, false) : linear_axis(lo, hi, false, false, false);

    const double side = max_label_width(axis) / 2 + 4;
    const double bar_w = options.width - 2 * side;
    SINKLAB_CHECK(bar_w >= 40, "report", "colour bar of width {} px: too narrow for its tick labels", options.width);
    const double top = options.label.empty() ? 4 : 22;
    const int height = static_cast<int>(top) + 14 + 24;

    SvgWriter svg(options.width, height, options.label);
    if (!options.label.empty()) svg.text(side, 14, "start", options.label, fmt::format(R"( fill="{}")", kMuted));
    constexpr int steps = 128;
    for (int i = 0; i < steps; i++) {
        const Rgb c = colormap_rgb(options.colormap, static_cast<double>(i) / (steps - 1));
        // Each step overlaps the next by half a pixel so that no hairline gap shows between them.
        svg.append(R"(<rect x="{:.2f}" y="{:.0f}" width="{:.2f}" height="14" fill="{}"/>)", side + bar_w * i / steps,
                   top, bar_w / steps + 0.5, hex_color(c));
    }
    for (size_t i = 0; i < axis.ticks.size(); i++) {
        const double x = side + axis.fraction(axis.ticks[i]) * bar_w;
        svg.append(R"(<line x1="{:.1f}" y1="{:.0f}" x2="{:.1f}" y2="{:.0f}" stroke="{}"/>)", x, top + 14, x, top + 18,
                   kAxis);
        svg.text(x, top + 31, "middle", axis.labels[i], fmt::format(R"( fill="{}")", kMuted));
    }
    return svg.finish();
}

}  // namespace sinklab
