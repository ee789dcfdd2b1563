#pragma once
// MXFP4 weights (OCP Microscaling Formats v1.0; gpt-oss's expert matrices): each row of a matrix is
// cut into blocks of 32 values; a block is 16 bytes of 4-bit E2M1 codes (two per byte, the low
// nibble first) and one E8M0 scale byte e, and value i of the block is fp4(code_i) * 2^(e - 127).
// openai/gpt-oss gpt_oss/torch/weights.py decodes the same way (FP4_VALUES, low nibble first,
// torch.ldexp with the scale minus 127).
//
// The matrices stay in this form in memory (4.25 bits a value) and are decoded a tile of rows at a
// time inside the product, so a model whose experts would take 4 bytes a value as float32 fits in
// an eighth of that.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sinklab {

inline constexpr int kMxfp4BlockValues = 32;  // values sharing one scale
inline constexpr int kMxfp4BlockBytes = 16;   // bytes of codes per block
inline constexpr uint8_t kMxfp4NanScale = 255;  // E8M0's NaN: not a scale

// The E2M1 value of a 4-bit code: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives (codes 8..15;
// code 8 is -0).
float fp4_value(uint8_t code);
// 2^(e - 127) for an E8M0 byte e < 255, exactly (e = 0 gives the float32 subnormal 2^-127).
float mxfp4_scale(uint8_t e);

// `count` matrices of rows x cols values (cols a multiple of 32), laid out as a checkpoint stores
// them: blocks (count, rows, cols / 32, 16) bytes and scales (count, rows, cols / 32) bytes.
class Mxfp4Matrices {
public:
    Mxfp4Matrices() = default;
    // Every code 0 and every scale 2^0: all values zero.
    Mxfp4Matrices(int count, int rows, int cols);

    int count() const { return count_; }
    int rows() const { return rows_; }
    int cols() const { return cols_; }
    int blocks_per_row() const { return cols_ / kMxfp4BlockValues; }
    size_t block_bytes() const { return blocks_.size(); }
    size_t scale_bytes() const { return scales_.size(); }
    size_t bytes() const { return blocks_.size() + scales_.size(); }

    // Row r of matrix m: blocks_per_row() * 16 code bytes and blocks_per_row() scale bytes.
    uint8_t* row_blocks(int m, int r) { return blocks_.data() + row_index(m, r) * blocks_per_row() * kMxfp4BlockBytes; }
    uint8_t* row_scales(int m, int r) { return scales_.data() + row_index(m, r) * blocks_per_row(); }
    const uint8_t* row_blocks(int m, int r) const {
        return blocks_.data() + row_index(m, r) * blocks_per_row() * kMxfp4BlockBytes;
    }
    const uint8_t* row_scales(int m, int r) const { return scales_.data() + row_index(m, r) * blocks_per_row(); }

    // Rows [r0, r1) of matrix m as float32, (r1 - r0, cols) row-major into `out`.
    void decode_rows(int m, int r0, int r1, float* out) const;

private:
    size_t row_index(int m, int r) const { return static_cast<size_t>(m) * rows_ + r; }

    int count_ = 0, rows_ = 0, cols_ = 0;
    std::vector<uint8_t> blocks_, scales_;
};

// out (n, rows) = x (n, cols) @ W_m^T + bias (rows; may be null), W_m matrix m of `w`, decoded a
// tile of rows at a time into per-thread float32 buffers (never the whole matrix). Equal to the
// product with the decoded float32 matrix up to the summation order of the float32 products.
void mxfp4_matmul(float* out, const float* x, int n, const Mxfp4Matrices& w, int m, const float* bias);

}  // namespace sinklab
