// F16/BF16 conversions against independent references: the CPU's F16C conversions (IEEE binary16
// with round-to-nearest-even), or the compiler's _Float16 where the build does not target F16C,
// and hand-worked bfloat16 cases.
// PyTorch's own rounding is checked in test_safetensors.cpp against the llama_bf16/llama_f16
// fixtures.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "core/rng.h"
#include "io/half.h"

namespace sinklab {
namespace {

// The reference conversions. F16C where the build targets it (-march=native on x86): clang 14 has
// no _Float16 on x86, and GCC compiles its _Float16 conversions to these same instructions.
#if defined(__F16C__)
float reference_widen(uint16_t half) { return _cvtsh_ss(half); }
uint16_t reference_narrow(float value) { return _cvtss_sh(value, _MM_FROUND_TO_NEAREST_INT); }
#else
float reference_widen(uint16_t half) { return static_cast<float>(std::bit_cast<_Float16>(half)); }
uint16_t reference_narrow(float value) { return std::bit_cast<uint16_t>(static_cast<_Float16>(value)); }
#endif

uint32_t bits_of(float value) { return std::bit_cast<uint32_t>(value); }
float float_of(uint32_t bits) { return std::bit_cast<float>(bits); }

TEST(F16, EveryHalfWidensLikeTheCompiler) {
    for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
        const auto half = static_cast<uint16_t>(bits);
        const float expected = reference_widen(half);
        const float actual = f16_to_f32(half);
        if (std::isnan(expected)) {
            ASSERT_TRUE(std::isnan(actual)) << std::hex << bits;
            ASSERT_EQ(std::signbit(actual), std::signbit(expected)) << std::hex << bits;
        } else {
            ASSERT_EQ(bits_of(actual), bits_of(expected)) << std::hex << bits;
        }
    }
}

TEST(F16, EveryHalfSurvivesARoundTrip) {
    for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
        const auto half = static_cast<uint16_t>(bits);
        const bool is_nan = (half & 0x7C00) == 0x7C00 && (half & 0x03FF) != 0;
        if (is_nan) {
            EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f16_to_f32(half)))));
        } else {
            ASSERT_EQ(f32_to_f16(f16_to_f32(half)), half) << std::hex << bits;
        }
    }
}

// Compares f32_to_f16 with the compiler's conversion on one float.
void expect_narrows_like_compiler(float value) {
    const uint16_t expected = reference_narrow(value);
    const uint16_t actual = f32_to_f16(value);
    if (std::isnan(value)) {
        EXPECT_EQ(actual & 0x7C00, 0x7C00) << value;
        EXPECT_NE(actual & 0x03FF, 0) << value;
        EXPECT_EQ(actual & 0x8000, expected & 0x8000) << value;
    } else {
        ASSERT_EQ(actual, expected) << std::hex << bits_of(value) << " = " << value;
    }
}

TEST(F16, NarrowingRoundsToNearestEvenLikeTheCompiler) {
    // Every float whose magnitude sits near an F16 boundary: ties, subnormals, overflow, specials.
    const std::vector<float> edges = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.99f, 65520.0f, 65536.0f, 1e9f,
                                      0x1p-14f, 0x1p-24f, 0x1p-25f, 0x1.000002p-25f, 0x1.8p-24f, 0x1.8p-23f,
                                      1.0f + 0x1p-11f, 1.0f + 0x1p-11f + 0x1p-23f, 1.0f + 3 * 0x1p-11f,
                                      std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min(),
                                      std::numeric_limits<float>::max(), std::numeric_limits<float>::quiet_NaN(),
                                      float_of(0x7F800001u), float_of(0xFFC00000u)};
    for (float edge : edges) {
        expect_narrows_like_compiler(edge);
        expect_narrows_like_compiler(-edge);
    }
    // Every float within a few ulps of each F16 value and of each midpoint between neighbours.
    for (uint32_t half = 0; half < 0x7C00; ++half) {
        const float value = f16_to_f32(static_cast<uint16_t>(half));
        const float next = f16_to_f32(static_cast<uint16_t>(half + 1));
        const float midpoint = static_cast<float>((static_cast<double>(value) + next) / 2);
        for (float center : {value, midpoint})
            for (int step = -2; step <= 2; ++step) {
                const uint32_t bits = bits_of(center);
                if (step < 0 && bits < static_cast<uint32_t>(-step)) continue;
                expect_narrows_like_compiler(float_of(bits + step));
            }
    }
    // And a broad sample of all float bit patterns.
    Rng rng(1234);
    for (int i = 0; i < 2'000'000; ++i) expect_narrows_like_compiler(float_of(static_cast<uint32_t>(rng.next_u64())));
}

TEST(BF16, WideningIsTheTopHalfOfAFloat) {
    EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
    EXPECT_EQ(bf16_to_f32(0xC000), -2.0f);
    EXPECT_EQ(bf16_to_f32(0x0001), 0x1p-133f);  // smallest subnormal
    EXPECT_EQ(bf16_to_f32(0x7F80), std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(bf16_to_f32(0x7FC0)));
}

TEST(BF16, EveryBfloatSurvivesARoundTrip) {
    for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
        const auto bf = static_cast<uint16_t>(bits);
        const bool is_nan = (bf & 0x7F80) == 0x7F80 && (bf & 0x007F) != 0;
        if (is_nan) {
            EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(bf16_to_f32(bf)))));
        } else {
            ASSERT_EQ(f32_to_bf16(bf16_to_f32(bf)), bf) << std::hex << bits;
        }
    }
}

TEST(BF16, NarrowingRoundsToNearestEven) {
    // bfloat16 keeps 7 mantissa bits: the neighbours of 1 are 1 - 2^-8 and 1 + 2^-7.
    EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3F80);                // tie, 1 is even: down
    EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f + 0x1p-23f), 0x3F81);     // just above the tie: up
    EXPECT_EQ(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);            // tie, 1 + 2^-6 is even: up
    EXPECT_EQ(f32_to_bf16(-(1.0f + 0x1p-8f + 0x1p-23f)), 0xBF81);  // symmetric in the sign
    EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // overflows to infinity
    EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
    EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::denorm_min()), 0x0000);  // ties to even zero
    // A NaN whose payload lives only in the dropped bits must not become infinity.
    const uint16_t nan = f32_to_bf16(float_of(0x7F800001u));
    EXPECT_TRUE(std::isnan(bf16_to_f32(nan)));
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(float_of(0xFF800001u)))));
}

TEST(BF16, NarrowingIsWithinHalfAnUlp) {
    Rng rng(99);
    for (int i = 0; i < 1'000'000; ++i) {
        const float value = static_cast<float>(rng.normal() * 100.0);
        const float rounded = bf16_to_f32(f32_to_bf16(value));
        EXPECT_LE(std::fabs(rounded - value), std::ldexp(std::fabs(value), -8)) << value;
    }
}

}  // namespace
}  // namespace sinklab
