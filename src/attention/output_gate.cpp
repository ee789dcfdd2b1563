#include "attention/output_gate.h"

#include <cmath>

#include "core/error.h"

namespace sinklab {

namespace {
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
}  // namespace

int output_gate_width(GateKind kind, int NH, int HS) {
    SINKLAB_CHECK(kind != GateKind::none, "attention", "the output gate needs a gate kind (elementwise or headwise)");
    return kind == GateKind::elementwise ? NH * HS : NH;
}

void output_gate_forward(float* out, const float* attn, const float* gate_logits, int N, int NH, int HS,
                         GateKind kind) {
    const int width = output_gate_width(kind, NH, HS), per_logit = kind == GateKind::elementwise ? 1 : HS;
    const long C = static_cast<long>(NH) * HS;
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n)
        for (long c = 0; c < C; ++c)
            out[n * C + c] = attn[n * C + c] * sigmoid(gate_logits[static_cast<long>(n) * width + c / per_logit]);
}

void output_gate_backward(float* dattn, float* dgate_logits, const float* dout, const float* attn,
                          const float* gate_logits, int N, int NH, int HS, GateKind kind) {
    const int width = output_gate_width(kind, NH, HS), per_logit = kind == GateKind::elementwise ? 1 : HS;
    const long C = static_cast<long>(NH) * HS;
    // in the forward pass this was: out = attn * sigmoid(z)
    // dattn += dout * sigmoid(z) ; dz += sum over the logit's entries of dout * attn * sigmoid'(z)
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n)
        for (int l = 0; l < width; ++l) {
            const float g = sigmoid(gate_logits[static_cast<long>(n) * width + l]);
            float dz = 0.0f;
            for (long c = static_cast<long>(l) * per_logit; c < static_cast<long>(l + 1) * per_logit; ++c) {
                if (dattn) dattn[n * C + c] += dout[n * C + c] * g;
                dz += dout[n * C + c] * attn[n * C + c];
            }
            if (dgate_logits) dgate_logits[static_cast<long>(n) * width + l] += dz * g * (1.0f - g);
        }
}

}  // namespace sinklab
