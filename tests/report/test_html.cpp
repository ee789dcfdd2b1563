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
#include "report/svg.h"

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
    series.push_back({"uniform attention", layers_x, {1.0 / 64, 1.0 / 64, 1.0 / 64}, true});
    LineChartOptions line;
    line.title = "Sink score α₁ per layer";
    line.x_label = "layer";
    line.y_label = "α₁ (mean over heads)";
    line.log_y = true;
    line.width = 720;

    BarChartOptions bars;
    bars.title = "Sink metric per layer";
    bars.x_label = "layer";
    bars.y_label = "heads with α₁ > 0.3 (%)";
    bars.width = 720;

    page.section("Sink scores")
        .svg_figure(line_chart(series, line),
                    "The softmax model's sink score rises with depth while softmax1 stays "
                    "near the uniform baseline.")
        .svg_figure(bar_chart({"0", "1", "2"}, {{"softmax", {25, 75, 100}}, {"softmax1", {0, 0, 0}}}, bars),
                    "Every head of the softmax model's last layer is a sink head; no softmax1 head is.");

    Table table({"run", "attention", "Sink_1 (%)", "alpha_1", "val loss"});
    table.add_row({"baseline", "softmax", "66.66666666666667", "0.6033333333333334", "3.1412345"});
    table.add_row({"off-by-one", "softmax1", "0", "0.09333333333333334", "3.1523"});
    table.add_row({"sigmoid, b=-log T", "sigmoid", "8.333333333333334", "0.0412", "3.2001"});
    page.table(table, "The sink metric and loss of each run, at eps = 0.3.");

    HeatmapOptions options;
    options.scale = ScaleKind::log;
    options.vmin = 1e-3;
    options.vmax = 1.0;
    ColorBarOptions bar;
    bar.colormap = options.colormap;
    bar.scale = {options.scale, *options.vmin, *options.vmax, options.log_floor};
    bar.label = "attention weight (log scale; grey: masked)";
    page.section("Attention maps")
        .paragraph("Rows are queries, columns keys; click a layer to see its heads.")
        .heatmap_grid(heatmap_layers(options),
                      "Head-averaged attention of each layer; the bright first column is the "
                      "sink.",
                      color_bar(bar));

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
    EXPECT_EQ(page.image_count(), kLayers * (1 + kHeads));
    EXPECT_NE(html.find("Content-Security-Policy"), std::string::npos);
    // The only URLs are the SVG namespace (an identifier, never fetched) and relative links.
    EXPECT_EQ(count_of(html, "://"), count_of(html, "xmlns=\"http://www.w3.org/2000/svg\""));
    EXPECT_EQ(html.find("<script src"), std::string::npos);
    EXPECT_EQ(html.find("<link rel=\"stylesheet\""), std::string::npos);
    EXPECT_NE(html.find("<title>Attention sinks in a 3-layer model &lt;demo&gt; &amp; friends</title>"),
              std::string::npos);
    EXPECT_NE(html.find("<b>Figure 3.</b>"), std::string::npos);
    EXPECT_NE(html.find("<b>Table 1.</b>"), std::string::npos);
    EXPECT_NE(html.find("<td class=\"num\">66.67</td>"), std::string::npos);  // formatted for display
    EXPECT_NE(html.find("<a href=\"sinks.csv\">"), std::string::npos);
    EXPECT_NE(html.find("<a href=\"#section-2\">Attention maps</a>"), std::string::npos);
}

TEST(ReportPage, HeatmapGridRevealsHeadsOnlyWhereThereAreSome) {
    const std::string png = encode_png(Image(4, 4));
    ReportPage page("grid");
    page.heatmap_grid({{"layer 0", png, {{"head 0", png}, {"head 1", png}}}, {"layer 1", png, {}}},
                      "One layer with heads, one without.");
    const std::string html = page.html();
    EXPECT_EQ(page.image_count(), 4);
    EXPECT_EQ(count_of(html, "<details>"), 1u);
    EXPECT_EQ(count_of(html, "<div class=\"tile\">"), 1u);
    EXPECT_NE(html.find("alt=\"layer 0, head 1\""), std::string::npos);
}

TEST(ReportPage, RejectsMissingCaptionsAndNonPngImages) {
    ReportPage page("t");
    EXPECT_THROW(page.svg_figure("<svg></svg>", ""), Error);
    EXPECT_THROW(page.svg_figure("<div></div>", "caption"), Error);
    EXPECT_THROW(page.png_figure("GIF89a", "alt", "caption"), Error);
    EXPECT_THROW(page.heatmap_grid({}, "caption"), Error);
    EXPECT_THROW(page.section(""), Error);
    EXPECT_THROW(ReportPage(""), Error);
}

TEST(ReportPage, HeadlessChromiumRendersEveryImage) {
    if (!have_chromium()) GTEST_SKIP() << "/usr/bin/chromium not installed (scripts/setup.sh installs it)";
    const fs::path dir = test::scratch_dir();
    const ReportPage page = demo_page();
    page.write(dir / "index.html");
    write_file_atomic(dir / "metrics.json", "{}\n");
    write_file_atomic(dir / "sinks.csv", "layer,head,alpha_1\n");

    const ChromiumRun dom = run_chromium(dir / "index.html", "--dump-dom", "dom");
    ASSERT_EQ(dom.status, 0) << dom.err;
    EXPECT_EQ(status_attribute(dom.out, "data-images"), std::to_string(page.image_count())) << dom.out.substr(0, 2000);
    EXPECT_EQ(status_attribute(dom.out, "data-broken"), "0");
    for (const auto& line : console_messages(dom.err, "index.html")) ADD_FAILURE() << "console: " << line;

    const ChromiumRun shot = run_chromium(
        dir / "index.html",
        fmt::format("--hide-scrollbars --window-size=1280,2000 --screenshot='{}'", (dir / "shot.png").string()),
        "shot");
    ASSERT_EQ(shot.status, 0) << shot.err;
    for (const auto& line : console_messages(shot.err, "index.html")) ADD_FAILURE() << "console: " << line;
    ASSERT_TRUE(fs::exists(dir / "shot.png"));
    EXPECT_GT(fs::file_size(dir / "shot.png"), 20000u);
    const Image screenshot = test::decode_png((dir / "shot.png").string(), true, 3);
    EXPECT_EQ(screenshot.width, 1280);
    EXPECT_EQ(screenshot.height, 2000);
    std::set<uint32_t> colors;
    for (int y = 0; y < screenshot.height; y += 3)
        for (int x = 0; x < screenshot.width; x += 3) {
            const Rgb c = screenshot.rgb(x, y);
            colors.insert(c.r << 16 | c.g << 8 | c.b);
        }
    EXPECT_GT(colors.size(), 200u) << "the screenshot looks blank";
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
