#pragma once
// Pre-tokenization: cutting text into the pieces BPE runs on, with the same regexes as the
// reference tokenizers, compiled by PCRE2 with Unicode properties (UTF + UCP), so \p{L}, \s and
// (?i:...) mean what they mean in tiktoken and Hugging Face tokenizers.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pcre2_real_code_8;

namespace sinklab {

// GPT-2 encoder.py (also tiktoken's gpt2, r50k_base, p50k_base and the ByteLevel pre-tokenizer).
inline constexpr std::string_view kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// tiktoken cl100k_base (GPT-4); Llama 3 uses the same pattern.
inline constexpr std::string_view kCl100kSplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// tiktoken o200k_base (GPT-4o): case-aware words so that "camelCase" splits before the capital.
inline constexpr std::string_view kO200kSplitPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// A compiled PCRE2 pattern. Ill-formed UTF-8 in the text is allowed and never matches.
class RegexSplitter {
public:
    // `origin` names where the pattern came from, for the error when it does not compile.
    RegexSplitter(std::string_view pattern, bool literal, const std::string& origin);
    ~RegexSplitter();
    RegexSplitter(const RegexSplitter&) = delete;
    RegexSplitter& operator=(const RegexSplitter&) = delete;

    // The byte ranges [begin, end) of the successive non-empty matches, left to right.
    std::vector<std::pair<size_t, size_t>> matches(std::string_view text) const;

private:
    pcre2_real_code_8* code_;
    std::string origin_;
};

// Cuts text into pieces: the matches of `splitter` and the text between them (which the
// reference patterns leave only around ill-formed UTF-8).
std::vector<std::string_view> split_isolated(const RegexSplitter& splitter, std::string_view text);

// Hugging Face's SplitDelimiterBehavior: what happens to the matches ("delimiters").
enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

// A chain of Hugging Face pre-tokenizers (Split, ByteLevel, Digits), each applied to every piece
// the previous ones produced.
class PreTokenizer {
public:
    void add_split(std::string_view pattern, bool literal, SplitBehavior behavior, bool invert,
                   const std::string& origin);
    // ByteLevel: optionally prefix each piece with a space, then split with GPT-2's pattern when
    // use_regex. (The byte-to-character mapping itself happens in the BPE vocabulary.)
    void add_byte_level(bool add_prefix_space, bool use_regex);

    std::vector<std::string> split(std::string_view text) const;

private:
    struct Step {
        bool add_prefix_space = false;
        std::shared_ptr<const RegexSplitter> splitter;  // null: no split
        SplitBehavior behavior = SplitBehavior::isolated;
        bool invert = false;  // the matches are the content and the text between them the delimiters
    };
    std::vector<Step> steps_;
};

}  // namespace sinklab
