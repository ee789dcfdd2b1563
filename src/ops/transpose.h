#pragma once

namespace sinklab {

// dst (cols, rows) = x^T, x being `rows` rows of `cols` floats with row stride `stride`. In blocks
// of rows, so that the stores run along dst's rows while the block's source rows stay in cache.
inline void transpose_rows(float* dst, const float* x, int rows, int cols, long stride) {
    constexpr int kBlock = 16;
    for (int r0 = 0; r0 < rows; r0 += kBlock) {
        const int r1 = r0 + kBlock < rows ? r0 + kBlock : rows;
        for (int c = 0; c < cols; ++c)
            for (int r = r0; r < r1; ++r) dst[static_cast<long>(c) * rows + r] = x[r * stride + c];
    }
}

}  // namespace sinklab
