#include "ops/rope.h"
#include "ops/rope_head.h"

#include <cmath>

#include "core/error.h"

namespace sinklab {

std::vector<double> RopeTable::default_inv_freq(int rotary_dim, double theta) {
    std::vector<double> inv(rotary_dim / 2);
    for (int i = 0; i < rotary_dim / 2; ++i) inv[i] = 1.0 / std::pow(theta, (2.0 * i) / rotary_dim);
    return inv;
}

RopeTable RopeTable::build(const std::vector<double>& inv_freq, int max_positions, double attention_factor) {
    RopeTable t;
    t.rotary_dim = static_cast<int>(inv_freq.size()) * 2;
    t.positions = max_positions;
    const int half = t.rotary_dim / 2;
    t.cos.resize(static_cast<size_t>(max_positions) * half);
    t.sin.resize(static_cast<size_t>(max_positions) * half);
    for (int p = 0; p < max_positions; ++p) {
        for (int i = 0; i < half; ++i) {
            // HF computes the angle in float32 (positions * inv_freq); do the same for parity.
            float angle = static_cast<float>(p) * static_cast<float>(inv_freq[i]);
            t.cos[static_cast<size_t>(p) * half + i] = static_cast<float>(std::cos(angle) * attention_factor);
            t.sin[static_cast<size_t>(p) * half + i] = static_cast<float>(std::sin(angle) * attention_factor);
        }
    }
    return t;
}

static void rotate(float* x, const int* positions, int n_tokens, int n_heads, int HS, long row_stride,
                   const RopeTable& table, float sign) {
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < n_tokens; ++t) {
        const int p = positions[t];
        SINKLAB_ASSERT(p >= 0 && p < table.positions);
        for (int h = 0; h < n_heads; ++h) rope_rotate_head(x + t * row_stride + static_cast<long>(h) * HS, table, p, sign);
    }
}

void rope_forward(float* x, const int* positions, int n_tokens, int n_heads, int HS, long row_stride,
                  const RopeTable& table) {
    rotate(x, positions, n_tokens, n_heads, HS, row_stride, table, 1.0f);
}

void rope_backward(float* dx, const int* positions, int n_tokens, int n_heads, int HS, long row_stride,
                   const RopeTable& table) {
    // forward: [a', b'] = [a c - b s, b c + a s] = R x; backward: dx = R^T dy (attention_factor
    // scales both, so R^T uses the same c and s with the opposite sign).
    rotate(dx, positions, n_tokens, n_heads, HS, row_stride, table, -1.0f);
}

}  // namespace sinklab
