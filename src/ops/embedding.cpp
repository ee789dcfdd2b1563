#include "ops/embedding.h"

#include <algorithm>
#include <cmath>

namespace sinklab {

void embedding_forward(float* out, const int32_t* tokens, const float* wte, int N, int C, float scale) {
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < N; ++i) {
        const float* e = wte + static_cast<long>(tokens[i]) * C;
        float* o = out + static_cast<long>(i) * C;
        for (int c = 0; c < C; ++c) o[c] = e[c] * scale;
    }
}

void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int C, float scale) {
    // Sequential over tokens: rows of dwte can repeat, and a fixed order keeps results reproducible.
    // Parallel over channels instead.
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; ++c)
        for (int i = 0; i < N; ++i) dwte[static_cast<long>(tokens[i]) * C + c] += dout[static_cast<long>(i) * C + c] * scale;
}

void position_add_forward(float* out, const float* table, const int* positions, int N, int C) {
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < N; ++i) {
        const float* p = table + static_cast<long>(positions[i]) * C;
        float* o = out + static_cast<long>(i) * C;
        for (int c = 0; c < C; ++c) o[c] += p[c];
    }
}

void position_add_backward(float* dtable, const float* dout, const int* positions, int N, int C) {
    // Rows of dtable repeat (every sequence has position 0): sequential over rows, parallel over channels.
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; ++c)
        for (int i = 0; i < N; ++i) dtable[static_cast<long>(positions[i]) * C + c] += dout[static_cast<long>(i) * C + c];
}

void sink_token_forward(float* x, const float* sink, int B, int T, int C) {
    for (int b = 0; b < B; ++b) std::copy(sink, sink + C, x + static_cast<long>(b) * T * C);
}

void sink_token_backward(float* dsink, float* dx, int B, int T, int C) {
    for (int b = 0; b < B; ++b) {
        float* row = dx + static_cast<long>(b) * T * C;
        for (int c = 0; c < C; ++c) dsink[c] += row[c];
        std::fill(row, row + C, 0.0f);
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
