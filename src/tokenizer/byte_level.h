#pragma once
// GPT-2's byte-level alphabet: every byte is spelled as one printable Unicode character in
// vocab.json, merges.txt and tokenizer.json (space is "Ġ", newline "Ċ"). sinklab converts token
// spellings back to raw bytes once at load time and runs BPE on bytes.
#include <optional>
#include <string>
#include <string_view>

namespace sinklab {

// The raw bytes a byte-level spelling stands for; nullopt when a character is outside the
// alphabet (such tokens, e.g. some added tokens, stand for their literal UTF-8 text).
std::optional<std::string> byte_level_to_bytes(std::string_view spelling);

}  // namespace sinklab
