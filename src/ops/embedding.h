#pragma once
#include <cstdint>

namespace sinklab {

// out (B*T, C) = wte[tokens] * scale (+ wpe[t] when wpe is given). scale is 1 except Gemma's sqrt(C).
void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T, int C,
                       float scale = 1.0f);
// Accumulates dwte and dwpe (dwpe may be null).
void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T, int C,
                        float scale = 1.0f);

// Fixed sinusoidal positions (Vaswani et al.): table (T, C), sin on even dims, cos on odd.
void sinusoidal_positions(float* table, int T, int C);

}  // namespace sinklab
