#include "tokenizer/added_tokens.h"

#include <algorithm>

#include <unicode/uchar.h>

#include "tokenizer/utf8.h"

namespace sinklab {
namespace {

// Rust regex \w, which Hugging Face uses for single_word: Alphabetic, marks, decimal digits,
// connector punctuation and join controls.
bool is_word_character(int32_t code_point) {
    if (code_point < 0) return false;
    return u_hasBinaryProperty(code_point, UCHAR_ALPHABETIC) ||
           (U_GET_GC_MASK(code_point) & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0 ||
           u_hasBinaryProperty(code_point, UCHAR_JOIN_CONTROL);
}

// Rust regex \s (Unicode White_Space), which Hugging Face uses for lstrip/rstrip.
bool is_white_space(int32_t code_point) { return code_point >= 0 && u_isUWhiteSpace(code_point); }

// Where the whitespace run ending at `end` begins.
size_t whitespace_start_before(std::string_view text, size_t end) {
    while (end > 0) {
        const int32_t code_point = previous_code_point(text, end);
        if (!is_white_space(code_point)) break;
        end -= utf8_length(code_point);
    }
    return end;
}

// Where the whitespace run starting at `begin` ends.
size_t whitespace_end_after(std::string_view text, size_t begin) {
    while (begin < text.size()) {
        size_t next = begin;
        if (!is_white_space(next_code_point(text, next))) break;
        begin = next;
    }
    return begin;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) {
    for (const AddedToken& token : tokens) {
        if (token.content.empty()) continue;
        by_first_byte_[static_cast<unsigned char>(token.content[0])].push_back(token);
    }
    for (auto& bucket : by_first_byte_) {
        std::stable_sort(bucket.begin(), bucket.end(), [](const AddedToken& a, const AddedToken& b) {
            return a.content.size() > b.content.size();
        });
    }
}

std::vector<AddedTokenMatcher::Segment> AddedTokenMatcher::split(std::string_view text,
                                                                 bool include_special) const {
    std::vector<Segment> segments;
    size_t segment_start = 0;  // end of the last added-token segment
    size_t position = 0;
    while (position < text.size()) {
        const AddedToken* match = nullptr;
        for (const AddedToken& token : by_first_byte_[static_cast<unsigned char>(text[position])]) {
            if ((include_special || !token.special) && text.substr(position).starts_with(token.content)) {
                match = &token;
                break;
            }
        }
        if (!match) {
            ++position;
            continue;
        }
        size_t begin = position;
        size_t end = position + match->content.size();
        if (match->single_word && (is_word_character(previous_code_point(text, begin)) ||
                                   is_word_character(code_point_at(text, end)))) {
            position = end;  // Hugging Face resumes its search after a rejected match
            continue;
        }
        if (match->lstrip) begin = std::max(whitespace_start_before(text, begin), segment_start);
        if (match->rstrip) end = whitespace_end_after(text, end);
        if (begin > segment_start) segments.push_back({text.substr(segment_start, begin - segment_start), {}});
        segments.push_back({text.substr(begin, end - begin), match->id});
        segment_start = position = end;
    }
    if (segment_start < text.size()) segments.push_back({text.substr(segment_start), {}});
    return segments;
}

}  // namespace sinklab
