#pragma once
// Helpers shared by the report tests: a fresh scratch folder per test, and PNG decoding through
// libpng's simplified read API (independent of the encoder under test).
#include <png.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "report/image.h"

namespace sinklab::test {

// SINKLAB_BINARY_DIR/test-scratch/report/<suite>.<test>, emptied.
inline std::filesystem::path scratch_dir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const auto dir = std::filesystem::path(SINKLAB_BINARY_DIR) / "test-scratch" / "report" /
                     (std::string(info->test_suite_name()) + "." + info->name());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

// Decodes PNG bytes (from memory) or a PNG file (from a path) to 8-bit RGB or RGBA.
inline Image decode_png(const std::string& bytes_or_path, bool from_file, int channels) {
    png_image png{};
    png.version = PNG_IMAGE_VERSION;
    const int ok = from_file ? png_image_begin_read_from_file(&png, bytes_or_path.c_str())
                             : png_image_begin_read_from_memory(&png, bytes_or_path.data(), bytes_or_path.size());
    if (!ok) ADD_FAILURE() << "libpng cannot read: " << png.message;
    if (!ok) return {};
    png.format = channels == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    Image image(static_cast<int>(png.width), static_cast<int>(png.height), channels);
    if (!png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr)) {
        ADD_FAILURE() << "libpng cannot decode: " << png.message;
        png_image_free(&png);
        return {};
    }
    return image;
}

}  // namespace sinklab::test
