#pragma once
// Rotary position embedding, Hugging Face "rotate_half" convention: within the first `rotary_dim`
// dims of a head, dim i pairs with dim i + rotary_dim/2 (GPT-NeoX and Llama layouts in HF).
// Frequency scaling schemes (llama3, longrope, ...) only change the inverse frequencies and the
// magnitude factor, which the model's configuration computes; the op takes them as given.
#include <vector>

namespace sinklab {

struct RopeTable {
    int rotary_dim = 0;        // R, even, <= head size
    std::vector<float> cos;    // (P, R/2)
    std::vector<float> sin;    // (P, R/2)
    int positions = 0;         // P

    // inv_freq has R/2 entries; attention_factor multiplies cos and sin (longrope/yarn magnitude).
    static RopeTable build(const std::vector<double>& inv_freq, int max_positions, double attention_factor = 1.0);
    // Plain RoPE: inv_freq_i = theta^(-2i/R).
    static std::vector<double> default_inv_freq(int rotary_dim, double theta);
};

// Rotates `n_heads` heads of HS floats, found at x + t * row_stride + h * HS for token t, in place.
// positions[t] is token t's position (index into the table).
void rope_forward(float* x, const int* positions, int n_tokens, int n_heads, int HS, long row_stride,
                  const RopeTable& table);
// The rotation is orthogonal: backward rotates the gradient by the opposite angle, in place.
void rope_backward(float* dx, const int* positions, int n_tokens, int n_heads, int HS, long row_stride,
                   const RopeTable& table);

}  // namespace sinklab
