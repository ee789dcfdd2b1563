// WordPiece (BERT, DistilBERT): vocab.txt with BERT's basic tokenizer in front, reproducing
// transformers' BertTokenizer (the pure-Python one, which follows Google's tokenization.py):
//  1. special tokens written in the text become their ids; with do_lower_case the rest is
//     lower-cased one character at a time (PreTrainedTokenizer.tokenize);
//  2. the basic tokenizer removes NUL, U+FFFD and control characters, turns whitespace into spaces,
//     puts spaces around CJK ideographs, applies NFC, splits on whitespace, lower-cases each word and
//     strips its accents (NFD, marks Mn dropped) as do_lower_case and strip_accents say, and splits
//     punctuation (ASCII symbols and Unicode P*) into words of their own;
//  3. each word becomes the longest vocabulary prefix, then "##"-prefixed longest continuations;
//     a word with no such split, or longer than 100 characters, is [UNK].
// Character classes come from ICU (Unicode 15 in Debian 12; Python 3.11's unicodedata is Unicode
// 14: characters assigned in between are classified differently).
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>


#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/string_map.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"

namespace sinklab {
namespace {

constexpr int kMaxWordChars = 100;  // BERT's max_input_chars_per_word
// tokenizer_config.json's special-token keys and BertTokenizer's defaults
constexpr std::pair<const char*, const char*> kSpecialTokens[] = {
    {"unk_token", "[UNK]"}, {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"}, {"cls_token", "[CLS]"}, {"mask_token", "[MASK]"}};
constexpr char32_t kReplacement = 0xFFFD;

using CodePoints = std::u32string;

icu::UnicodeString unicode(const CodePoints& text) {
    return icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(text.data()), static_cast<int32_t>(text.size()));
}

CodePoints code_points(const icu::UnicodeString& text) {
    CodePoints out(text.countChar32(), U'\0');
    UErrorCode status = U_ZERO_ERROR;
    text.toUTF32(reinterpret_cast<UChar32*>(out.data()), static_cast<int32_t>(out.size()), status);
    SINKLAB_CHECK(U_SUCCESS(status), "tokenizer", "UTF-32 conversion failed: {}", u_errorName(status));
    return out;
}

// Ill-formed bytes become U+FFFD (which the basic tokenizer then removes, as it removes U+FFFD).
CodePoints decode_utf8(std::string_view text) {
    SINKLAB_CHECK(text.size() < static_cast<size_t>(INT32_MAX), "tokenizer",
                  "text of {} bytes is too long to tokenize in one call (ICU takes at most 2 GiB)", text.size());
    return code_points(icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size()))));
}

std::string encode_utf8(const CodePoints& text) {
    std::string out;
    unicode(text).toUTF8String(out);
    return out;
}

// Python's str.lower() of the whole string: full case mappings (İ -> i + U+0307) and the final
// sigma rule, as ICU's root locale applies them.
CodePoints lower(const CodePoints& text) { return code_points(unicode(text).toLower(icu::Locale::getRoot())); }

CodePoints normalize(const CodePoints& text, bool decompose) {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* form =
        decompose ? icu::Normalizer2::getNFDInstance(status) : icu::Normalizer2::getNFCInstance(status);
    SINKLAB_CHECK(U_SUCCESS(status), "tokenizer", "ICU has no NFC/NFD: {}", u_errorName(status));
    const icu::UnicodeString normalized = form->normalize(unicode(text), status);
    SINKLAB_CHECK(U_SUCCESS(status), "tokenizer", "Unicode normalization failed: {}", u_errorName(status));
    return code_points(normalized);
}

// BERT's _is_whitespace: space, \t, \n, \r and category Zs.
bool is_bert_whitespace(char32_t c) {
    return c == U' ' || c == U'\t' || c == U'\n' || c == U'\r' || u_charType(c) == U_SPACE_SEPARATOR;
}

// BERT's _is_control: every category C* (Cc, Cf, Cn, Co, Cs) except \t, \n and \r.
bool is_bert_control(char32_t c) {
    if (c == U'\t' || c == U'\n' || c == U'\r') return false;
    const int8_t type = u_charType(c);
    return type == U_CONTROL_CHAR || type == U_FORMAT_CHAR || type == U_UNASSIGNED || type == U_PRIVATE_USE_CHAR ||
           type == U_SURROGATE;
}

// BERT's _is_punctuation: the ASCII symbols 33-47, 58-64, 91-96, 123-126 and every category P*.
bool is_bert_punctuation(char32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
    return (U_GET_GC_MASK(c) & U_GC_P_MASK) != 0;
}

// BERT's _is_chinese_char: the CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana).
bool is_cjk_ideograph(char32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Python's str.split() with no argument: str.isspace(), i.e. category Zs or bidi class WS, B or S.
bool is_python_space(char32_t c) {
    if (u_charType(c) == U_SPACE_SEPARATOR) return true;
    const UCharDirection direction = u_charDirection(c);
    return direction == U_WHITE_SPACE_NEUTRAL || direction == U_BLOCK_SEPARATOR || direction == U_SEGMENT_SEPARATOR;
}

std::vector<CodePoints> split_on_space(const CodePoints& text) {
    std::vector<CodePoints> words;
    CodePoints word;
    for (char32_t c : text) {
        if (is_python_space(c)) {
            if (!word.empty()) words.push_back(std::move(word));
            word.clear();
        } else {
            word += c;
        }
    }
    if (!word.empty()) words.push_back(std::move(word));
    return words;
}

struct WordPieceOptions {
    bool lower_case = true;
    std::optional<bool> strip_accents;  // unset: follows lower_case (the original BERT)
    bool chinese_chars = true;
    std::vector<std::string> never_split;
};

class WordPieceTokenizer final : public Tokenizer {
public:
    WordPieceTokenizer(std::vector<std::string> tokens, WordPieceOptions options, std::vector<AddedToken> added,
                       int32_t unk, std::string source)
        : tokens_(std::move(tokens)), options_(std::move(options)), added_(added), unk_(unk), source_(std::move(source)) {
        for (size_t id = 0; id < tokens_.size(); ++id) ids_.emplace(tokens_[id], static_cast<int32_t>(id));
        for (const std::string& word : options_.never_split) never_split_.emplace(word, 0);
    }

    std::vector<int32_t> encode(std::string_view text) const override { return encode_with(text, true); }
    std::vector<int32_t> encode_ordinary(std::string_view text) const override { return encode_with(text, false); }

    // transformers' decode: the tokens joined by spaces, "##" continuations glued on, then
    // clean_up_tokenization_spaces (no space before . , ! ? and English contractions).
    std::string decode(std::span<const int32_t> ids) const override {
        std::string text;
        for (int32_t id : ids) {
            const std::string& token = token_of(id);
            if (token.starts_with("##") && !text.empty()) {
                text += token.substr(2);
            } else {
                if (!text.empty()) text += ' ';
                text += token;
            }
        }
        for (const char* pair : {" .|.", " ?|?", " !|!", " ,|,", " ' |'", " n't|n't", " 'm|'m", " 's|'s", " 've|'ve",
                                 " 're|'re"}) {
            const std::string_view spec(pair);
            const std::string from(spec.substr(0, spec.find('|'))), to(spec.substr(spec.find('|') + 1));
            for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
                text.replace(at, from.size(), to);
        }
        return text;
    }

    std::string token_text(int32_t id) const override { return token_of(id); }
    std::optional<int32_t> token_id(std::string_view text) const override {
        const auto it = ids_.find(text);
        if (it == ids_.end()) return std::nullopt;
        return it->second;
    }
    int64_t vocab_size() const override { return static_cast<int64_t>(tokens_.size()); }
    std::string kind() const override { return "wordpiece"; }

private:
    const std::string& token_of(int32_t id) const {
        SINKLAB_CHECK(id >= 0 && id < vocab_size(), "tokenizer", "{}: id {} is outside the vocabulary [0, {})",
                      source_, id, vocab_size());
        return tokens_[id];
    }

    std::vector<int32_t> encode_with(std::string_view text, bool specials) const {
        std::vector<int32_t> ids;
        for (const AddedTokenMatcher::Segment& segment : added_.split(text, specials)) {
            if (segment.id) {
                ids.push_back(*segment.id);
                continue;
            }
            for (const CodePoints& word : basic_tokenize(segment.text)) {
                const std::string spelled = encode_utf8(word);
                if (never_split_.count(spelled)) {
                    const auto it = ids_.find(spelled);
                    ids.push_back(it == ids_.end() ? unk_ : it->second);
                } else {
                    word_pieces(word, ids);
                }
            }
        }
        return ids;
    }

    std::vector<CodePoints> basic_tokenize(std::string_view chunk) const {
        CodePoints text = decode_utf8(chunk);
        if (options_.lower_case) {
            // PreTrainedTokenizer.tokenize lower-cases character by character (its regex matches one
            // character at a time), so a final sigma stays sigma
            CodePoints lowered;
            for (char32_t c : text) lowered += lower(CodePoints(1, c));
            text = std::move(lowered);
        }
        CodePoints cleaned;
        for (char32_t c : text) {
            if (c == 0 || c == kReplacement || is_bert_control(c)) continue;
            if (is_bert_whitespace(c)) {
                cleaned += U' ';
            } else if (options_.chinese_chars && is_cjk_ideograph(c)) {
                cleaned += U' ';
                cleaned += c;
                cleaned += U' ';
            } else {
                cleaned += c;
            }
        }
        const bool strip = options_.strip_accents.value_or(options_.lower_case);
        std::vector<CodePoints> split;
        for (CodePoints word : split_on_space(normalize(cleaned, false))) {
            if (never_split_.count(encode_utf8(word))) {
                split.push_back(std::move(word));
                continue;
            }
            if (options_.lower_case) word = lower(word);
            if (strip) {
                CodePoints kept;
                for (char32_t c : normalize(word, true))
                    if (u_charType(c) != U_NON_SPACING_MARK) kept += c;
                word = std::move(kept);
            }
            CodePoints current;
            for (char32_t c : word) {
                if (is_bert_punctuation(c)) {
                    if (!current.empty()) split.push_back(std::move(current));
                    current.clear();
                    split.push_back(CodePoints(1, c));
                } else {
                    current += c;
                }
            }
            if (!current.empty()) split.push_back(std::move(current));
        }
        // " ".join(...).split(): words that became whitespace-separated (or empty) split again
        std::vector<CodePoints> words;
        for (const CodePoints& word : split)
            for (CodePoints& part : split_on_space(word)) words.push_back(std::move(part));
        return words;
    }

    // Greedy longest-match-first (Schuster and Nakajima 2012 as BERT applies it).
    void word_pieces(const CodePoints& word, std::vector<int32_t>& ids) const {
        if (word.size() > static_cast<size_t>(kMaxWordChars)) {
            ids.push_back(unk_);
            return;
        }
        std::vector<int32_t> pieces;
        for (size_t start = 0; start < word.size();) {
            std::optional<int32_t> found;
            size_t end = word.size();
            for (; end > start; --end) {
                const std::string piece = (start > 0 ? "##" : "") + encode_utf8(word.substr(start, end - start));
                const auto it = ids_.find(piece);
                if (it != ids_.end()) {
                    found = it->second;
                    break;
                }
            }
            if (!found) {
                ids.push_back(unk_);
                return;
            }
            pieces.push_back(*found);
            start = end;
        }
        ids.insert(ids.end(), pieces.begin(), pieces.end());
    }

    std::vector<std::string> tokens_;
    StringMap<int32_t> ids_;
    WordPieceOptions options_;
    AddedTokenMatcher added_;
    StringMap<int> never_split_;
    int32_t unk_;
    std::string source_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_wordpiece(const std::filesystem::path& vocab_txt,
                                          const std::filesystem::path& tokenizer_config) {
    const std::string origin = vocab_txt.string();
    // One token per line, the id its line number from 0; only the newline is stripped (as
    // transformers' load_vocab does).
    const std::string text = read_text_file(vocab_txt, "tokenizer");
    std::vector<std::string> tokens;
    StringMap<size_t> line_of;
    for (size_t start = 0; start < text.size();) {
        const size_t newline = std::min(text.find('\n', start), text.size());
        std::string token = text.substr(start, newline - start);
        const auto [it, inserted] = line_of.emplace(token, tokens.size() + 1);
        SINKLAB_CHECK(inserted, "tokenizer",
                      "{}: line {} repeats the token \"{}\" of line {}; a WordPiece vocabulary lists each token once",
                      origin, tokens.size() + 1, token, it->second);
        tokens.push_back(std::move(token));
        start = newline + 1;
    }
    SINKLAB_CHECK(!tokens.empty(), "tokenizer", "{}: the vocabulary is empty", origin);

    WordPieceOptions options;
    nlohmann::json config = nlohmann::json::object();
    if (!tokenizer_config.empty()) {
        const std::string config_origin = tokenizer_config.string();
        try {
            config = nlohmann::json::parse(read_text_file(tokenizer_config, "tokenizer"));
            SINKLAB_CHECK(config.is_object(), "tokenizer", "{}: expected a JSON object", config_origin);
            options.lower_case = config.value("do_lower_case", true);
            const auto strip = config.find("strip_accents");
            if (strip != config.end() && !strip->is_null()) options.strip_accents = strip->get<bool>();
            options.chinese_chars = config.value("tokenize_chinese_chars", true);
            const auto never = config.find("never_split");
            if (never != config.end() && !never->is_null()) options.never_split = never->get<std::vector<std::string>>();
            SINKLAB_CHECK(config.value("do_basic_tokenize", true), "tokenizer",
                          "{}: do_basic_tokenize false is not supported (sinklab runs BERT's basic tokenizer)",
                          config_origin);
        } catch (const nlohmann::json::exception& e) {
            fail("tokenizer", "{}: not a valid tokenizer_config.json: {}", config_origin, e.what());
        }
    }
    // Special tokens: tokenizer_config.json's names, else BERT's.
    auto name_of = [&](const char* key, const char* fallback) {
        return special_token_content(config.value(key, nlohmann::json())).value_or(fallback);
    };
    auto special = [&](const char* key, const char* fallback) -> std::optional<int32_t> {
        const auto it = line_of.find(name_of(key, fallback));
        if (it == line_of.end()) return std::nullopt;
        return static_cast<int32_t>(it->second - 1);
    };
    const std::optional<int32_t> unk = special("unk_token", "[UNK]");
    SINKLAB_CHECK(unk.has_value(), "tokenizer", "{}: the unknown token \"{}\" is not in the vocabulary", origin,
                  name_of("unk_token", "[UNK]"));
    // Special tokens written in the text are cut out before the basic tokenizer (exact spelling).
    std::vector<AddedToken> added;
    for (const auto& [key, fallback] : kSpecialTokens) {
        if (const std::optional<int32_t> id = special(key, fallback)) added.push_back({name_of(key, fallback), *id});
    }
    auto tokenizer = std::make_unique<WordPieceTokenizer>(std::move(tokens), options, added, *unk, origin);
    tokenizer->cls_id = special("cls_token", "[CLS]");
    tokenizer->sep_id = special("sep_token", "[SEP]");
    tokenizer->mask_id = special("mask_token", "[MASK]");
    tokenizer->pad_id = special("pad_token", "[PAD]");
    tokenizer->unk_id = unk;
    tokenizer->framing = SequenceFraming::bert;
    return tokenizer;
}

}  // namespace sinklab
