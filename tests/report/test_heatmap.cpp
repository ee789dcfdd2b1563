#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "report/heatmap.h"

namespace sinklab {
namespace {

// Uniform causal attention: A_ij = 1/(i+1) for j <= i, 0 above the diagonal.
std::vector<float> uniform_causal(int T) {
    std::vector<float> a(static_cast<size_t>(T) * T, 0.0f);
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++) a[static_cast<size_t>(i) * T + j] = 1.0f / (i + 1);
    return a;
}

Rgb expected_color(const Heatmap& h, const HeatmapOptions& o, double value) {
    return colormap_rgb(o.colormap, ValueScale{o.scale, h.vmin, h.vmax, o.log_floor}.normalize(value));
}

TEST(Heatmap, Pools4096To1024ByBlockMeans) {
    const int T = 4096;
    std::vector<float> a(static_cast<size_t>(T) * T);
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) a[static_cast<size_t>(i) * T + j] = static_cast<float>((i * 7 + j * 13) % 101);
    HeatmapOptions options;
    options.causal = false;
    const Heatmap h = render_heatmap(a.data(), T, T, options);
    EXPECT_EQ(h.pool, 4);
    EXPECT_EQ(h.upscale, 1);
    EXPECT_EQ(h.image.width, 1024);
    EXPECT_EQ(h.image.height, 1024);
    EXPECT_EQ(h.file_name("layer03_head-avg"), "layer03_head-avg_pool4.png");

    for (auto [x, y] : {std::pair{0, 0}, std::pair{5, 700}, std::pair{1023, 1023}, std::pair{512, 3}}) {
        double mean = 0.0;
        for (int i = 4 * y; i < 4 * y + 4; i++)
            for (int j = 4 * x; j < 4 * x + 4; j++) mean += a[static_cast<size_t>(i) * T + j];
        mean /= 16;
        EXPECT_EQ(h.image.rgb(x, y), expected_color(h, options, mean)) << "pixel " << x << "," << y;
    }
    // The block mean differs from its corner entry enough to change the colour.
    EXPECT_NE(h.image.rgb(5, 700), expected_color(h, options, a[static_cast<size_t>(2800) * T + 20]));
}

TEST(Heatmap, DiagonalBlocksAverageTheirVisiblePart) {
    const int T = 8;
    std::vector<float> a(static_cast<size_t>(T) * T);
    for (size_t k = 0; k < a.size(); k++) a[k] = static_cast<float>(k % 10);  // nonzero above the diagonal too
    HeatmapOptions options;
    options.max_side = 4;
    options.min_side = 1;
    const Heatmap h = render_heatmap(a.data(), T, T, options);
    ASSERT_EQ(h.pool, 2);
    ASSERT_EQ(h.image.width, 4);
    // Block (0, 0) sees (0,0), (1,0), (1,1) only; block (0, 1) sees nothing.
    EXPECT_EQ(h.image.rgb(0, 0), expected_color(h, options, (a[0] + a[8] + a[9]) / 3.0));
    EXPECT_EQ(h.image.rgb(1, 0), options.masked_color);
    // A block below the diagonal averages all four entries.
    EXPECT_EQ(h.image.rgb(0, 3), expected_color(h, options, (a[48] + a[49] + a[56] + a[57]) / 4.0));
    EXPECT_EQ(h.file_name("x"), "x_pool2.png");
}

TEST(Heatmap, MaskedTriangleIsNeutralGreyDistinctFromZero) {
    const int T = 64;
    const std::vector<float> a = uniform_causal(T);
    const HeatmapOptions options;
    const Heatmap h = render_heatmap(a.data(), T, T, options);
    EXPECT_EQ(h.pool, 1);
    EXPECT_EQ(h.upscale, 4);  // 64 x 64 becomes 256 x 256
    EXPECT_EQ(h.image.width, 256);
    EXPECT_EQ(h.image.height, 256);
    EXPECT_EQ(h.file_name("layer00_head03"), "layer00_head03.png");

    const Rgb grey = options.masked_color;
    EXPECT_EQ(grey.r, grey.g);
    EXPECT_EQ(grey.g, grey.b);
    EXPECT_EQ(h.image.rgb(255, 0), grey);                               // query 0, key 63: masked
    EXPECT_EQ(h.image.rgb(4 * 40, 4 * 39), grey);                       // key 40 > query 39
    EXPECT_NE(h.image.rgb(4 * 39, 4 * 39), grey);                       // the diagonal is visible
    EXPECT_EQ(h.image.rgb(0, 0), colormap_rgb(options.colormap, 1.0));  // A_00 = 1
    // Grey is no colour of either map, so it never reads as a value (zero included).
    for (Colormap map : {Colormap::viridis, Colormap::magma})
        for (int i = 0; i < 256; i++) EXPECT_NE(colormap_rgb(map, (i + 0.5) / 256), grey);
}

TEST(Heatmap, ZeroBelowTheDiagonalIsNotMasked) {
    const int T = 4;
    std::vector<float> a = uniform_causal(T);
    a[3 * T + 1] = 0.0f;  // a visible zero
    const Heatmap h = render_heatmap(a.data(), T, T, {});
    const int u = h.upscale;
    EXPECT_EQ(h.image.rgb(1 * u, 3 * u), colormap_rgb(Colormap::viridis, 0.0));
    EXPECT_NE(h.image.rgb(1 * u, 3 * u), HeatmapOptions{}.masked_color);
}

TEST(Heatmap, LogScaleSpreadsSmallWeights) {
    const int T = 4;
    std::vector<float> a(T * T, 0.0f);
    a[0] = 1.0f;
    a[1 * T + 0] = 1e-2f;  // halfway between the floor and 1 in log10
    a[2 * T + 0] = 1e-7f;  // below the floor: drawn as the floor
    a[3 * T + 0] = 1e-3f;
    HeatmapOptions options;
    options.scale = ScaleKind::log;
    options.vmin = 1e-4;
    options.vmax = 1.0;
    options.min_side = 1;
    const Heatmap h = render_heatmap(a.data(), T, T, options);
    const ValueScale log{ScaleKind::log, 1e-4, 1.0, 1e-4};
    EXPECT_NEAR(log.normalize(a[1 * T]), 0.5, 1e-6);
    EXPECT_EQ(h.image.rgb(0, 1), colormap_rgb(Colormap::viridis, log.normalize(a[1 * T])));
    EXPECT_EQ(h.image.rgb(0, 2), colormap_rgb(Colormap::viridis, 0.0));
    EXPECT_EQ(h.image.rgb(0, 3), colormap_rgb(Colormap::viridis, log.normalize(a[3 * T])));
    EXPECT_EQ(h.image.rgb(1, 1), colormap_rgb(Colormap::viridis, 0.0));  // 0 clamps to the floor
    EXPECT_NE(h.image.rgb(0, 1), h.image.rgb(0, 3));
    // On a linear scale 1e-3 and 1e-2 both land in the map's first three entries.
    options.scale = ScaleKind::linear;
    const Heatmap linear = render_heatmap(a.data(), T, T, options);
    EXPECT_EQ(linear.image.rgb(0, 1), colormap_rgb(Colormap::viridis, 2.0 / 256));
    EXPECT_EQ(linear.image.rgb(0, 3), colormap_rgb(Colormap::viridis, 0.0));
}

TEST(Heatmap, DefaultRangeIsTheDrawnValuesAndLogRangeStartsAtTheFloor) {
    const int T = 16;
    const std::vector<float> a = uniform_causal(T);
    const Heatmap linear = render_heatmap(a.data(), T, T, {});
    EXPECT_DOUBLE_EQ(linear.vmin, 1.0 / 16);
    EXPECT_DOUBLE_EQ(linear.vmax, 1.0);
    HeatmapOptions options;
    options.scale = ScaleKind::log;
    options.log_floor = 0.1;
    const Heatmap log = render_heatmap(a.data(), T, T, options);
    EXPECT_DOUBLE_EQ(log.vmin, 0.1);
}

TEST(Heatmap, SlotColumnAndNanMasks) {
    // 3 queries, 4 columns: column 0 a sink slot every query sees; causal mask aligned bottom-right.
    const int rows = 3, cols = 4;
    std::vector<float> a(rows * cols, 0.5f);
    a[2 * cols + 1] = std::numeric_limits<float>::quiet_NaN();
    HeatmapOptions options;
    options.min_side = 1;
    options.vmin = 0.0;
    options.vmax = 1.0;
    const Heatmap h = render_heatmap(a.data(), rows, cols, options);
    ASSERT_EQ(h.image.width, 4);
    ASSERT_EQ(h.image.height, 3);
    const Rgb grey = options.masked_color, half = colormap_rgb(Colormap::viridis, 0.5);
    EXPECT_EQ(h.image.rgb(0, 0), half);  // slot
    EXPECT_EQ(h.image.rgb(1, 0), half);  // query 0 sees key 0 (column 1)
    EXPECT_EQ(h.image.rgb(2, 0), grey);
    EXPECT_EQ(h.image.rgb(3, 1), grey);
    EXPECT_EQ(h.image.rgb(3, 2), half);
    EXPECT_EQ(h.image.rgb(1, 2), grey);  // NaN
}

TEST(Heatmap, UpscaleNeverPassesMaxSide) {
    const std::vector<float> a = uniform_causal(100);
    HeatmapOptions options;
    options.min_side = 1000;
    options.max_side = 350;
    const Heatmap h = render_heatmap(a.data(), 100, 100, options);
    EXPECT_EQ(h.upscale, 3);
    EXPECT_EQ(h.image.width, 300);
}

TEST(Heatmap, RejectsBadInput) {
    const float one = 1.0f;
    EXPECT_THROW(render_heatmap(nullptr, 2, 2), Error);
    EXPECT_THROW(render_heatmap(&one, 0, 1), Error);
    HeatmapOptions options;
    options.max_side = 0;
    EXPECT_THROW(render_heatmap(&one, 1, 1, options), Error);
    options = {};
    options.scale = ScaleKind::log;
    options.log_floor = 0.0;
    EXPECT_THROW(render_heatmap(&one, 1, 1, options), Error);
}

}  // namespace
}  // namespace sinklab
