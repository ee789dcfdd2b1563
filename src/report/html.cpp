#include "report/html.h"

#include <cstdint>

#include <cstdlib>

#include "core/error.h"
#include "core/files.h"

namespace sinklab {

namespace {

// Everything loads inline; nothing may reach the network (links are navigation, not loads).
constexpr const char* kCsp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'";

constexpr const char* kStyle = R"css(
:root { --ink: #1f2328; --muted: #59636e; --line: #d8dee4; --soft: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; background: #fbfbfc; color: var(--ink);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 36px 32px 64px; background: #fff; min-height: 100vh;
  border-left: 1px solid #eef0f2; border-right: 1px solid #eef0f2; }
h1 { font-size: 28px; line-height: 1.25; margin: 0 0 14px; letter-spacing: -0.01em; }
h2 { font-size: 20px; margin: 40px 0 14px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
p { margin: 0 0 12px; max-width: 78ch; }
a { color: var(--accent); }
nav.contents { margin: 18px 0 8px; font-size: 14px; color: var(--muted); }
nav.contents a { margin-right: 14px; text-decoration: none; }
figure { margin: 20px 0 28px; }
figure > svg, figure > img { display: block; max-width: 100%; height: auto; }
figcaption { margin-top: 10px; color: var(--muted); font-size: 14px; max-width: 78ch; }
figcaption b { color: var(--ink); font-weight: 600; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 14px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: var(--soft); font-weight: 600; border-bottom: 2px solid var(--line); }
.num { text-align: right; }
/* wide tables scroll under their first column, which stays in view */
th:first-child, td:first-child { position: sticky; left: 0; z-index: 1; background: #fff; }
th:first-child { background: var(--soft); }
tbody tr:nth-child(even) { background: #fafbfc; }
.heatmaps { display: grid; grid-template-columns: repeat(auto-fill, minmax(400px, 1fr)); gap: 14px; }
.heatmaps > details, .heatmaps > .tile { border: 1px solid var(--line); border-radius: 8px; padding: 8px;
  background: #fff; }
.heatmaps details[open] { grid-column: 1 / -1; background: var(--soft); }
.heatmaps summary { list-style: none; cursor: pointer; }
.heatmaps summary::-webkit-details-marker { display: none; }
.vega-figure image { image-rendering: pixelated; }
.tile-label { display: block; margin-top: 6px; font-size: 13px; font-weight: 600; }
summary .tile-label::after { content: " \25B8"; color: var(--muted); font-weight: 400; }
details[open] > summary .tile-label::after { content: " \25BE"; }
.heads { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 10px; margin-top: 10px; }
.heads figure { margin: 0; }
.heads figcaption { margin-top: 4px; font-size: 12px; }
.vega-figure { max-width: 100%; overflow-x: auto; }
.vega-figure .vega-embed { display: block; }
.figure-error { color: #a40e26; }
#vg-tooltip-element { font: 13px system-ui, sans-serif; }
ul.files { padding-left: 20px; }
ul.files code { font-size: 14px; }
#report-status { margin: 0 0 16px; padding: 10px 14px; border-radius: 6px; background: #fff1f0; color: #a40e26; }
footer { margin-top: 48px; color: var(--muted); font-size: 13px; }
)css";

// Fills #report-status with the number of <img> elements and of broken ones.
constexpr const char* kScript = R"js(
addEventListener("load", function () {
  var images = document.images, broken = 0;
  for (var i = 0; i < images.length; i++) if (!(images[i].complete && images[i].naturalWidth > 0)) broken++;
  var status = document.getElementById("report-status");
  status.dataset.images = images.length;
  status.dataset.broken = broken;
  if (broken > 0) {
    status.textContent = broken + " of " + images.length + " images failed to load.";
    status.hidden = false;
  }
});
)js";

// Draws every .vega-figure from the specs in #vega-specs, then records the outcome in #report-status.
constexpr const char* kVegaScript = R"js(
(function () {
  var specs = JSON.parse(document.getElementById("vega-specs").textContent);
  var figures = document.querySelectorAll(".vega-figure"), pending = figures.length, failed = 0;
  var status = document.getElementById("report-status");
  window.sinklabViews = [];
  function done() {
    if (--pending > 0) return;
    status.dataset.figures = figures.length;
    status.dataset.figuresFailed = failed;
    if (failed > 0) { status.textContent = failed + " of " + figures.length + " figures failed to draw."; status.hidden = false; }
  }
  figures.forEach(function (element, i) {
    vegaEmbed(element, specs[+element.dataset.spec], {actions: false, renderer: "svg", ast: true})
      .then(function (result) { window.sinklabViews[i] = result.view; })
      .catch(function (error) {
        failed++;
        element.textContent = "This figure could not be drawn: " + error.message;
        element.className += " figure-error";
        console.error(error);
      })
      .then(done);
  });
})();
)js";

// The browser builds of the chart libraries, in the order they need each other.
constexpr const char* kChartLibraries[] = {"vega/build/vega.min.js", "vega-lite/build/vega-lite.min.js",
                                           "vega-embed/build/vega-embed.min.js"};

// Inline <script> content must not close the element early: "</script" becomes "<\\/script" (the same
// string in JavaScript and JSON).
std::string script_safe(std::string text) {
    for (size_t at = text.find("</script"); at != std::string::npos; at = text.find("</script", at + 3))
        text.replace(at, 2, "<\\/");
    return text;
}

bool is_png(std::string_view bytes) { return bytes.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8); }

}  // namespace

std::string base64_encode(std::string_view bytes) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16 | static_cast<uint8_t>(bytes[i + 1]) << 8 |
                           static_cast<uint8_t>(bytes[i + 2]);
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (i + 1 == bytes.size()) {
        const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == bytes.size()) {
        const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16 | static_cast<uint8_t>(bytes[i + 1]) << 8;
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string html_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default:  // the control characters HTML and XML forbid are dropped
                if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n' || c == '\r') out += c;
        }
    }
    return out;
}

std::filesystem::path chart_library_dir() {
    if (const char* env = std::getenv("SINKLAB_NODE_MODULES"); env && *env) return env;
    return SINKLAB_NODE_MODULES_DIR;
}

ReportPage::ReportPage(std::string title) : title_(std::move(title)), sections_(1) {
    SINKLAB_CHECK(!title_.empty(), "report", "a report page needs a title");
}

ReportPage& ReportPage::paragraph(std::string_view text) {
    sections_.back().body += fmt::format("<p>{}</p>\n", html_escape(text));
    return *this;
}

ReportPage& ReportPage::section(std::string_view heading) {
    SINKLAB_CHECK(!heading.empty(), "report", "report section headings cannot be empty");
    sections_.push_back({std::string(heading), {}});
    return *this;
}

std::string ReportPage::figure_caption(std::string_view kind, int number, std::string_view caption) const {
    SINKLAB_CHECK(!caption.empty(), "report", "{} {} of '{}' has no caption: say in one sentence what it shows", kind,
                  number, title_);
    return fmt::format("<figcaption><b>{} {}.</b> {}</figcaption>", kind, number, html_escape(caption));
}

std::string ReportPage::img(std::string_view png, std::string_view alt) {
    SINKLAB_CHECK(is_png(png), "report", "image '{}' of '{}' is not a PNG file (pass encode_png's bytes)", alt, title_);
    images_++;
    return fmt::format(R"(<img alt="{}" src="data:image/png;base64,{}">)", html_escape(alt), base64_encode(png));
}

ReportPage& ReportPage::png_figure(std::string_view png, std::string_view alt, std::string_view caption) {
    const std::string figcaption = figure_caption("Figure", figures_ + 1, caption);
    figures_++;
    sections_.back().body += fmt::format("<figure>\n{}\n{}</figure>\n", img(png, alt), figcaption);
    return *this;
}

ReportPage& ReportPage::vega_figure(const nlohmann::json& spec, std::string_view caption) {
    SINKLAB_CHECK(spec.is_object() && (spec.contains("mark") || spec.contains("layer")), "report",
                  "figure '{}' is not a Vega-Lite spec (an object with a mark or layers)", caption);
    const std::string figcaption = figure_caption("Figure", figures_ + 1, caption);
    figures_++;
    sections_.back().body += fmt::format("<figure>\n<div class=\"vega-figure\" data-spec=\"{}\"></div>\n{}</figure>\n",
                                         vega_specs_.size(), figcaption);
    vega_specs_.push_back(spec);
    return *this;
}

ReportPage& ReportPage::table(const Table& table, std::string_view caption) {
    const std::string figcaption = figure_caption("Table", tables_ + 1, caption);
    tables_++;
    const std::vector<bool> numeric = numeric_columns(table);
    auto cls = [&](size_t c) { return numeric[c] ? R"( class="num")" : ""; };
    std::string out = "<figure>\n<div class=\"table-wrap\"><table>\n<thead><tr>";
    for (size_t c = 0; c < table.header().size(); c++)
        out += fmt::format("<th{}>{}</th>", cls(c), html_escape(table.header()[c]));
    out += "</tr></thead>\n<tbody>\n";
    for (const auto& row : table.rows()) {
        out += "<tr>";
        for (size_t c = 0; c < row.size(); c++)
            out += fmt::format("<td{}>{}</td>", cls(c), html_escape(display_cell(row[c], numeric[c])));
        out += "</tr>\n";
    }
    out += "</tbody>\n</table></div>\n" + figcaption + "</figure>\n";
    sections_.back().body += out;
    return *this;
}

ReportPage& ReportPage::heatmap_grid(const std::vector<HeatmapLayer>& layers, std::string_view caption,
                                     const HeatmapFigure& axes) {
    SINKLAB_CHECK(!layers.empty(), "report", "heatmap grid '{}' has no layers", caption);
    const std::string figcaption = figure_caption("Figure", figures_ + 1, caption);
    figures_++;
    // Each map as a Vega view (axes, colour bar) whose spec joins the page's list.
    auto view = [&](const std::string& png, const std::string& title, int side) {
        SINKLAB_CHECK(is_png(png), "report", "map '{}' of '{}' is not a PNG file (pass encode_png's bytes)", title, title_);
        HeatmapFigure f = axes;
        f.png = png;
        f.title = title;
        f.side = side;
        vega_specs_.push_back(vega_heatmap(f));
        return fmt::format("<div class=\"vega-figure\" data-spec=\"{}\"></div>", vega_specs_.size() - 1);
    };
    std::string out = "<figure>\n<div class=\"heatmaps\">\n";
    for (const auto& layer : layers) {
        const std::string average = view(layer.average_png, layer.label + ", head average", axes.side);
        if (layer.heads.empty()) {
            out += fmt::format("<div class=\"tile\">{}</div>\n", average);
            continue;
        }
        out += fmt::format("<details><summary>{}<span class=\"tile-label\">{}: its {} heads</span></summary>\n",
                           average, html_escape(layer.label), layer.heads.size());
        out += "<div class=\"heads\">\n";
        for (const auto& head : layer.heads)
            out += fmt::format("<div>{}</div>\n", view(head.png, layer.label + ", " + head.label, axes.side * 3 / 4));
        out += "</div></details>\n";
    }
    out += "</div>\n" + figcaption + "</figure>\n";
    sections_.back().body += out;
    return *this;
}

ReportPage& ReportPage::links(const std::vector<Link>& links) {
    std::string out = "<ul class=\"files\">\n";
    for (const auto& link : links)
        out +=
            fmt::format("<li><a href=\"{}\"><code>{}</code></a>{}</li>\n", html_escape(link.href),
                        html_escape(link.href), link.description.empty() ? "" : ": " + html_escape(link.description));
    out += "</ul>\n";
    sections_.back().body += out;
    return *this;
}

std::string ReportPage::html() const {
    std::string out = fmt::format(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n"
        "<link rel=\"icon\" href=\"data:,\">\n<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n<main>\n"
        "<h1>{}</h1>\n<div id=\"report-status\" data-images=\"-1\" data-broken=\"-1\" hidden></div>\n",
        kCsp, html_escape(title_), kStyle, html_escape(title_));
    out += sections_[0].body;
    if (sections_.size() > 2) {
        out += "<nav class=\"contents\">";
        for (size_t i = 1; i < sections_.size(); i++)
            out += fmt::format("<a href=\"#section-{}\">{}</a>", i, html_escape(sections_[i].heading));
        out += "</nav>\n";
    }
    for (size_t i = 1; i < sections_.size(); i++)
        out += fmt::format("<section id=\"section-{}\">\n<h2>{}</h2>\n{}</section>\n", i,
                           html_escape(sections_[i].heading), sections_[i].body);
    out += fmt::format("<footer>Written by sinklab.</footer>\n</main>\n<script>{}</script>\n", kScript);
    if (!vega_specs_.empty()) {
        out += "<script type=\"application/json\" id=\"vega-specs\">" + script_safe(nlohmann::json(vega_specs_).dump()) +
               "</script>\n";
        const std::filesystem::path dir = chart_library_dir();
        for (const char* library : kChartLibraries) {
            const std::filesystem::path file = dir / library;
            std::error_code ec;
            SINKLAB_CHECK(std::filesystem::is_regular_file(file, ec), "report",
                          "{}: the chart library is missing; run scripts/setup.sh (it installs vega, vega-lite and "
                          "vega-embed from npm), or point SINKLAB_NODE_MODULES at a node_modules folder holding them",
                          file.string());
            out += "<script>" + script_safe(read_text_file(file, "report")) + "</script>\n";
        }
        out += fmt::format("<script>{}</script>\n", kVegaScript);
    }
    out += "</body>\n</html>\n";
    return out;
}

void ReportPage::write(const std::filesystem::path& path) const { write_file_atomic(path, html()); }

}  // namespace sinklab
