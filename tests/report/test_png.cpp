#include <gtest/gtest.h>

#include "core/error.h"
#include "helpers.h"
#include "report/png.h"

namespace sinklab {
namespace {

Image pattern(int width, int height, int channels) {
    Image image(width, height, channels);
    for (size_t i = 0; i < image.pixels.size(); i++) image.pixels[i] = static_cast<uint8_t>(i * 37 + 11);
    return image;
}

TEST(Png, RgbRoundTripsExactly) {
    const Image image = pattern(7, 5, 3);
    const std::string bytes = encode_png(image);
    ASSERT_GT(bytes.size(), 8u);
    EXPECT_EQ(bytes.substr(0, 4), "\x89PNG");
    const Image back = test::decode_png(bytes, false, 3);
    EXPECT_EQ(back.width, 7);
    EXPECT_EQ(back.height, 5);
    EXPECT_EQ(back.pixels, image.pixels);
}

TEST(Png, RgbaRoundTripsExactly) {
    const Image image = pattern(4, 6, 4);
    const Image back = test::decode_png(encode_png(image), false, 4);
    EXPECT_EQ(back.width, 4);
    EXPECT_EQ(back.height, 6);
    EXPECT_EQ(back.pixels, image.pixels);
}

TEST(Png, WritesAFileThatReadsBack) {
    const auto path = test::scratch_dir() / "small.png";
    Image image(3, 2);
    image.set(0, 0, {255, 0, 0});
    image.set(2, 1, {0, 0, 255});
    write_png(path, image);
    const Image back = test::decode_png(path.string(), true, 3);
    EXPECT_EQ(back.pixels, image.pixels);
    EXPECT_EQ(back.rgb(0, 0), (Rgb{255, 0, 0}));
    EXPECT_EQ(back.rgb(2, 1), (Rgb{0, 0, 255}));
    EXPECT_EQ(back.rgb(1, 0), (Rgb{0, 0, 0}));
}

TEST(Png, MissingFolderIsAClearError) {
    const auto path = test::scratch_dir() / "no-such-folder" / "map.png";
    try {
        write_png(path, Image(2, 2));
        FAIL() << "expected sinklab::Error";
    } catch (const Error& e) {
        EXPECT_EQ(e.module(), "report");
        EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(path.parent_path()));
}

TEST(Png, LibpngErrorsBecomeSinklabErrors) {
    // libpng refuses widths above its default user limit (1,000,000) with png_error, i.e. a longjmp
    // inside the simplified API, which must come back as an exception (and, under ASan, leak nothing).
    const Image wide(1'000'001, 1);
    try {
        encode_png(wide);
        FAIL() << "expected sinklab::Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("libpng cannot encode a 1000001x1 image"), std::string::npos) << e.what();
    }
}

TEST(Png, RejectsMalformedImages) {
    EXPECT_THROW(Image(0, 4), Error);
    EXPECT_THROW(Image(4, 4, 2), Error);
    Image empty;
    EXPECT_THROW(encode_png(empty), Error);
}

}  // namespace
}  // namespace sinklab
