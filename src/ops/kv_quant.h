#pragma once
// KV-cache quantization in KIVI's layout (Liu et al. 2024, "KIVI: A Tuning-Free Asymmetric 2bit
// Quantization for KV Cache", jy-yuan/KIVI): keys per channel, values per token, both asymmetric
// with a minimum and a step per group and codes 0 .. 2^b - 1, in groups of kKvGroup = 32:
// - keys: a group is 32 consecutive tokens of one channel (keys have outlier channels, so each
//   channel gets its own range), so a key is quantized when its group of 32 tokens is complete;
// - values: a group is 32 consecutive channels of one token.
// x = min + code * step, step = (max - min) / (2^b - 1), code = round_half_even((x - min) / step)
// clamped to the range; a group whose values are all equal has step 0 and codes 0.
// int8 stores a code per byte, int4 two per byte (the lower nibble first). The minima and steps are
// float32. Per channel and token: int8 keys 1 + 8/32 bytes, int4 0.5 + 8/32 (values the same),
// against 4 for float32.
#include <cstddef>
#include <cstdint>
#include <string>

namespace sinklab {

enum class KvPrecision { f32, int8, int4 };
KvPrecision parse_kv_precision(const std::string& text, const std::string& flag = "--kv");
std::string to_string(KvPrecision precision);
int kv_bits(KvPrecision precision);  // 32, 8, 4

inline constexpr int kKvGroup = 32;

// Bytes of `channels` codes (channels even for int4).
inline size_t kv_code_bytes(long channels, int bits) { return static_cast<size_t>(channels) * bits / 8; }

// Keys of one group: `tokens` rows (kKvGroup, or the ones a cache quantizes together) of `width`
// channels, row t at keys + t * stride.
// mins, steps (width) receive each channel's range; codes (tokens rows of kv_code_bytes(width),
// row t at codes + t * code_stride) the codes.
void quantize_key_group(uint8_t* codes, long code_stride, float* mins, float* steps, const float* keys, long stride,
                        int tokens, int width, int bits);
// Channels [first, first + count) of one key row (first and count even for int4).
void dequantize_key_row(float* out, const uint8_t* codes, const float* mins, const float* steps, int first, int count,
                        int bits);

// One value row of `width` channels: mins, steps (ceil(width / kKvGroup)) per group of 32 channels.
void quantize_value_row(uint8_t* codes, float* mins, float* steps, const float* values, int width, int bits);
// Channels [first, first + count) of one value row.
void dequantize_value_row(float* out, const uint8_t* codes, const float* mins, const float* steps, int first, int count,
                          int bits);

}  // namespace sinklab
