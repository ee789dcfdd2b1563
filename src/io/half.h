#pragma once
// IEEE binary16 (F16) and bfloat16 (BF16) <-> float32 conversions, done on the bit patterns so the
// result never depends on the CPU, the compiler or the floating-point rounding mode.
// Widening (16 -> 32 bits) is exact for every value, subnormals, infinities and NaNs included.
// Narrowing (32 -> 16 bits) rounds to nearest, ties to even, as PyTorch's `.to(torch.float16)` and
// `.to(torch.bfloat16)` do; NaNs stay NaNs (made quiet), overflow becomes infinity.
#include <bit>
#include <cstdint>

namespace sinklab {

inline float bf16_to_f32(uint16_t bits) {
    // bfloat16 is the top half of a float32.
    return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

inline uint16_t f32_to_bf16(float value) {
    uint32_t bits = std::bit_cast<uint32_t>(value);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
        // NaN: truncating could clear every payload bit left and turn it into infinity, so force
        // the quiet bit.
        return static_cast<uint16_t>((bits >> 16) | 0x0040u);
    }
    // Round to nearest even on the 16 dropped bits; a carry out of the mantissa correctly bumps the
    // exponent, up to infinity for values beyond the largest bfloat16.
    uint32_t lsb = (bits >> 16) & 1u;
    return static_cast<uint16_t>((bits + 0x7FFFu + lsb) >> 16);
}

inline float f16_to_f32(uint16_t bits) {
    uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
    uint32_t exponent = (bits >> 10) & 0x1Fu;
    uint32_t mantissa = bits & 0x3FFu;
    if (exponent == 0x1F) {  // infinity or NaN: keep the payload
        return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
    }
    if (exponent == 0) {
        // Zero or subnormal: mantissa * 2^-24, exact in float32 (a 10-bit integer times a power of 2).
        float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    // Normal: rebias the exponent from 15 to 127.
    return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

inline uint16_t f32_to_f16(float value) {
    uint32_t bits = std::bit_cast<uint32_t>(value);
    auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    uint32_t magnitude = bits & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u) {  // NaN: quiet, keep the top payload bits
        return static_cast<uint16_t>(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu));
    }
    // 65520 (0x477FF000) is halfway between the largest F16 (65504) and 2^16; ties go to the even
    // neighbour, 2^16, which overflows. Everything from there up (infinity included) is infinity.
    if (magnitude >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);
    if (magnitude >= 0x38800000u) {
        // Normal F16 (>= 2^-14): round to nearest even on the 13 dropped mantissa bits, then rebias the
        // exponent from 127 to 15 (subtract 112 << 23). A rounding carry moves into the exponent.
        uint32_t lsb = (magnitude >> 13) & 1u;
        uint32_t rounded = magnitude + 0x0FFFu + lsb;
        return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
    }
    // Subnormal F16: the result is round(|value| / 2^-24). Values up to 2^-25 (half the smallest
    // subnormal, a tie that goes to the even 0) become zero.
    if (magnitude <= 0x33000000u) return sign;
    uint32_t exponent = magnitude >> 23;                         // 102..112 here
    uint32_t significand = (magnitude & 0x7FFFFFu) | 0x800000u;  // with the implicit leading 1
    uint32_t shift = 126u - exponent;                            // |value| / 2^-24 = significand >> shift
    uint32_t quotient = significand >> shift;
    uint32_t remainder = significand & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (remainder > half || (remainder == half && (quotient & 1u))) ++quotient;
    // A quotient of 1024 is exactly the bit pattern of the smallest normal, 2^-14.
    return static_cast<uint16_t>(sign | quotient);
}

}  // namespace sinklab
