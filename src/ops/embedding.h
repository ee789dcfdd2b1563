#pragma once
#include <cstdint>

namespace sinklab {

// out (N, C) = wte[tokens] * scale. scale is 1 except Gemma's sqrt(C).
void embedding_forward(float* out, const int32_t* tokens, const float* wte, int N, int C, float scale = 1.0f);
// Accumulates dwte.
void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int C, float scale = 1.0f);

// Absolute positions: out (N, C) += table[positions[i]] on row i (learned or sinusoidal rows).
void position_add_forward(float* out, const float* table, const int* positions, int N, int C);
// in the forward pass this was: out[i] += table[positions[i]]. Accumulates dtable.
void position_add_backward(float* dtable, const float* dout, const int* positions, int N, int C);

// The sink token (a learnable row prepended to every sequence, StreamingLLM's sink as a parameter):
// row 0 of each of the B sequences of T rows in x (B*T, C) is overwritten with sink (C).
void sink_token_forward(float* x, const float* sink, int B, int T, int C);
// in the forward pass this was: x[b, 0] = sink. Accumulates dsink from those rows of dx and zeroes
// them, since the values the sink replaced receive no gradient.
void sink_token_backward(float* dsink, float* dx, int B, int T, int C);

// Fixed sinusoidal positions (Vaswani et al.): table (T, C), sin on even dims, cos on odd.
void sinusoidal_positions(float* table, int T, int C);

}  // namespace sinklab
