// tiktoken (OpenAI's BPE): a rank file of "base64(token bytes) rank" lines, where the rank is also
// the id and a lower rank merges first; a split regex; special tokens above the ranks.
#include <array>
#include <charconv>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/string_map.h"
#include "tokenizer/token_id.h"
#include "tokenizer/tokenizer.h"

namespace sinklab {
namespace {

namespace fs = std::filesystem;

struct EncodingRules {
    std::string pattern;
    std::vector<std::pair<std::string, int32_t>> special_tokens;
};

// tiktoken_ext/openai_public.py, for rank files that come without a sibling .json.
std::optional<EncodingRules> known_encoding(const std::string& name) {
    const std::pair<std::string, int32_t> end_of_text_50k{"<|endoftext|>", 50256};
    if (name == "gpt2" || name == "r50k_base" || name == "p50k_base") {
        return EncodingRules{std::string(kGpt2SplitPattern), {end_of_text_50k}};
    }
    if (name == "cl100k_base") {
        return EncodingRules{std::string(kCl100kSplitPattern),
                             {{"<|endoftext|>", 100257},
                              {"<|fim_prefix|>", 100258},
                              {"<|fim_middle|>", 100259},
                              {"<|fim_suffix|>", 100260},
                              {"<|endofprompt|>", 100276}}};
    }
    if (name == "o200k_base") {
        return EncodingRules{std::string(kO200kSplitPattern),
                             {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}}};
    }
    return std::nullopt;
}

// Standard base64 with padding; nullopt on any other character or a bad length.
std::optional<std::string> decode_base64(std::string_view text) {
    auto value_of = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    if (text.empty() || text.size() % 4 != 0) return std::nullopt;
    std::string bytes;
    for (size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        const int padding = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
        uint32_t group = 0;
        for (int k = 0; k < 4; ++k) {
            const int value = k >= 4 - padding ? 0 : value_of(text[i + k]);
            if (value < 0) return std::nullopt;
            group = (group << 6) | static_cast<uint32_t>(value);
        }
        bytes.push_back(static_cast<char>(group >> 16));
        if (padding < 2) bytes.push_back(static_cast<char>((group >> 8) & 0xFF));
        if (padding < 1) bytes.push_back(static_cast<char>(group & 0xFF));
    }
    return bytes;
}

class TiktokenTokenizer final : public Tokenizer {
public:
    TiktokenTokenizer(std::string source, StringMap<int32_t> ranks, EncodingRules rules)
        : source_(std::move(source)),
          ranks_(std::move(ranks)),
          splitter_(rules.pattern, false, source_ + " split pattern"),
          specials_(as_added_tokens(rules.special_tokens)) {
        // The largest id sizes the tables: bounded before they are allocated.
        int32_t max_id = -1;
        for (const auto& [bytes, rank] : ranks_) max_id = std::max(max_id, checked_token_id(rank, source_, "a rank"));
        for (const auto& [text, id] : rules.special_tokens)
            max_id = std::max(max_id, checked_token_id(id, source_, fmt::format("special token \"{}\"", text)));
        token_bytes_.resize(static_cast<size_t>(max_id) + 1);
        has_token_.resize(static_cast<size_t>(max_id) + 1, false);
        for (const auto& [bytes, rank] : ranks_) {
            token_bytes_[rank] = bytes;
            has_token_[rank] = true;
        }
        for (int byte = 0; byte < 256; ++byte) {
            auto it = ranks_.find(std::string(1, static_cast<char>(byte)));
            SINKLAB_CHECK(it != ranks_.end(), "tokenizer", "{}: no rank for byte 0x{:02X}", source_, byte);
            byte_ranks_[byte] = it->second;
        }
        for (const auto& [text, id] : rules.special_tokens) {
            SINKLAB_CHECK(!has_token_[id], "tokenizer", "{}: special token \"{}\" has id {}, already a rank", source_,
                          text, id);
            token_bytes_[id] = text;
            has_token_[id] = true;
            special_ids_.emplace(text, id);
            if (text == "<|endoftext|>") eos_id = id;
        }
    }

    std::vector<int32_t> encode(std::string_view text) const override { return encode_with(text, true); }
    std::vector<int32_t> encode_ordinary(std::string_view text) const override {
        return encode_with(text, false);
    }

    std::string decode(std::span<const int32_t> ids) const override {
        std::string text;
        for (int32_t id : ids) text += token_bytes(id);
        return text;
    }

    std::string token_text(int32_t id) const override { return token_bytes(id); }

    std::optional<int32_t> token_id(std::string_view text) const override {
        if (auto it = special_ids_.find(text); it != special_ids_.end()) return it->second;
        if (auto it = ranks_.find(text); it != ranks_.end()) return it->second;
        return std::nullopt;
    }

    int64_t vocab_size() const override { return static_cast<int64_t>(token_bytes_.size()); }
    std::string kind() const override { return "tiktoken"; }

private:
    static std::vector<AddedToken> as_added_tokens(const std::vector<std::pair<std::string, int32_t>>& specials) {
        std::vector<AddedToken> tokens;
        for (const auto& [text, id] : specials) tokens.push_back({.content = text, .id = id});
        return tokens;
    }

    const std::string& token_bytes(int32_t id) const {
        SINKLAB_CHECK(id >= 0 && id < vocab_size() && has_token_[id], "tokenizer",
                      "{}: id {} is not in the vocabulary (size {})", source_, id, vocab_size());
        return token_bytes_[id];
    }

    std::vector<int32_t> encode_with(std::string_view text, bool include_special) const {
        std::vector<int32_t> ids;
        for (const auto& segment : specials_.split(text, include_special)) {
            if (segment.id) {
                ids.push_back(*segment.id);
                continue;
            }
            for (std::string_view piece : split_isolated(splitter_, segment.text)) encode_piece(piece, ids);
        }
        return ids;
    }

    // tiktoken's byte_pair_encode: a piece that is a token is that token; otherwise merge the pair
    // whose concatenated bytes have the lowest rank.
    void encode_piece(std::string_view piece, std::vector<int32_t>& ids) const {
        if (auto it = ranks_.find(piece); it != ranks_.end()) {
            ids.push_back(it->second);
            return;
        }
        std::vector<BpeSymbol> symbols(piece.size());
        for (uint32_t i = 0; i < piece.size(); ++i) {
            symbols[i] = {byte_ranks_[static_cast<unsigned char>(piece[i])], i, i + 1};
        }
        auto find_merge = [&](const BpeSymbol& left, const BpeSymbol& right) -> std::optional<BpeMerge<int32_t>> {
            auto it = ranks_.find(piece.substr(left.begin, right.end - left.begin));
            if (it == ranks_.end()) return std::nullopt;
            return BpeMerge<int32_t>{it->second, it->second};
        };
        for (int32_t id : bpe_merge<int32_t>(std::move(symbols), find_merge)) ids.push_back(id);
    }

    std::string source_;
    StringMap<int32_t> ranks_;  // token bytes -> rank (= id)
    RegexSplitter splitter_;
    AddedTokenMatcher specials_;
    StringMap<int32_t> special_ids_;
    std::vector<std::string> token_bytes_;  // id -> bytes (special tokens: their text)
    std::vector<bool> has_token_;           // ids may have gaps (cl100k_base skips 100261..100275)
    std::array<int32_t, 256> byte_ranks_{};
};

StringMap<int32_t> read_ranks(const fs::path& rank_file) {
    const std::string text = read_text_file(rank_file, "tokenizer");
    StringMap<int32_t> ranks;
    size_t line_number = 0;
    for (size_t start = 0; start < text.size();) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string_view line(text.data() + start, end - start);
        start = end + 1;
        ++line_number;
        if (line.ends_with('\r')) line.remove_suffix(1);
        if (line.empty()) continue;
        const size_t space = line.find(' ');
        std::optional<std::string> bytes;
        std::optional<uint64_t> rank;
        if (space != std::string_view::npos) {
            bytes = decode_base64(line.substr(0, space));
            const std::string_view number = line.substr(space + 1);
            uint64_t value = 0;
            auto [end_of_number, error] = std::from_chars(number.data(), number.data() + number.size(), value);
            if (error == std::errc() && end_of_number == number.data() + number.size()) rank = value;
        }
        SINKLAB_CHECK(bytes && rank, "tokenizer", "{} line {}: expected \"<base64 token> <rank>\", got \"{}\"",
                      rank_file.string(), line_number, line.substr(0, 80));
        SINKLAB_CHECK(*rank < static_cast<uint64_t>(kMaxVocabSize), "tokenizer",
                      "{} line {}: rank {} is outside [0, {}) (sinklab's largest vocabulary, 2^21)", rank_file.string(),
                      line_number, *rank, kMaxVocabSize);
        SINKLAB_CHECK(ranks.emplace(std::move(*bytes), static_cast<int32_t>(*rank)).second, "tokenizer",
                      "{} line {}: the same token appears twice", rank_file.string(), line_number);
    }
    SINKLAB_CHECK(!ranks.empty(), "tokenizer", "{}: no ranks (empty file)", rank_file.string());
    return ranks;
}

// The sibling <name>.json written by tiktoken users: {"pat_str", "special_tokens", "n_ranks"?}.
std::optional<EncodingRules> read_sibling_rules(const fs::path& rank_file, size_t rank_count) {
    fs::path sibling = rank_file;
    sibling.replace_extension(".json");
    if (!fs::exists(sibling)) return std::nullopt;
    const std::string origin = sibling.string();
    const std::string text = read_text_file(sibling, "tokenizer");
    try {
        const nlohmann::json rules = nlohmann::json::parse(text);
        // tokenizer.model's sibling tokenizer.json is a Hugging Face file, not tiktoken rules.
        if (!rules.is_object() || !rules.contains("pat_str")) return std::nullopt;
        EncodingRules parsed{rules.at("pat_str").get<std::string>(), {}};
        const nlohmann::json special_tokens = rules.value("special_tokens", nlohmann::json::object());
        for (const auto& [name, id] : special_tokens.items()) {
            parsed.special_tokens.emplace_back(name, token_id_from_json(id, origin, fmt::format("special token \"{}\"", name)));
        }
        const nlohmann::json n_ranks = rules.value("n_ranks", nlohmann::json());
        SINKLAB_CHECK(n_ranks.is_null() || (n_ranks.is_number_unsigned() && n_ranks.get<uint64_t>() == rank_count),
                      "tokenizer",
                      "{}: n_ranks is {} but {} has {} ranks (a truncated file?)", origin, n_ranks.dump(),
                      rank_file.string(), rank_count);
        return parsed;
    } catch (const nlohmann::json::exception& e) {
        fail("tokenizer", "{}: not valid tiktoken rules (pat_str, special_tokens): {}", origin, e.what());
    }
}

}  // namespace

std::unique_ptr<Tokenizer> load_tiktoken(const fs::path& rank_file) {
    auto ranks = read_ranks(rank_file);
    std::optional<EncodingRules> rules = read_sibling_rules(rank_file, ranks.size());
    if (!rules) rules = known_encoding(rank_file.stem().string());
    SINKLAB_CHECK(rules.has_value(), "tokenizer",
                  "{}: a tiktoken rank file needs its split pattern: put a {}.json with \"pat_str\" and "
                  "\"special_tokens\" beside it (built in: gpt2, r50k_base, p50k_base, cl100k_base, o200k_base)",
                  rank_file.string(), rank_file.stem().string());
    return std::make_unique<TiktokenTokenizer>(rank_file.string(), std::move(ranks), std::move(*rules));
}

}  // namespace sinklab
