#pragma once
// PNG encoding through libpng's simplified write API: libpng's setjmp/longjmp error path stays
// inside libpng and comes back as a return code and a message, so no C++ frame is ever skipped.
#include <filesystem>
#include <string>

#include "report/image.h"

namespace sinklab {

// The bytes of a PNG file holding `image` (8-bit RGB or RGBA).
std::string encode_png(const Image& image);
// Encodes and writes atomically; the folder must already exist.
void write_png(const std::filesystem::path& path, const Image& image);

}  // namespace sinklab
