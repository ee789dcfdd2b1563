#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "core/error.h"
#include "report/colormap.h"

namespace sinklab {
namespace {

// CIE L* of an sRGB colour (D65), in [0, 100].
double lightness(Rgb c) {
    auto linear = [](uint8_t v) {
        const double s = v / 255.0;
        return s <= 0.04045 ? s / 12.92 : std::pow((s + 0.055) / 1.055, 2.4);
    };
    const double y = 0.2126 * linear(c.r) + 0.7152 * linear(c.g) + 0.0722 * linear(c.b);
    return y > 216.0 / 24389.0 ? 116.0 * std::cbrt(y) - 16.0 : 24389.0 / 27.0 * y;
}

TEST(Colormap, ViridisEndpointsArePublishedValues) {
    EXPECT_EQ(colormap_rgb(Colormap::viridis, 0.0), (Rgb{0x44, 0x01, 0x54}));
    EXPECT_EQ(colormap_rgb(Colormap::viridis, 1.0), (Rgb{0xfd, 0xe7, 0x25}));
    EXPECT_EQ(hex_color(colormap_rgb(Colormap::viridis, 0.0)), "#440154");
    EXPECT_EQ(hex_color(colormap_rgb(Colormap::viridis, 1.0)), "#fde725");
}

TEST(Colormap, MagmaEndpointsArePublishedValues) {
    EXPECT_EQ(hex_color(colormap_rgb(Colormap::magma, 0.0)), "#000004");
    EXPECT_EQ(hex_color(colormap_rgb(Colormap::magma, 1.0)), "#fcfdbf");
}

TEST(Colormap, LooksUpLikeMatplotlib) {
    // matplotlib: index floor(t * 256), capped at 255. Entry 128 of viridis is (0.127568, 0.566949, 0.550556),
    // entry 127 (0.128729, 0.563265, 0.551229).
    EXPECT_EQ(hex_color(colormap_rgb(Colormap::viridis, 0.5)), "#21918c");
    EXPECT_EQ(hex_color(colormap_rgb(Colormap::viridis, 0.499)), "#21908d");
    EXPECT_EQ(colormap_rgb(Colormap::viridis, 255.5 / 256), colormap_rgb(Colormap::viridis, 1.0));
    EXPECT_EQ(colormap_rgb(Colormap::viridis, -3.0), colormap_rgb(Colormap::viridis, 0.0));
    EXPECT_EQ(colormap_rgb(Colormap::viridis, 7.0), colormap_rgb(Colormap::viridis, 1.0));
    EXPECT_EQ(colormap_rgb(Colormap::magma, std::numeric_limits<double>::quiet_NaN()),
              colormap_rgb(Colormap::magma, 0.0));
}

TEST(Colormap, LightnessRisesMonotonically) {
    for (Colormap map : {Colormap::viridis, Colormap::magma}) {
        double previous = lightness(colormap_rgb(map, 0.0));
        const double first = previous;
        for (int i = 1; i < 256; i++) {
            const double l = lightness(colormap_rgb(map, (i + 0.5) / 256));
            // 8-bit rounding of the published floats wobbles L* by a few hundredths at most.
            EXPECT_GE(l, previous - 0.1) << colormap_name(map) << " entry " << i;
            EXPECT_LT(l - previous, 1.0) << colormap_name(map) << " entry " << i;
            previous = l;
        }
        EXPECT_GT(previous - first, 70.0) << colormap_name(map);
    }
}

TEST(Colormap, NamesRoundTripAndUnknownNamesAreRejected) {
    for (Colormap map : {Colormap::viridis, Colormap::magma}) EXPECT_EQ(colormap_from_name(colormap_name(map)), map);
    try {
        colormap_from_name("jet");
        FAIL() << "expected sinklab::Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'jet'"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("viridis or magma"), std::string::npos);
    }
}

TEST(ValueScale, Linear) {
    const ValueScale scale{ScaleKind::linear, 2.0, 6.0};
    EXPECT_DOUBLE_EQ(scale.normalize(2.0), 0.0);
    EXPECT_DOUBLE_EQ(scale.normalize(3.0), 0.25);
    EXPECT_DOUBLE_EQ(scale.normalize(6.0), 1.0);
    EXPECT_DOUBLE_EQ(scale.normalize(-1.0), 0.0);
    EXPECT_DOUBLE_EQ(scale.normalize(9.0), 1.0);
    EXPECT_DOUBLE_EQ((ValueScale{ScaleKind::linear, 1.0, 1.0}.normalize(1.0)), 0.0);
}

TEST(ValueScale, LogClampsBelowTheFloor) {
    const ValueScale scale{ScaleKind::log, 1e-4, 1.0, 1e-4};
    EXPECT_DOUBLE_EQ(scale.normalize(1e-2), 0.5);
    EXPECT_DOUBLE_EQ(scale.normalize(1e-3), 0.25);
    EXPECT_DOUBLE_EQ(scale.normalize(1.0), 1.0);
    EXPECT_DOUBLE_EQ(scale.normalize(1e-9), 0.0);
    EXPECT_DOUBLE_EQ(scale.normalize(0.0), 0.0);
    EXPECT_DOUBLE_EQ(scale.normalize(-5.0), 0.0);
    // vmin below the floor is raised to it too: 0 behaves as 1e-4.
    EXPECT_DOUBLE_EQ((ValueScale{ScaleKind::log, 0.0, 1.0, 1e-4}.normalize(1e-2)), 0.5);
}

}  // namespace
}  // namespace sinklab
