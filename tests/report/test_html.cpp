#include <cmath>
#include <cstdlib>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/files.h"
#include "headless_chromium.h"
#include "helpers.h"
#include "report/heatmap.h"
#include "report/html.h"
#include "report/png.h"
#include "report/vega.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;
using test::ChromiumRun;
using test::console_messages;
using test::have_chromium;
using test::run_chromium;
using test::status_attribute;

constexpr int kLayers = 3, kHeads = 4, kT = 64;

// Causal softmax attention (T, T) with a sink on token 0 of strength `sink` and a recency bias.
std::vector<float> synthetic_attention(double sink, double recency) {
    std::vector<float> a(kT * kT, 0.0f);
    for (int i = 0; i < kT; i++) {
        double z = 0.0;
        std::vector<double> row(i + 1);
        for (int j = 0; j <= i; j++) z += row[j] = std::exp(j == 0 ? sink : -recency * (i - j));
        for (int j = 0; j <= i; j++) a[i * kT + j] = static_cast<float>(row[j] / z);
    }
    return a;
}

std::vector<HeatmapLayer> heatmap_layers(const HeatmapOptions& options) {
    std::vector<HeatmapLayer> layers;
    for (int l = 0; l < kLayers; l++) {
        HeatmapLayer layer{fmt::format("layer {}", l), {}, {}};
        std::vector<float> average(kT * kT, 0.0f);
        for (int h = 0; h < kHeads; h++) {
            const auto a = synthetic_attention(l + 0.5 * h, 0.3 * (kHeads - h));
            for (size_t k = 0; k < a.size(); k++) average[k] += a[k] / kHeads;
            layer.heads.push_back(
                {fmt::format("head {}", h), encode_png(render_heatmap(a.data(), kT, kT, options).image)});
        }
        layer.average_png = encode_png(render_heatmap(average.data(), kT, kT, options).image);
        layers.push_back(std::move(layer));
    }
    return layers;
}

// The page a `sinklab report` run would write: summary, two charts, a table, a heatmap grid, links.
ReportPage demo_page() {
    ReportPage page("Attention sinks in a 3-layer model <demo> & friends");
    page.paragraph(
        "A 3-layer, 4-head model trained for 1000 steps on the bundled corpus; every number below is "
        "computed from 100 sequences of T = 64 tokens.");
    page.paragraph(
        "Sinks grow with depth: by layer 2 the mean weight on token 1 exceeds the eps = 0.3 threshold in "
        "every head.");

    std::vector<Series> series;
    std::vector<double> layers_x = {0, 1, 2};
    series.push_back({"softmax", layers_x, {0.31, 0.62, 0.88}});
    series.push_back({"softmax1", layers_x, {0.08, 0.11, 0.09}});
    page.section("Sink scores")
        .vega_figure(vega_line_chart(series, {.title = "Sink score α₁ per layer", .x_label = "layer",
                                              .y_label = "α₁ (mean over heads)", .log_y = true,
                                              .rules = {{1.0 / 64, "uniform attention"}}}),
                     "The softmax model's sink score rises with depth while softmax1 stays "
                     "near the uniform baseline.")
        .vega_figure(vega_bar_chart({"0", "1", "2"}, {{"softmax", {25, 75, 100}}, {"softmax1", {0, 0, 0}}},
                                    {.title = "Sink metric per layer", .x_label = "layer",
                                     .y_label = "heads with α₁ > 0.3 (%)"}),
                     "Every head of the softmax model's last layer is a sink head; no softmax1 head is.")
        .vega_figure(vega_scatter_chart({{0.9, 0.1, "layer 2", "head 0"}, {0.2, 0.8, "layer 0", "head 1"},
                                         {0.5, 0.4, "layer 1", "head 0"}},
                                        {.title = "No-op reading", .x_label = "attention on token 1",
                                         .y_label = "output norm / value norm"}),
                     "Heads that attend to the sink output little.");

    Table table({"run", "attention", "Sink_1 (%)", "alpha_1", "val loss"});
    table.add_row({"baseline", "softmax", "66.66666666666667", "0.6033333333333334", "3.1412345"});
    table.add_row({"off-by-one", "softmax1", "0", "0.09333333333333334", "3.1523"});
    table.add_row({"sigmoid, b=-log T", "sigmoid", "8.333333333333334", "0.0412", "3.2001"});
    page.table(table, "The sink metric and loss of each run, at eps = 0.3.");

    HeatmapOptions options;
    options.scale = ScaleKind::log;
    options.vmin = 1e-3;
    options.vmax = 1.0;
    HeatmapFigure axes;
    axes.rows = axes.cols = kT;
    axes.scale = {options.scale, *options.vmin, *options.vmax, options.log_floor};
    page.section("Attention maps")
        .paragraph("Rows are queries, columns keys; click a layer to see its heads.")
        .heatmap_grid(heatmap_layers(options),
                      "Head-averaged attention of each layer; the bright first column is the "
                      "sink.",
                      axes);

    page.section("Files").links(
        {{"metrics.json", "every number on this page"}, {"sinks.csv", "per layer/head sink scores"}});
    return page;
}

size_t count_of(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) n++;
    return n;
}


TEST(Base64, Rfc4648Vectors) {
    EXPECT_EQ(base64_encode(""), "");
    EXPECT_EQ(base64_encode("f"), "Zg==");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
    EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
    EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
    EXPECT_EQ(base64_encode(std::string("\x00\xff\xfe\x80", 4)), "AP/+gA==");
}

TEST(ReportPage, IsSelfContained) {
    const ReportPage page = demo_page();
    const std::string html = page.html();
    EXPECT_EQ(page.vega_count(), 3 + kLayers * (1 + kHeads));  // three charts, one view per map
    EXPECT_NE(html.find("Content-Security-Policy"), std::string::npos);
    EXPECT_EQ(html.find("<script src"), std::string::npos);
    EXPECT_EQ(html.find("<link rel=\"stylesheet\""), std::string::npos);
    EXPECT_EQ(count_of(html, "<script>"), 5u);  // the status script, three chart libraries, the drawing script
    EXPECT_EQ(html.find("</script", html.find("<script type=\"application/json\"")),
              html.find("</script>", html.find("<script type=\"application/json\"")));  // one close, at the end
    EXPECT_NE(html.find("<title>Attention sinks in a 3-layer model &lt;demo&gt; &amp; friends</title>"),
              std::string::npos);
    EXPECT_NE(html.find("<b>Figure 3.</b>"), std::string::npos);
    EXPECT_NE(html.find("<b>Table 1.</b>"), std::string::npos);
    EXPECT_NE(html.find("<td class=\"num\">66.7</td>"), std::string::npos);  // formatted for display
    EXPECT_NE(html.find("<a href=\"sinks.csv\">"), std::string::npos);
    EXPECT_NE(html.find("<a href=\"#section-2\">Attention maps</a>"), std::string::npos);
}

TEST(ReportPage, HeatmapGridRevealsHeadsOnlyWhereThereAreSome) {
    const std::string png = encode_png(Image(4, 4));
    ReportPage page("grid");
    HeatmapFigure axes;
    axes.rows = axes.cols = 4;
    axes.scale = {ScaleKind::linear, 0.0, 1.0, 1e-4};
    page.heatmap_grid({{"layer 0", png, {{"head 0", png}, {"head 1", png}}}, {"layer 1", png, {}}},
                      "One layer with heads, one without.", axes);
    EXPECT_EQ(page.vega_count(), 4);
    const std::string html = page.html();
    EXPECT_EQ(count_of(html, "<details>"), 1u);
    EXPECT_EQ(count_of(html, "<div class=\"tile\">"), 1u);
    EXPECT_NE(html.find("\"layer 0, head 1\""), std::string::npos);  // the view's title
}

TEST(ReportPage, RejectsMissingCaptionsAndBadFigures) {
    ReportPage page("t");
    EXPECT_THROW(page.vega_figure(vega_line_chart({{"a", {0, 1}, {1, 2}}}, {}), ""), Error);
    EXPECT_THROW(page.vega_figure(nlohmann::json::object(), "caption"), Error);
    EXPECT_THROW(page.png_figure("GIF89a", "alt", "caption"), Error);
    EXPECT_THROW(page.heatmap_grid({}, "caption", {}), Error);
    EXPECT_THROW(page.section(""), Error);
    EXPECT_THROW(ReportPage(""), Error);
    EXPECT_THROW(vega_line_chart({{"a", {0, 1}, {1}}}, {}), Error);            // x and y differ in length
    EXPECT_THROW(vega_bar_chart({"0", "1"}, {{"a", {1}}}, {}), Error);         // a value per category
    EXPECT_THROW(vega_line_chart({{"a", {0}, {1}}}, {.log_y = true, .rules = {{0.0, "zero"}}}), Error);
}

TEST(VegaSpecs, CarryTheDataTooltipsAndLines) {
    const nlohmann::json line = vega_line_chart({{"run", {0, 1, 2}, {0.5, NAN, 0.25}}, {"uniform", {0, 2}, {0.1, 0.1}, true}},
                                                {.title = "t", .x_label = "layer", .y_label = "alpha_1",
                                                 .rules = {{0.074, "uniform"}}});
    const auto& values = line["data"]["values"];
    EXPECT_EQ(values.size(), 4u);  // the NaN is left out
    EXPECT_EQ(values[1]["y"], 0.25);
    EXPECT_EQ(values[2]["dashed"], true);
    ASSERT_EQ(line["layer"].size(), 3u);  // the lines, the rule and its label
    EXPECT_EQ(line["layer"][1]["mark"]["type"], "rule");
    EXPECT_EQ(line["layer"][1]["data"]["values"][0]["y"], 0.074);
    EXPECT_EQ(line["layer"][0]["encoding"]["tooltip"][2]["format"], kNumberFormat);
    EXPECT_EQ(line["layer"][0]["encoding"]["x"]["axis"]["tickMinStep"], 1);  // whole layers
    EXPECT_EQ(line["layer"][0]["params"][0]["bind"], "scales");              // zoom and pan
    EXPECT_EQ(line["layer"][0]["params"][1]["bind"], "legend");              // legend toggles
    const nlohmann::json scatter = vega_scatter_chart(
        {{0.5, 1.0, "layer 0", "head 0"}, {NAN, 1.0, "layer 0", "head 1"}, {0.25, 2.0, "layer 1", "head 0"}},
        {.x_label = "share", .y_label = "ratio"});
    ASSERT_EQ(scatter["data"]["values"].size(), 2u);  // the NaN point is left out
    EXPECT_EQ(scatter["data"]["values"][1]["label"], "head 0");
    EXPECT_EQ(scatter["layer"][0]["mark"]["type"], "point");
    EXPECT_EQ(scatter["layer"][0]["encoding"]["color"]["scale"]["domain"], nlohmann::json({"layer 0", "layer 1"}));
    EXPECT_THROW(vega_scatter_chart({{NAN, 1.0, "a", "b"}}, {}), Error);  // nothing to draw
    const nlohmann::json heat = vega_heatmap({.png = encode_png(Image(4, 4)), .rows = 4, .cols = 4,
                                              .scale = {ScaleKind::log, 1e-3, 1.0, 1e-3}});
    EXPECT_EQ(heat["layer"][0]["mark"]["type"], "image");
    EXPECT_EQ(heat["layer"][1]["encoding"]["color"]["scale"]["type"], "log");
    EXPECT_EQ(heat["layer"][1]["encoding"]["color"]["scale"]["domain"], nlohmann::json({1e-3, 1.0}));
    EXPECT_THROW(vega_heatmap({.png = "x", .rows = 4, .cols = 4, .scale = {ScaleKind::log, 0.0, 1.0, 1e-3}}), Error);
}

// The page in Debian's Chromium, driven by playwright-core (tests/report/browser_check.mjs) with the
// network cut: every Vega view has marks, hovering a point shows its tooltip, no console message, no
// request leaves the page, every image decodes. The screenshot stays in the scratch folder.
TEST(ReportPage, HeadlessChromiumDrawsEveryFigure) {
    if (!have_chromium()) GTEST_SKIP() << "/usr/bin/chromium not installed (scripts/setup.sh installs it)";
    const fs::path dir = test::scratch_dir();
    const ReportPage page = demo_page();
    page.write(dir / "index.html");
    const test::BrowserCheck check = test::browser_check(dir / "index.html", dir / "screenshot.png");
    ASSERT_TRUE(check.ran) << check.output;
    EXPECT_TRUE(check.result.value("ok", false)) << check.output;
    EXPECT_EQ(check.result.value("figures", -1), page.vega_count()) << check.output;
    EXPECT_NE(check.result.value("tooltip", std::string()), "") << check.output;
    EXPECT_TRUE(fs::exists(dir / "screenshot.png"));
}

TEST(ReportPage, HeadlessChromiumReportsABrokenImage) {
    if (!have_chromium()) GTEST_SKIP() << "/usr/bin/chromium not installed (scripts/setup.sh installs it)";
    const fs::path dir = test::scratch_dir();
    const std::string png = encode_png(Image(8, 8));
    ReportPage page("broken");
    page.png_figure(png, "fine", "An image that decodes.");
    page.png_figure(png.substr(0, 24), "truncated", "A PNG cut after its header, which cannot decode.");
    page.write(dir / "index.html");
    const ChromiumRun dom = run_chromium(dir / "index.html", "--dump-dom", "dom");
    ASSERT_EQ(dom.status, 0) << dom.err;
    EXPECT_EQ(status_attribute(dom.out, "data-images"), "2");
    EXPECT_EQ(status_attribute(dom.out, "data-broken"), "1");
    EXPECT_NE(dom.out.find("1 of 2 images failed to load."), std::string::npos);
}

}  // namespace
}  // namespace sinklab
