#include "report/png.h"

#include <png.h>

#include "core/error.h"
#include "core/files.h"

namespace sinklab {

namespace {

// Owns a png_image so that its libpng state is released on every path out.
struct PngImage {
    png_image image{};
    PngImage() { image.version = PNG_IMAGE_VERSION; }
    ~PngImage() { png_image_free(&image); }
    PngImage(const PngImage&) = delete;
    PngImage& operator=(const PngImage&) = delete;
};

}  // namespace

std::string encode_png(const Image& image) {
    SINKLAB_CHECK(image.width > 0 && image.height > 0, "report", "cannot encode an empty {}x{} image as PNG",
                  image.width, image.height);
    SINKLAB_CHECK(image.channels == 3 || image.channels == 4, "report",
                  "cannot encode an image with {} channels as PNG: expected 3 (RGB) or 4 (RGBA)", image.channels);
    SINKLAB_ASSERT(image.pixels.size() == static_cast<size_t>(image.width) * image.height * image.channels);

    PngImage png;
    png.image.width = static_cast<png_uint_32>(image.width);
    png.image.height = static_cast<png_uint_32>(image.height);
    png.image.format = image.channels == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    const png_int_32 row_stride = image.width * image.channels;

    // First call measures, second call writes (libpng's documented two-pass use).
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&png.image, nullptr, &size, 0, image.pixels.data(), row_stride, nullptr))
        fail("report", "libpng cannot encode a {}x{} image: {}", image.width, image.height, png.image.message);
    std::string bytes(size, '\0');
    if (!png_image_write_to_memory(&png.image, bytes.data(), &size, 0, image.pixels.data(), row_stride, nullptr))
        fail("report", "libpng cannot encode a {}x{} image: {}", image.width, image.height, png.image.message);
    bytes.resize(size);
    return bytes;
}

void write_png(const std::filesystem::path& path, const Image& image) {
    const std::filesystem::path folder = path.parent_path().empty() ? "." : path.parent_path();
    std::error_code ec;
    SINKLAB_CHECK(std::filesystem::is_directory(folder, ec), "report",
                  "{}: cannot write PNG: folder {} does not exist (create the output folder first)", path.string(),
                  folder.string());
    write_file_atomic(path, encode_png(image));
}

}  // namespace sinklab
