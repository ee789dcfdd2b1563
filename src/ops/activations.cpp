#include "ops/activations.h"

#include <algorithm>
#include <cmath>

#include "ops/vector_math.h"

namespace sinklab {

namespace {
constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2 / pi)

inline float gelu(float x) {
    float cube = 0.044715f * x * x * x;
    return 0.5f * x * (1.0f + tanh_fast(kGeluScale * (x + cube)));
}
inline float gelu_grad(float x) {
    float cube = 0.044715f * x * x * x;
    float t = tanh_fast(kGeluScale * (x + cube));
    float sech2 = 1.0f - t * t;
    return 0.5f * (1.0f + t) + 0.5f * x * sech2 * kGeluScale * (1.0f + 3.0f * 0.044715f * x * x);
}
constexpr float kInvSqrt2 = 0.7071067811865476f;    // 1 / sqrt(2)
constexpr float kInvSqrt2Pi = 0.3989422804014327f;  // 1 / sqrt(2 pi)

inline float gelu_erf(float x) { return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2)); }
// d/dx [x Phi(x)] = Phi(x) + x phi(x), with Phi the standard normal CDF and phi its density.
inline float gelu_erf_grad(float x) {
    return 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
}
inline float sigmoid(float x) { return sigmoid_fast(x); }
}  // namespace

void gelu_forward(float* out, const float* inp, long n) {
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) out[i] = gelu(inp[i]);
}

namespace {
// dinp (+)= chain(inp[i], dout[i]), as `write` says: two loops, so that each vectorises.
template <class Chain>
void store_elementwise_grad(float* dinp, const float* inp, const float* dout, long n, GradWrite write, Chain chain) {
    if (write == GradWrite::accumulate) {
        #pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; ++i) dinp[i] += chain(inp[i], dout[i]);
    } else {
        #pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; ++i) dinp[i] = chain(inp[i], dout[i]);
    }
}
}  // namespace

void gelu_backward(float* dinp, const float* inp, const float* dout, long n, GradWrite write) {
    store_elementwise_grad(dinp, inp, dout, n, write, [](float x, float g) { return gelu_grad(x) * g; });
}

void gelu_erf_forward(float* out, const float* inp, long n) {
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) out[i] = gelu_erf(inp[i]);
}

void gelu_erf_backward(float* dinp, const float* inp, const float* dout, long n, GradWrite write) {
    store_elementwise_grad(dinp, inp, dout, n, write, [](float x, float g) { return gelu_erf_grad(x) * g; });
}

void relu_forward(float* out, const float* inp, long n) {
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_backward(float* dinp, const float* inp, const float* dout, long n, GradWrite write) {
    store_elementwise_grad(dinp, inp, dout, n, write, [](float x, float g) { return x > 0.0f ? g : 0.0f; });
}

void glu_forward(float* out, const float* gate_up, int N, int F, GateActivation act) {
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
        const float* gate = gate_up + static_cast<long>(n) * 2 * F;
        const float* up = gate + F;
        float* o = out + static_cast<long>(n) * F;
        if (act == GateActivation::silu) {
            #pragma omp simd
            for (int f = 0; f < F; ++f) o[f] = gate[f] * sigmoid(gate[f]) * up[f];
        } else {
            #pragma omp simd
            for (int f = 0; f < F; ++f) o[f] = gelu(gate[f]) * up[f];
        }
    }
}

void glu_backward(float* dgate_up, const float* gate_up, const float* dout, int N, int F, GateActivation act,
                  GradWrite write) {
    // in the forward pass this was: out = act(gate) * up
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
        const float* gate = gate_up + static_cast<long>(n) * 2 * F;
        const float* up = gate + F;
        const float* g = dout + static_cast<long>(n) * F;
        float* dgate = dgate_up + static_cast<long>(n) * 2 * F;
        float* dup = dgate + F;
        if (write == GradWrite::overwrite) std::fill(dgate, dgate + 2L * F, 0.0f);
        if (act == GateActivation::silu) {
            #pragma omp simd
            for (int f = 0; f < F; ++f) {
                float s = sigmoid(gate[f]);
                float silu = gate[f] * s;
                dgate[f] += g[f] * up[f] * (s + silu * (1.0f - s));
                dup[f] += g[f] * silu;
            }
        } else {
            #pragma omp simd
            for (int f = 0; f < F; ++f) {
                dgate[f] += g[f] * up[f] * gelu_grad(gate[f]);
                dup[f] += g[f] * gelu(gate[f]);
            }
        }
    }
}

void softcap_forward(float* x, long n, float cap) {
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

void softcap_backward(float* dx, const float* y, long n, float cap) {
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) {
        const float t = y[i] / cap;  // tanh(x / cap)
        dx[i] *= 1.0f - t * t;
    }
}

void clamped_swiglu_forward(float* out, const float* gate_up, int N, int F, float limit, float alpha) {
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
        const float* gate = gate_up + static_cast<long>(n) * 2 * F;
        const float* up = gate + F;
        float* o = out + static_cast<long>(n) * F;
        #pragma omp simd
        for (int f = 0; f < F; ++f) {
            const float g = gate[f] < limit ? gate[f] : limit;
            const float u = up[f] < -limit ? -limit : up[f] > limit ? limit : up[f];
            o[f] = g * sigmoid(alpha * g) * (u + 1.0f);
        }
    }
}

void add_forward(float* out, const float* a, const float* b, long n) {
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void accumulate(float* dst, const float* src, long n) {
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) dst[i] += src[i];
}

}  // namespace sinklab
