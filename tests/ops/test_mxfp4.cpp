// MXFP4 (ops/mxfp4.h): decoding known blocks gives the E2M1 table's values times the block's scale
// exactly, and the product with MXFP4 weights equals the product with the decoded float32 matrix
// (computed here in double from the decoded values) within 1e-5 relative.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "ops/mxfp4.h"

namespace sinklab {
namespace {

// E2M1 (OCP Microscaling Formats v1.0, table of FP4 values): sign, 2 exponent bits, 1 mantissa bit.
double e2m1(int code) {
    const int sign = code >> 3, exponent = (code >> 1) & 3, mantissa = code & 1;
    const double magnitude = exponent == 0 ? 0.5 * mantissa : std::ldexp(1.0 + 0.5 * mantissa, exponent - 1);
    return sign ? -magnitude : magnitude;
}

TEST(Mxfp4, TheCodeTableIsE2M1) {
    const float expected[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
    for (int code = 0; code < 16; ++code) {
        EXPECT_EQ(fp4_value(static_cast<uint8_t>(code)), expected[code]) << "code " << code;
        EXPECT_EQ(fp4_value(static_cast<uint8_t>(code)), e2m1(code)) << "code " << code;
        EXPECT_EQ(std::signbit(fp4_value(static_cast<uint8_t>(code))), code >= 8) << "code " << code;
    }
}

TEST(Mxfp4, ScalesArePowersOfTwoOverTheWholeE8M0Range) {
    for (int e = 0; e < 255; ++e) EXPECT_EQ(mxfp4_scale(static_cast<uint8_t>(e)), std::ldexp(1.0f, e - 127)) << e;
    EXPECT_GT(mxfp4_scale(0), 0.0f);  // 2^-127, a float32 subnormal
}

TEST(Mxfp4, DecodingKnownBlocksGivesTableValuesTimesTheScale) {
    // one matrix of 2 rows x 64 values: row 0 counts through every code (low nibble first), row 1
    // holds the codes in reverse; each block has its own scale, from the extremes of E8M0
    Mxfp4Matrices w(1, 2, 64);
    const uint8_t scales[2][2] = {{127, 130}, {1, 254}};
    for (int r = 0; r < 2; ++r) {
        for (int b = 0; b < 2; ++b) w.row_scales(0, r)[b] = scales[r][b];
        for (int i = 0; i < 32; ++i) {
            const int lo = (2 * i) % 16, hi = (2 * i + 1) % 16;
            w.row_blocks(0, r)[i] = static_cast<uint8_t>(r == 0 ? lo | hi << 4 : (15 - lo) | (15 - hi) << 4);
        }
    }
    std::vector<float> decoded(2 * 64);
    w.decode_rows(0, 0, 2, decoded.data());
    for (int r = 0; r < 2; ++r)
        for (int j = 0; j < 64; ++j) {
            const int code = r == 0 ? j % 16 : 15 - j % 16;
            const float expected = static_cast<float>(e2m1(code) * std::ldexp(1.0, scales[r][j / 32] - 127));
            EXPECT_EQ(decoded[r * 64 + j], expected) << "row " << r << " value " << j;
            EXPECT_EQ(std::signbit(decoded[r * 64 + j]), code >= 8) << "row " << r << " value " << j;
        }
    // a single row range decodes the same values
    std::vector<float> second(64);
    w.decode_rows(0, 1, 2, second.data());
    for (int j = 0; j < 64; ++j) EXPECT_EQ(second[j], decoded[64 + j]);
}

TEST(Mxfp4, ProductEqualsTheProductWithTheDecodedMatrix) {
    Rng rng(7);
    // 3 matrices of 37 rows (two full tiles and a partial one) x 96 values; several batch sizes
    const int count = 3, rows = 37, cols = 96;
    Mxfp4Matrices w(count, rows, cols);
    for (int m = 0; m < count; ++m)
        for (int r = 0; r < rows; ++r) {
            for (int i = 0; i < w.blocks_per_row() * kMxfp4BlockBytes; ++i)
                w.row_blocks(m, r)[i] = static_cast<uint8_t>(rng.below(256));
            for (int b = 0; b < w.blocks_per_row(); ++b) w.row_scales(m, r)[b] = static_cast<uint8_t>(120 + rng.below(10));
        }
    std::vector<float> bias(rows);
    for (float& b : bias) b = static_cast<float>(rng.normal());
    for (int n : {1, 5, 64}) {
        std::vector<float> x(static_cast<size_t>(n) * cols);
        for (float& v : x) v = static_cast<float>(rng.normal());
        for (int m = 0; m < count; ++m) {
            std::vector<float> decoded(static_cast<size_t>(rows) * cols), out(static_cast<size_t>(n) * rows);
            w.decode_rows(m, 0, rows, decoded.data());
            mxfp4_matmul(out.data(), x.data(), n, w, m, m == 1 ? bias.data() : nullptr);
            double worst = 0.0, scale = 0.0;
            for (int i = 0; i < n; ++i)
                for (int r = 0; r < rows; ++r) {
                    double expected = m == 1 ? bias[r] : 0.0;
                    for (int k = 0; k < cols; ++k)
                        expected += static_cast<double>(x[static_cast<size_t>(i) * cols + k]) * decoded[static_cast<size_t>(r) * cols + k];
                    worst = std::max(worst, std::abs(out[static_cast<size_t>(i) * rows + r] - expected));
                    scale = std::max(scale, std::abs(expected));
                }
            EXPECT_LE(worst, 1e-5 * scale) << "n " << n << " matrix " << m << ": max error " << worst << ", scale " << scale;
        }
    }
}

}  // namespace
}  // namespace sinklab
