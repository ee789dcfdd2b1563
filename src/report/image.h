#pragma once
// An 8-bit RGB(A) raster, the common currency of the report's renderers (heatmaps, PNG files).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sinklab {

struct Rgb {
    uint8_t r = 0, g = 0, b = 0;
    friend bool operator==(const Rgb&, const Rgb&) = default;
};

// "#rrggbb", for CSS and SVG.
std::string hex_color(Rgb color);

struct Image {
    int width = 0;
    int height = 0;
    int channels = 3;             // 3: RGB, 4: RGBA (straight, not premultiplied, alpha)
    std::vector<uint8_t> pixels;  // (height, width, channels), top row first

    Image() = default;
    Image(int width, int height, int channels = 3);  // zero-filled: black, and transparent for RGBA

    uint8_t* pixel(int x, int y) { return pixels.data() + offset(x, y); }
    const uint8_t* pixel(int x, int y) const { return pixels.data() + offset(x, y); }
    void set(int x, int y, Rgb color);  // alpha, if any, becomes opaque
    Rgb rgb(int x, int y) const;

private:
    size_t offset(int x, int y) const { return (static_cast<size_t>(y) * width + x) * channels; }
};

}  // namespace sinklab
