#include "ops/kv_quant.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace sinklab {

KvPrecision parse_kv_precision(const std::string& text, const std::string& flag) {
    if (text == "f32") return KvPrecision::f32;
    if (text == "int8") return KvPrecision::int8;
    if (text == "int4") return KvPrecision::int4;
    fail("stream", "{} '{}': expected f32, int8 or int4", flag, text);
}

std::string to_string(KvPrecision precision) {
    return precision == KvPrecision::f32 ? "f32" : precision == KvPrecision::int8 ? "int8" : "int4";
}

int kv_bits(KvPrecision precision) {
    return precision == KvPrecision::f32 ? 32 : precision == KvPrecision::int8 ? 8 : 4;
}

namespace {

// The asymmetric step of a range: (max - min) / (2^b - 1), in float32.
float range_step(float lo, float hi, int bits) { return (hi - lo) / static_cast<float>((1 << bits) - 1); }

uint8_t code_of(float x, float lo, float step, int bits) {
    if (!(step > 0.0f)) return 0;
    const float level = std::nearbyint((x - lo) / step);  // round half to even (the default mode)
    const float top = static_cast<float>((1 << bits) - 1);
    return static_cast<uint8_t>(std::clamp(level, 0.0f, top));
}

void put_code(uint8_t* codes, int channel, uint8_t code, int bits) {
    if (bits == 8) {
        codes[channel] = code;
    } else {
        uint8_t& byte = codes[channel / 2];
        byte = channel % 2 == 0 ? static_cast<uint8_t>((byte & 0xF0) | code) : static_cast<uint8_t>((byte & 0x0F) | (code << 4));
    }
}

inline int get_code(const uint8_t* codes, int channel, int bits) {
    return bits == 8 ? codes[channel] : channel % 2 == 0 ? codes[channel / 2] & 0x0F : codes[channel / 2] >> 4;
}

}  // namespace

void quantize_key_group(uint8_t* codes, long code_stride, float* mins, float* steps, const float* keys, long stride,
                        int tokens, int width, int bits) {
    SINKLAB_ASSERT(tokens >= 1 && (bits == 8 || bits == 4) && (bits == 8 || width % 2 == 0));
    for (int c = 0; c < width; ++c) {
        float lo = keys[c], hi = keys[c];
        for (int t = 1; t < tokens; ++t) {
            lo = std::min(lo, keys[t * stride + c]);
            hi = std::max(hi, keys[t * stride + c]);
        }
        mins[c] = lo;
        steps[c] = range_step(lo, hi, bits);
    }
    for (int t = 0; t < tokens; ++t)
        for (int c = 0; c < width; ++c) put_code(codes + t * code_stride, c, code_of(keys[t * stride + c], mins[c], steps[c], bits), bits);
}

void dequantize_key_row(float* out, const uint8_t* codes, const float* mins, const float* steps, int first, int count,
                        int bits) {
    if (bits == 8) {
        #pragma omp simd
        for (int i = 0; i < count; ++i) out[i] = mins[first + i] + static_cast<float>(codes[first + i]) * steps[first + i];
        return;
    }
    for (int i = 0; i < count; ++i) {
        const int c = first + i;
        out[i] = mins[c] + static_cast<float>(get_code(codes, c, bits)) * steps[c];
    }
}

void quantize_value_row(uint8_t* codes, float* mins, float* steps, const float* values, int width, int bits) {
    SINKLAB_ASSERT((bits == 8 || bits == 4) && (bits == 8 || width % 2 == 0));
    for (int g = 0, c0 = 0; c0 < width; ++g, c0 += kKvGroup) {
        const int c1 = std::min(width, c0 + kKvGroup);
        float lo = values[c0], hi = values[c0];
        for (int c = c0 + 1; c < c1; ++c) {
            lo = std::min(lo, values[c]);
            hi = std::max(hi, values[c]);
        }
        mins[g] = lo;
        steps[g] = range_step(lo, hi, bits);
        for (int c = c0; c < c1; ++c) put_code(codes, c, code_of(values[c], lo, steps[g], bits), bits);
    }
}

void dequantize_value_row(float* out, const uint8_t* codes, const float* mins, const float* steps, int first, int count,
                          int bits) {
    for (int i = 0; i < count; ++i) {
        const int c = first + i, g = c / kKvGroup;
        out[i] = mins[g] + static_cast<float>(get_code(codes, c, bits)) * steps[g];
    }
}

}  // namespace sinklab
