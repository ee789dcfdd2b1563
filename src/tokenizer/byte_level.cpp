#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace sinklab {
namespace {

// GPT-2 encoder.py bytes_to_unicode(): printable Latin-1 bytes keep their code point; the other 68
// bytes (controls, space, 0x7F-0xA0, 0xAD) take code points 256, 257, ... in byte order.
std::array<int, 256> make_byte_to_code_point() {
    std::array<int, 256> table{};
    auto printable = [](int b) {
        return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next_extra = 256;
    for (int b = 0; b < 256; ++b) table[b] = printable(b) ? b : next_extra++;
    return table;
}

// The inverse: code point (all below 324) -> byte, -1 outside the alphabet.
std::array<int, 324> make_code_point_to_byte() {
    std::array<int, 324> inverse;
    inverse.fill(-1);
    const std::array<int, 256> forward = make_byte_to_code_point();
    for (int b = 0; b < 256; ++b) inverse[forward[b]] = b;
    return inverse;
}

}  // namespace

std::optional<std::string> byte_level_to_bytes(std::string_view spelling) {
    static const std::array<int, 324> code_point_to_byte = make_code_point_to_byte();
    std::string bytes;
    bytes.reserve(spelling.size());
    size_t offset = 0;
    while (offset < spelling.size()) {
        const int32_t code_point = next_code_point(spelling, offset);
        if (code_point < 0 || code_point >= static_cast<int32_t>(code_point_to_byte.size()) ||
            code_point_to_byte[code_point] < 0) {
            return std::nullopt;
        }
        bytes.push_back(static_cast<char>(code_point_to_byte[code_point]));
    }
    return bytes;
}

}  // namespace sinklab
