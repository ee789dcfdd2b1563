#include "ops/embedding.h"

#include <cmath>

namespace sinklab {

void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T, int C,
                       float scale) {
    #pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; ++bt) {
        const float* e = wte + static_cast<long>(tokens[bt]) * C;
        const float* p = wpe ? wpe + static_cast<long>(bt % T) * C : nullptr;
        float* o = out + static_cast<long>(bt) * C;
        for (int c = 0; c < C; ++c) o[c] = e[c] * scale + (p ? p[c] : 0.0f);
    }
}

void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T, int C,
                        float scale) {
    // Sequential over tokens: rows of dwte can repeat, and a fixed order keeps results reproducible.
    // Parallel over channels instead.
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; ++c) {
        for (int bt = 0; bt < B * T; ++bt) {
            float g = dout[static_cast<long>(bt) * C + c];
            dwte[static_cast<long>(tokens[bt]) * C + c] += g * scale;
            if (dwpe) dwpe[static_cast<long>(bt % T) * C + c] += g;
        }
    }
}

void sinusoidal_positions(float* table, int T, int C) {
    for (int t = 0; t < T; ++t) {
        for (int i = 0; i < C; i += 2) {
            double freq = std::pow(10000.0, -static_cast<double>(i) / C);
            table[static_cast<long>(t) * C + i] = static_cast<float>(std::sin(t * freq));
            if (i + 1 < C) table[static_cast<long>(t) * C + i + 1] = static_cast<float>(std::cos(t * freq));
        }
    }
}

}  // namespace sinklab
