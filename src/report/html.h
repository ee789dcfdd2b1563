#pragma once
// One self-contained report page (index.html): inline CSS, Vega-Lite figures drawn by the inlined
// chart libraries, PNGs embedded as base64 data URIs, and a few lines of inline JS. A Content-Security-Policy forbids every network
// load, so the page renders the same offline, from a mail attachment, or years later.
//
// On load, the page's script counts its <img> elements and the broken ones (not complete, or with
// no natural width) into <div id="report-status" data-images="N" data-broken="B">, and shows a
// warning when B > 0; tests and people both read it. Vega figures are drawn by vega-embed (inlined,
// CSP-safe: its expression interpreter, no eval); when every one has been drawn or has failed, the
// status gets data-figures="N" data-figures-failed="F", and each failure says so in its figure.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/csv.h"
#include "report/vega.h"

namespace sinklab {

std::string base64_encode(std::string_view bytes);  // RFC 4648, with '=' padding

// The folder of the npm packages vega, vega-lite and vega-embed whose browser builds a page with
// Vega figures inlines: $SINKLAB_NODE_MODULES, else scripts/npm/node_modules of the source tree
// (scripts/setup.sh installs them there).
std::filesystem::path chart_library_dir();
std::string html_escape(std::string_view text);

struct Link {
    std::string href{};         // relative to the page, e.g. "metrics.json"
    std::string description{};  // e.g. "per layer/head sink scores"
};

struct HeatmapTile {
    std::string label{};  // e.g. "head 3"
    std::string png{};    // the bytes of a PNG file (encode_png)
};

struct HeatmapLayer {
    std::string label{};               // e.g. "layer 3"
    std::string average_png{};         // the head-averaged map, always shown
    std::vector<HeatmapTile> heads{};  // revealed by clicking the average; none: a plain tile
};

class ReportPage {
public:
    explicit ReportPage(std::string title);

    // Plain text (escaped); before the first section() it forms the page's summary.
    ReportPage& paragraph(std::string_view text);
    // Starts a section with an <h2>; listed in the page's contents when there are two or more.
    ReportPage& section(std::string_view heading);
    // Figures and tables are numbered; each needs a caption (one sentence saying what it shows).
    ReportPage& png_figure(std::string_view png, std::string_view alt, std::string_view caption);
    // An interactive figure: a Vega-Lite spec (report/vega.h), drawn in the page by vega-embed.
    ReportPage& vega_figure(const nlohmann::json& spec, std::string_view caption);
    ReportPage& table(const Table& table, std::string_view caption);
    // One tile per layer (its head-averaged map); clicking a tile shows the layer's heads below it
    // (a <details> element). Every map is drawn as vega_heatmap draws `axes` (positions on both axes,
    // a colour bar of the maps' colour map and scale); its png, title and side are set per map.
    ReportPage& heatmap_grid(const std::vector<HeatmapLayer>& layers, std::string_view caption,
                             const HeatmapFigure& axes);
    // A list of sibling files (JSON, CSV) with what each holds.
    ReportPage& links(const std::vector<Link>& links);

    int image_count() const { return images_; }
    int vega_count() const { return static_cast<int>(vega_specs_.size()); }
    // The page; with Vega figures, the chart libraries are read from chart_library_dir() and inlined
    // (throws naming the missing file and scripts/setup.sh when they are not installed).
    std::string html() const;
    void write(const std::filesystem::path& path) const;  // atomic

private:
    struct Section {
        std::string heading;  // empty for the summary before the first section()
        std::string body;
    };
    std::string figure_caption(std::string_view kind, int number, std::string_view caption) const;
    std::string img(std::string_view png, std::string_view alt);  // counts it

    std::string title_;
    std::vector<Section> sections_;
    int figures_ = 0;
    int tables_ = 0;
    int images_ = 0;
    std::vector<nlohmann::json> vega_specs_;
};

}  // namespace sinklab
