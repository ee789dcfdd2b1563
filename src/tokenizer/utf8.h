#pragma once
// Minimal UTF-8 stepping for the tokenizers. Ill-formed input is allowed everywhere (tokenizers
// must accept any bytes): an ill-formed byte decodes as -1 and is stepped over alone.
#include <cstdint>
#include <string_view>

namespace sinklab {

// Decodes the code point starting at `offset` and advances `offset` past it.
inline int32_t next_code_point(std::string_view text, size_t& offset) {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = byte(offset);
    int length;
    int32_t code_point;
    int32_t smallest;  // rejects overlong encodings
    if (lead < 0x80) {
        ++offset;
        return lead;
    } else if ((lead & 0xE0) == 0xC0) {
        length = 2, code_point = lead & 0x1F, smallest = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3, code_point = lead & 0x0F, smallest = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4, code_point = lead & 0x07, smallest = 0x10000;
    } else {
        ++offset;
        return -1;
    }
    if (offset + length > text.size()) {
        ++offset;
        return -1;
    }
    for (int i = 1; i < length; ++i) {
        const unsigned char continuation = byte(offset + i);
        if ((continuation & 0xC0) != 0x80) {
            ++offset;
            return -1;
        }
        code_point = (code_point << 6) | (continuation & 0x3F);
    }
    if (code_point < smallest || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
        ++offset;
        return -1;
    }
    offset += length;
    return code_point;
}

// The code point starting at `offset` (-1 when ill-formed or at the end).
inline int32_t code_point_at(std::string_view text, size_t offset) {
    return offset < text.size() ? next_code_point(text, offset) : -1;
}

// How many bytes UTF-8 spends on a (valid) code point.
inline size_t utf8_length(int32_t code_point) {
    return code_point < 0x80 ? 1 : code_point < 0x800 ? 2 : code_point < 0x10000 ? 3 : 4;
}

// The code point that ends just before `end` (-1 when ill-formed or when end is 0).
inline int32_t previous_code_point(std::string_view text, size_t end) {
    for (size_t length = 1; length <= 4 && length <= end; ++length) {
        const unsigned char byte = static_cast<unsigned char>(text[end - length]);
        if ((byte & 0xC0) == 0x80) continue;  // a continuation byte: keep walking back
        size_t offset = end - length;
        const int32_t code_point = next_code_point(text, offset);
        return offset == end ? code_point : -1;
    }
    return -1;
}

}  // namespace sinklab
