#include "report/image.h"

#include "core/error.h"

namespace sinklab {

std::string hex_color(Rgb color) { return fmt::format("#{:02x}{:02x}{:02x}", color.r, color.g, color.b); }

Image::Image(int width, int height, int channels) : width(width), height(height), channels(channels) {
    SINKLAB_CHECK(width > 0 && height > 0, "report", "image size {}x{}: both sides must be positive", width, height);
    SINKLAB_CHECK(channels == 3 || channels == 4, "report", "image with {} channels: expected 3 (RGB) or 4 (RGBA)",
                  channels);
    pixels.assign(static_cast<size_t>(width) * height * channels, 0);
}

void Image::set(int x, int y, Rgb color) {
    uint8_t* p = pixel(x, y);
    p[0] = color.r;
    p[1] = color.g;
    p[2] = color.b;
    if (channels == 4) p[3] = 255;
}

Rgb Image::rgb(int x, int y) const {
    const uint8_t* p = pixel(x, y);
    return {p[0], p[1], p[2]};
}

}  // namespace sinklab
