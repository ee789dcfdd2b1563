#include "tokenizer/pretokenizer.h"

#include <algorithm>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace sinklab {
namespace {

std::string pcre2_message(int error_code) {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(error_code, buffer, sizeof(buffer));
    return reinterpret_cast<const char*>(buffer);
}

struct MatchDataDeleter {
    void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

// A piece of text and whether it is a delimiter of the split.
struct Span {
    size_t begin, end;
    bool delimiter;
};

// Hugging Face NormalizedString::split: the spans (covering the text) that `behavior` keeps.
std::vector<Span> apply_behavior(const std::vector<Span>& spans, SplitBehavior behavior) {
    std::vector<Span> out;
    bool previous_delimiter = false;
    switch (behavior) {
        case SplitBehavior::removed:
            for (const Span& s : spans) {
                if (!s.delimiter) out.push_back(s);
            }
            break;
        case SplitBehavior::isolated:
            return spans;
        case SplitBehavior::merged_with_previous:  // a delimiter joins the content before it
            for (const Span& s : spans) {
                if (s.delimiter && !previous_delimiter && !out.empty()) {
                    out.back().end = s.end;
                } else {
                    out.push_back(s);
                }
                previous_delimiter = s.delimiter;
            }
            break;
        case SplitBehavior::merged_with_next:  // a delimiter joins the content after it
            for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
                if (it->delimiter && !previous_delimiter && !out.empty()) {
                    out.back().begin = it->begin;
                } else {
                    out.push_back(*it);
                }
                previous_delimiter = it->delimiter;
            }
            std::reverse(out.begin(), out.end());
            break;
        case SplitBehavior::contiguous:  // runs of delimiters become one piece
            for (size_t i = 0; i < spans.size(); ++i) {
                if (i > 0 && spans[i].delimiter == previous_delimiter) {
                    out.back().end = spans[i].end;
                } else {
                    out.push_back(spans[i]);
                }
                previous_delimiter = spans[i].delimiter;
            }
            break;
    }
    return out;
}

}  // namespace

RegexSplitter::RegexSplitter(std::string_view pattern, bool literal, const std::string& origin)
    : origin_(origin) {
    // PCRE2 refuses UCP (Unicode classes) with LITERAL, where it would mean nothing anyway.
    const uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options,
                          &error_code, &error_offset, nullptr);
    if (!code_) {
        fail("tokenizer", "{}: split pattern does not compile at offset {}: {}", origin,
             error_offset, pcre2_message(error_code));
    }
    // JIT is an optimisation only: without it (unsupported CPU) the interpreter gives the same matches.
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
}

RegexSplitter::~RegexSplitter() { pcre2_code_free(code_); }

std::vector<std::pair<size_t, size_t>> RegexSplitter::matches(std::string_view text) const {
    std::unique_ptr<pcre2_match_data, MatchDataDeleter> match_data(
        pcre2_match_data_create_from_pattern(code_, nullptr));
    const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    std::vector<std::pair<size_t, size_t>> found;
    size_t offset = 0;
    while (offset < text.size()) {
        int rc = pcre2_match(code_, subject, text.size(), offset, 0, match_data.get(), nullptr);
        // Backtracking through long input (e.g. (?:a|ab)+$ on 400 kB) can exhaust the JIT's fixed
        // 32 KiB stack; the interpreter keeps its backtracking state on the heap.
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
            rc = pcre2_match(code_, subject, text.size(), offset, PCRE2_NO_JIT, match_data.get(), nullptr);
        }
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) fail("tokenizer", "{}: split pattern failed on the text: {}", origin_, pcre2_message(rc));
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data.get());
        const size_t begin = ovector[0], end = ovector[1];
        if (end > begin) {
            found.emplace_back(begin, end);
            offset = end;
        } else {
            offset = begin;  // an empty match: step over one character and search again
            next_code_point(text, offset);
        }
    }
    return found;
}

std::vector<std::string_view> split_isolated(const RegexSplitter& splitter, std::string_view text) {
    std::vector<std::string_view> pieces;
    size_t covered = 0;
    for (auto [begin, end] : splitter.matches(text)) {
        if (begin > covered) pieces.push_back(text.substr(covered, begin - covered));
        pieces.push_back(text.substr(begin, end - begin));
        covered = end;
    }
    if (covered < text.size()) pieces.push_back(text.substr(covered));
    return pieces;
}

void PreTokenizer::add_split(std::string_view pattern, bool literal, SplitBehavior behavior,
                             bool invert, const std::string& origin) {
    Step step;
    step.splitter = std::make_shared<RegexSplitter>(pattern, literal, origin);
    step.behavior = behavior;
    step.invert = invert;
    steps_.push_back(std::move(step));
}

void PreTokenizer::add_byte_level(bool add_prefix_space, bool use_regex) {
    static const auto gpt2_splitter =
        std::make_shared<const RegexSplitter>(kGpt2SplitPattern, false, "GPT-2 split pattern");
    Step step;
    step.add_prefix_space = add_prefix_space;
    if (use_regex) step.splitter = gpt2_splitter;
    steps_.push_back(std::move(step));
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
    std::vector<std::string> pieces;
    if (!text.empty()) pieces.emplace_back(text);
    for (const Step& step : steps_) {
        std::vector<std::string> next;
        for (std::string& piece : pieces) {
            // Hugging Face ByteLevel: "if add_prefix_space && !piece.starts_with(' ')".
            if (step.add_prefix_space && !piece.starts_with(' ')) piece.insert(piece.begin(), ' ');
            if (!step.splitter) {
                next.push_back(std::move(piece));
                continue;
            }
            std::vector<Span> spans;
            size_t covered = 0;
            for (auto [begin, end] : step.splitter->matches(piece)) {
                if (begin > covered) spans.push_back({covered, begin, step.invert});
                spans.push_back({begin, end, !step.invert});
                covered = end;
            }
            if (covered < piece.size()) spans.push_back({covered, piece.size(), step.invert});
            for (const Span& s : apply_behavior(spans, step.behavior)) {
                next.push_back(piece.substr(s.begin, s.end - s.begin));
            }
        }
        // Hugging Face drops empty pieces after every step, so a later prefix space never lands on one.
        std::erase_if(next, [](const std::string& piece) { return piece.empty(); });
        pieces = std::move(next);
    }
    return pieces;
}

}  // namespace sinklab
