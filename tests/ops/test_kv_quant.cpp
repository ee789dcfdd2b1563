// KV quantization (KIVI's layout): int8 and int4 codes, minima and steps equal a NumPy reference of
// the same layout exactly (tests/oracle/kv_quant_reference.py); dequantized values are within half
// a step of the input; edge cases (one token, a constant group, a width that is not a multiple of
// the group, int4's nibble order).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "../support/run_command.h"
#include "core/error.h"
#include "core/rng.h"
#include "ops/kv_quant.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;

struct Quantized {
    std::vector<uint8_t> key_codes;    // (tokens, code bytes)
    std::vector<float> key_mins, key_steps;  // (width)
    std::vector<uint8_t> value_codes;  // (tokens, code bytes)
    std::vector<float> value_mins, value_steps;  // (tokens, groups)
};

Quantized quantize(const std::vector<float>& keys, const std::vector<float>& values, int tokens, int width, int bits) {
    const size_t row = kv_code_bytes(width, bits);
    const int groups = (width + kKvGroup - 1) / kKvGroup;
    Quantized q;
    q.key_codes.assign(tokens * row, 0xAB);  // garbage the codes must overwrite
    q.key_mins.resize(width);
    q.key_steps.resize(width);
    quantize_key_group(q.key_codes.data(), static_cast<long>(row), q.key_mins.data(), q.key_steps.data(), keys.data(),
                       width, tokens, width, bits);
    q.value_codes.assign(tokens * row, 0xCD);
    q.value_mins.resize(static_cast<size_t>(tokens) * groups);
    q.value_steps.resize(static_cast<size_t>(tokens) * groups);
    for (int t = 0; t < tokens; ++t)
        quantize_value_row(q.value_codes.data() + t * row, q.value_mins.data() + t * groups,
                           q.value_steps.data() + t * groups, values.data() + static_cast<size_t>(t) * width, width, bits);
    return q;
}

// Keys with outlier channels (KIVI's reason for per-channel keys), values with outlier tokens.
void make_data(int tokens, int width, uint64_t seed, std::vector<float>& keys, std::vector<float>& values) {
    Rng rng(seed);
    keys.resize(static_cast<size_t>(tokens) * width);
    values.resize(keys.size());
    for (int t = 0; t < tokens; ++t)
        for (int c = 0; c < width; ++c) {
            keys[t * width + c] = static_cast<float>(rng.normal()) * (c % 7 == 3 ? 20.0f : 1.0f);
            values[t * width + c] = static_cast<float>(rng.normal()) * (t % 5 == 1 ? 8.0f : 1.0f);
        }
    if (tokens > 1 && width > 5) keys[5] = keys[width + 5] = 0.25f;  // equal keys in one channel
}

template <typename T>
std::vector<T> read_values(std::ifstream& in, size_t n) {
    std::vector<T> v(n);
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(T)));
    return v;
}

class KvQuantReference : public ::testing::TestWithParam<std::tuple<int, int, int>> {};

TEST_P(KvQuantReference, CodesAndRangesEqualNumPy) {
    const auto [bits, tokens, width] = GetParam();
    std::vector<float> keys, values;
    make_data(tokens, width, 1000 + bits + tokens + width, keys, values);
    const Quantized q = quantize(keys, values, tokens, width, bits);

    const fs::path dir = fs::path(SINKLAB_BINARY_DIR) / "oracle_scratch" /
                         fmt::format("kv_quant_{}_{}_{}_{}", bits, tokens, width, ::getpid());
    fs::create_directories(dir);
    std::ofstream(dir / "case.json") << nlohmann::json{{"bits", bits}, {"tokens", tokens}, {"width", width}}.dump();
    {
        std::ofstream out(dir / "input.bin", std::ios::binary);
        out.write(reinterpret_cast<const char*>(keys.data()), static_cast<std::streamsize>(keys.size() * 4));
        out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * 4));
    }
    const auto r = test::run_command(std::string(test::kPython) + " " + SINKLAB_SOURCE_DIR +
                                     "/tests/oracle/kv_quant_reference.py " + dir.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::ifstream in(dir / "reference.bin", std::ios::binary);
    const size_t row = kv_code_bytes(width, bits);
    const int groups = (width + kKvGroup - 1) / kKvGroup;
    EXPECT_EQ(read_values<uint8_t>(in, tokens * row), q.key_codes);
    EXPECT_EQ(read_values<float>(in, width), q.key_mins);
    EXPECT_EQ(read_values<float>(in, width), q.key_steps);
    for (int t = 0; t < tokens; ++t) {
        EXPECT_EQ(read_values<uint8_t>(in, row), std::vector<uint8_t>(q.value_codes.begin() + t * row,
                                                                     q.value_codes.begin() + (t + 1) * row))
            << "value row " << t;
        EXPECT_EQ(read_values<float>(in, groups), std::vector<float>(q.value_mins.begin() + t * groups,
                                                                    q.value_mins.begin() + (t + 1) * groups));
        EXPECT_EQ(read_values<float>(in, groups), std::vector<float>(q.value_steps.begin() + t * groups,
                                                                    q.value_steps.begin() + (t + 1) * groups));
    }
    EXPECT_TRUE(in.good());
    in.peek();
    EXPECT_TRUE(in.eof()) << "the reference wrote more than expected";
    fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Layouts, KvQuantReference,
                         ::testing::Values(std::make_tuple(8, 32, 64), std::make_tuple(4, 32, 64),
                                           std::make_tuple(8, 7, 80), std::make_tuple(4, 1, 48),
                                           std::make_tuple(4, 32, 256)),
                         [](const auto& info) {
                             return fmt::format("int{}_{}tokens_{}channels", std::get<0>(info.param),
                                                std::get<1>(info.param), std::get<2>(info.param));
                         });

TEST(KvQuant, RoundTripsWithinHalfAStep) {
    for (int bits : {8, 4}) {
        const int tokens = 32, width = 96;
        std::vector<float> keys, values;
        make_data(tokens, width, 5, keys, values);
        const Quantized q = quantize(keys, values, tokens, width, bits);
        const size_t row = kv_code_bytes(width, bits);
        const int groups = width / kKvGroup;
        std::vector<float> out(width);
        for (int t = 0; t < tokens; ++t) {
            dequantize_key_row(out.data(), q.key_codes.data() + t * row, q.key_mins.data(), q.key_steps.data(), 0, width,
                               bits);
            for (int c = 0; c < width; ++c)
                EXPECT_LE(std::fabs(out[c] - keys[t * width + c]), 0.5f * q.key_steps[c] * (1 + 1e-5f) + 1e-6f);
            dequantize_value_row(out.data(), q.value_codes.data() + t * row, q.value_mins.data() + t * groups,
                                 q.value_steps.data() + t * groups, 0, width, bits);
            for (int c = 0; c < width; ++c)
                EXPECT_LE(std::fabs(out[c] - values[t * width + c]),
                          0.5f * q.value_steps[t * groups + c / kKvGroup] * (1 + 1e-5f) + 1e-6f);
            // a slice (one head's channels) reads the same numbers as the whole row
            std::vector<float> slice(32);
            dequantize_value_row(slice.data(), q.value_codes.data() + t * row, q.value_mins.data() + t * groups,
                                 q.value_steps.data() + t * groups, 32, 32, bits);
            EXPECT_EQ(std::memcmp(slice.data(), out.data() + 32, 32 * sizeof(float)), 0);
        }
    }
}

TEST(KvQuant, ConstantGroupsAndNibbleOrder) {
    // a constant channel: step 0, codes 0, the value back exactly
    std::vector<float> keys(4 * 2, 1.5f);
    keys[1] = -1.0f;
    keys[7] = 2.0f;  // channel 1 spans [-1, 2]: -1 is code 0, 2 is code 15
    std::vector<uint8_t> codes(4, 0xFF);
    float mins[2], steps[2];
    quantize_key_group(codes.data(), 1, mins, steps, keys.data(), 2, 4, 2, 4);
    EXPECT_EQ(steps[0], 0.0f);
    EXPECT_EQ(mins[0], 1.5f);
    EXPECT_EQ(codes[0], 0x00);  // token 0: channel 0 code 0 (low nibble), channel 1 code 0 (high nibble)
    EXPECT_EQ(codes[3], 0xF0);  // token 3: channel 1 is the maximum
    float out[2];
    dequantize_key_row(out, codes.data() + 3, mins, steps, 0, 2, 4);
    EXPECT_EQ(out[0], 1.5f);
    EXPECT_FLOAT_EQ(out[1], 2.0f);
    EXPECT_EQ(kv_code_bytes(64, 4), 32u);
    EXPECT_EQ(kv_code_bytes(64, 8), 64u);
    EXPECT_EQ(parse_kv_precision("int4"), KvPrecision::int4);
    EXPECT_THROW(parse_kv_precision("int3"), Error);
}

}  // namespace
}  // namespace sinklab
