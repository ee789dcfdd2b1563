#pragma once
// Added and special tokens ("<|endoftext|>", "<|im_start|>") are cut out of the text before
// pre-tokenization, as Hugging Face's AddedVocabulary and tiktoken's special-token regex do.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sinklab {

// One entry of tokenizer.json "added_tokens" (the flags mean what they mean there).
struct AddedToken {
    std::string content;
    int32_t id = 0;
    bool special = true;       // special tokens are plain text for encode_ordinary
    bool lstrip = false;       // the match swallows the whitespace before it
    bool rstrip = false;       // ... and after it
    bool single_word = false;  // matches only between non-word characters
    bool normalized = false;   // matched in the normalized text rather than the raw text
};

class AddedTokenMatcher {
public:
    explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

    struct Segment {
        std::string_view text;
        std::optional<int32_t> id;  // set when `text` is an added token (with any stripped spaces)
    };
    // Splits `text` at the leftmost-longest matches; with include_special false, special tokens are
    // left in the text. The segments cover the text in order.
    std::vector<Segment> split(std::string_view text, bool include_special) const;

private:
    std::array<std::vector<AddedToken>, 256> by_first_byte_;  // longest first
};

}  // namespace sinklab
