#pragma once
// exp, tanh and sigmoid that the compiler vectorises inside `omp simd` loops. glibc's expf and
// tanhf are scalar calls unless the whole program is built with -ffast-math (libmvec's SIMD
// variants are only declared then); scalar tanhf was a quarter of a training step in GELU alone.
// Accuracy: exp within 2 ulp of expf over the float range (tests/ops/test_vector_math.cpp), tanh
// and sigmoid within 2e-7 absolute, which is what GELU, SiLU and softmax need.
#include <bit>
#include <cmath>
#include <cstdint>

namespace sinklab {

// Cody-Waite reduction x = n ln2 + r, |r| <= ln2 / 2, then Cephes' degree-6 polynomial for e^r and
// 2^n by building the exponent bits. Inputs are clamped to the range whose result is a normal float
// (below it: ~1e-38 instead of a denormal or 0, harmless for every caller), so no branch is needed.
inline float exp_fast(float x) {
    // Ternaries, not fmin/fmax, whose NaN rules keep them library calls.
    x = x < -87.33654f ? -87.33654f : x;
    x = x > 88.72283f ? 88.72283f : x;
    // n = round(x / ln2) by the 1.5 * 2^23 trick: std::floor would not vectorise under the default
    // -ftrapping-math.
    constexpr float kRound = 12582912.0f;
    const float n = (x * 1.44269504088896341f + kRound) - kRound;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    // n lies in [-126, 128]: 2^128 overflows the exponent, so scale twice by 2^(n/2). A NaN x (a
    // diverged run) passes the clamps above and makes n NaN, whose conversion to int is undefined
    // (clang's UBSan reports it): n 0 then, and p, NaN already, makes the result NaN.
    const int32_t whole = n == n ? static_cast<int32_t>(n) : 0;
    const int32_t half = whole >> 1;
    const float scale_a = std::bit_cast<float>((half + 127) << 23);
    const float scale_b = std::bit_cast<float>((whole - half + 127) << 23);
    return p * scale_a * scale_b;
}

// tanh(x) = sign(x) (1 - 2 / (e^{2|x|} + 1)); absolute error ~1e-7 (relative error grows near 0,
// where callers add it to 1).
inline float tanh_fast(float x) {
    const float e = exp_fast(2.0f * std::fabs(x));
    const float t = 1.0f - 2.0f / (e + 1.0f);
    return std::copysign(t, x);
}

inline float sigmoid_fast(float x) { return 1.0f / (1.0f + exp_fast(-x)); }

}  // namespace sinklab
