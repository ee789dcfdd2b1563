#include "ops/mxfp4.h"

#include <cblas.h>

#include <algorithm>
#include <array>
#include <bit>

#include "core/error.h"

namespace sinklab {

namespace {

constexpr std::array<float, 16> kFp4Values = {+0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
                                              -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// Both values of a code byte, low nibble first: one lookup per byte in the decoding loop.
struct CodePair {
    float first, second;
};
const std::array<CodePair, 256> kCodePairs = [] {
    std::array<CodePair, 256> pairs{};
    for (int byte = 0; byte < 256; ++byte) pairs[byte] = {kFp4Values[byte & 0x0F], kFp4Values[byte >> 4]};
    return pairs;
}();

// Rows decoded per tile of the product: 16 rows of a 2880-wide matrix are 184 KB, which stay in
// a Zen 4 core's 1 MB L2 next to the activations they meet.
constexpr int kTileRows = 16;

}  // namespace

float fp4_value(uint8_t code) {
    SINKLAB_ASSERT(code < 16);
    return kFp4Values[code];
}

float mxfp4_scale(uint8_t e) {
    SINKLAB_ASSERT(e != kMxfp4NanScale);
    // 2^(e - 127) is the float32 whose exponent field is e; e = 0 has no normal float32, and
    // 2^-127 is the subnormal with only the top mantissa bit set.
    return e == 0 ? std::bit_cast<float>(uint32_t{0x00400000}) : std::bit_cast<float>(static_cast<uint32_t>(e) << 23);
}

Mxfp4Matrices::Mxfp4Matrices(int count, int rows, int cols) : count_(count), rows_(rows), cols_(cols) {
    SINKLAB_ASSERT(count >= 0 && rows >= 0 && cols >= 0 && cols % kMxfp4BlockValues == 0);
    const size_t blocks = static_cast<size_t>(count) * rows * (cols / kMxfp4BlockValues);
    blocks_.assign(blocks * kMxfp4BlockBytes, 0);
    scales_.assign(blocks, 127);
}

void Mxfp4Matrices::decode_rows(int m, int r0, int r1, float* out) const {
    SINKLAB_ASSERT(m >= 0 && m < count_ && 0 <= r0 && r0 <= r1 && r1 <= rows_);
    const int blocks = blocks_per_row();
    for (int r = r0; r < r1; ++r) {
        const uint8_t* codes = row_blocks(m, r);
        const uint8_t* scales = row_scales(m, r);
        float* o = out + static_cast<size_t>(r - r0) * cols_;
        for (int b = 0; b < blocks; ++b) {
            const float scale = mxfp4_scale(scales[b]);
            const uint8_t* block = codes + static_cast<size_t>(b) * kMxfp4BlockBytes;
            float* ob = o + static_cast<size_t>(b) * kMxfp4BlockValues;
            for (int j = 0; j < kMxfp4BlockBytes; ++j) {
                const CodePair pair = kCodePairs[block[j]];
                ob[2 * j] = pair.first * scale;
                ob[2 * j + 1] = pair.second * scale;
            }
        }
    }
}

void mxfp4_matmul(float* out, const float* x, int n, const Mxfp4Matrices& w, int m, const float* bias) {
    const int rows = w.rows(), cols = w.cols();
    const int tiles = (rows + kTileRows - 1) / kTileRows;
    if (n == 0 || rows == 0) return;
    #pragma omp parallel
    {
        std::vector<float> tile(static_cast<size_t>(kTileRows) * cols);
        #pragma omp for schedule(static)
        for (int t = 0; t < tiles; ++t) {
            const int r0 = t * kTileRows, r1 = std::min(rows, r0 + kTileRows), width = r1 - r0;
            w.decode_rows(m, r0, r1, tile.data());
            // out[:, r0:r1] = x (n, cols) @ tile (width, cols)^T; inside a parallel region OpenBLAS
            // (OpenMP build) runs on the calling thread.
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, width, cols, 1.0f, x, cols, tile.data(), cols, 0.0f,
                        out + r0, rows);
            if (bias)
                for (int i = 0; i < n; ++i)
                    for (int r = r0; r < r1; ++r) out[static_cast<size_t>(i) * rows + r] += bias[r];
        }
    }
}

}  // namespace sinklab
