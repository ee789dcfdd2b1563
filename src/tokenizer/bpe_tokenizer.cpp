// Byte-level BPE: tokens are byte strings, a word starts as its bytes and merges pair by pair in
// merge-rank order (Sennrich et al. 2016, as GPT-2's encoder.py and Hugging Face's BPE model do).
#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <array>
#include <mutex>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/string_map.h"
#include "tokenizer/token_id.h"

namespace sinklab {
namespace {

// (left id, right id) -> the merge, in one flat open-addressing array: BPE looks up every adjacent
// pair of every word, and a node-based std::unordered_map spends most of encode() on cache misses.
class MergeTable {
public:
    void reserve(size_t count) {
        size_t capacity = 16;
        while (capacity < 2 * count) capacity *= 2;  // at most half full keeps probe chains short
        slots_.assign(capacity, Slot{kEmpty, {}});
    }

    // A repeated pair takes its later rank, as in GPT-2's dict(zip(merges, ranks)) and Hugging Face.
    void insert_or_assign(int32_t left, int32_t right, BpeMerge<int32_t> merge) {
        Slot& slot = slots_[find_slot(key(left, right))];
        slot = {key(left, right), merge};
    }

    const BpeMerge<int32_t>* find(int32_t left, int32_t right) const {
        const Slot& slot = slots_[find_slot(key(left, right))];
        return slot.key == kEmpty ? nullptr : &slot.merge;
    }

private:
    static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are non-negative, so no pair has this key
    struct Slot {
        uint64_t key;
        BpeMerge<int32_t> merge;
    };

    static uint64_t key(int32_t left, int32_t right) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
    }

    // The slot holding `k`, or the empty slot where it would go (linear probing).
    size_t find_slot(uint64_t k) const {
        const size_t mask = slots_.size() - 1;
        size_t index = static_cast<size_t>((k * 0x9E3779B97F4A7C15ULL) >> 20) & mask;  // Fibonacci hashing
        while (slots_[index].key != kEmpty && slots_[index].key != k) index = (index + 1) & mask;
        return index;
    }

    std::vector<Slot> slots_;
};

class BpeTokenizer final : public Tokenizer {
public:
    explicit BpeTokenizer(BpeSpec spec)
        : source_(std::move(spec.source)),
          normalizer_(std::move(spec.normalizer)),
          pre_tokenizer_(std::move(spec.pre_tokenizer)),
          ignore_merges_(spec.ignore_merges),
          raw_added_(select_added(spec.added_tokens, false)),
          normalized_added_(select_added(spec.added_tokens, true)) {
        // The largest id sizes the tables: bounded before they are allocated.
        int32_t max_id = -1;
        for (const auto& [spelling, id] : spec.vocab)
            max_id = std::max(max_id, checked_token_id(id, source_, fmt::format("token \"{}\"", spelling)));
        for (const AddedToken& token : spec.added_tokens)
            max_id = std::max(max_id, checked_token_id(token.id, source_, fmt::format("added token \"{}\"", token.content)));
        token_bytes_.resize(static_cast<size_t>(max_id) + 1);
        has_token_.resize(static_cast<size_t>(max_id) + 1, false);

        StringMap<int32_t> spelling_to_id;
        for (const auto& [spelling, id] : spec.vocab) {
            SINKLAB_CHECK(!has_token_[id], "tokenizer", "{}: id {} is given to two tokens", source_, id);
            spelling_to_id.emplace(spelling, id);
            set_token(id, byte_level_to_bytes(spelling).value_or(spelling));
            bytes_to_id_.emplace(token_bytes_[id], id);
        }
        for (int byte = 0; byte < 256; ++byte) {
            auto it = bytes_to_id_.find(std::string(1, static_cast<char>(byte)));
            SINKLAB_CHECK(it != bytes_to_id_.end(), "tokenizer",
                          "{}: the vocabulary lacks byte 0x{:02X}; not a byte-level BPE vocabulary", source_, byte);
            byte_ids_[byte] = it->second;
        }
        for (const AddedToken& token : spec.added_tokens) {
            set_token(token.id, byte_level_to_bytes(token.content).value_or(token.content));
            added_content_to_id_.emplace(token.content, token.id);
        }

        auto id_of = [&](const std::string& spelling, size_t rank) {
            auto it = spelling_to_id.find(spelling);
            SINKLAB_CHECK(it != spelling_to_id.end(), "tokenizer", "{}: \"{}\" is not in the vocabulary",
                          spec.describe_merge(rank), spelling);
            return it->second;
        };
        merges_.reserve(spec.merges.size());
        for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
            const auto& [left, right] = spec.merges[rank];
            const int32_t left_id = id_of(left, rank);
            const int32_t right_id = id_of(right, rank);
            merges_.insert_or_assign(left_id, right_id,
                                     BpeMerge<int32_t>{static_cast<int32_t>(rank), id_of(left + right, rank)});
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
        if (auto it = added_content_to_id_.find(text); it != added_content_to_id_.end()) {
            return it->second;
        }
        if (auto it = bytes_to_id_.find(text); it != bytes_to_id_.end()) return it->second;
        return std::nullopt;
    }

    int64_t vocab_size() const override { return static_cast<int64_t>(token_bytes_.size()); }
    std::string kind() const override { return "bpe"; }

private:
    static std::vector<AddedToken> select_added(const std::vector<AddedToken>& tokens, bool normalized) {
        std::vector<AddedToken> selected;
        for (const AddedToken& token : tokens) {
            if (token.normalized == normalized) selected.push_back(token);
        }
        return selected;
    }

    void set_token(int32_t id, std::string bytes) {
        token_bytes_[id] = std::move(bytes);
        has_token_[id] = true;
    }

    const std::string& token_bytes(int32_t id) const {
        SINKLAB_CHECK(id >= 0 && id < vocab_size() && has_token_[id], "tokenizer",
                      "{}: id {} is not in the vocabulary (size {})", source_, id, vocab_size());
        return token_bytes_[id];
    }

    // Hugging Face's order: added tokens matched on the raw text, then the normalizer, then added
    // tokens matched on normalized text, then pre-tokenization and BPE on each piece.
    std::vector<int32_t> encode_with(std::string_view text, bool include_special) const {
        std::vector<int32_t> ids;
        for (const auto& raw : raw_added_.split(text, include_special)) {
            if (raw.id) {
                ids.push_back(*raw.id);
                continue;
            }
            const std::string normalized = normalizer_.normalize(raw.text);
            for (const auto& segment : normalized_added_.split(normalized, include_special)) {
                if (segment.id) {
                    ids.push_back(*segment.id);
                    continue;
                }
                for (const std::string& piece : pre_tokenizer_.split(segment.text)) encode_piece(piece, ids);
            }
        }
        return ids;
    }

    void encode_piece(std::string_view piece, std::vector<int32_t>& ids) const {
        if (ignore_merges_) {
            if (auto it = bytes_to_id_.find(piece); it != bytes_to_id_.end()) {
                ids.push_back(it->second);
                return;
            }
        }
        {
            std::lock_guard lock(cache_mutex_);
            if (auto it = cache_.find(piece); it != cache_.end()) {
                ids.insert(ids.end(), it->second.begin(), it->second.end());
                return;
            }
        }
        std::vector<BpeSymbol> symbols(piece.size());
        for (uint32_t i = 0; i < piece.size(); ++i) {
            symbols[i] = {byte_ids_[static_cast<unsigned char>(piece[i])], i, i + 1};
        }
        auto find_merge = [&](const BpeSymbol& left, const BpeSymbol& right) -> std::optional<BpeMerge<int32_t>> {
            const BpeMerge<int32_t>* merge = merges_.find(left.id, right.id);
            if (!merge) return std::nullopt;
            return *merge;
        };
        std::vector<int32_t> piece_ids = bpe_merge<int32_t>(std::move(symbols), find_merge);
        ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
        std::lock_guard lock(cache_mutex_);
        if (cache_.size() < kCacheCapacity) cache_.emplace(piece, std::move(piece_ids));
    }

    std::string source_;
    Normalizer normalizer_;
    PreTokenizer pre_tokenizer_;
    bool ignore_merges_;
    AddedTokenMatcher raw_added_, normalized_added_;
    std::vector<std::string> token_bytes_;  // id -> the bytes it stands for
    std::vector<bool> has_token_;           // ids may have gaps
    StringMap<int32_t> bytes_to_id_;
    StringMap<int32_t> added_content_to_id_;
    std::array<int32_t, 256> byte_ids_{};  // the single-byte tokens every word starts from
    MergeTable merges_;
    // Words repeat, so like GPT-2's encoder.py and Hugging Face, remember each piece's ids; once
    // full, the cache stops growing (the words that fill it first are the frequent ones).
    static constexpr size_t kCacheCapacity = 1 << 16;
    mutable std::mutex cache_mutex_;
    mutable StringMap<std::vector<int32_t>> cache_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(BpeSpec spec) {
    return std::make_unique<BpeTokenizer>(std::move(spec));
}

// GPT-2's files as Hugging Face lays them out: vocab.json {spelling: id} and merges.txt, one
// "left right" per line after a "#version" header.
std::unique_ptr<Tokenizer> load_gpt2_bpe(const std::filesystem::path& vocab_json,
                                         const std::filesystem::path& merges_txt) {
    BpeSpec spec;
    spec.source = vocab_json.string();
    const std::string vocab_text = read_text_file(vocab_json, "tokenizer");
    try {
        const nlohmann::json vocab = nlohmann::json::parse(vocab_text);
        SINKLAB_CHECK(vocab.is_object(), "tokenizer", "{}: expected a JSON object {{token: id}}", vocab_json.string());
        for (const auto& [spelling, id] : vocab.items())
            spec.vocab.emplace_back(spelling, token_id_from_json(id, spec.source, fmt::format("token \"{}\"", spelling)));
    } catch (const nlohmann::json::exception& e) {
        fail("tokenizer", "{}: not a valid vocab.json: {}", vocab_json.string(), e.what());
    }

    const std::string merges_text = read_text_file(merges_txt, "tokenizer");
    std::vector<size_t> merge_lines;
    size_t line_number = 0;
    for (size_t start = 0; start < merges_text.size();) {
        size_t end = merges_text.find('\n', start);
        if (end == std::string::npos) end = merges_text.size();
        std::string_view line(merges_text.data() + start, end - start);
        start = end + 1;
        ++line_number;
        if (line.ends_with('\r')) line.remove_suffix(1);
        if (line.empty() || (line_number == 1 && line.starts_with("#version"))) continue;
        const size_t space = line.find(' ');
        SINKLAB_CHECK(space != std::string_view::npos && space > 0 && space + 1 < line.size() &&
                          line.find(' ', space + 1) == std::string_view::npos,
                      "tokenizer", "{} line {}: expected \"left right\", got \"{}\"", merges_txt.string(),
                      line_number, line);
        spec.merges.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
        merge_lines.push_back(line_number);
    }
    spec.describe_merge = [file = merges_txt.string(), merge_lines](size_t rank) {
        return fmt::format("{} line {}", file, merge_lines[rank]);
    };

    // GPT2Tokenizer's bos, eos and unk token; the only special token of GPT-2's vocabulary.
    constexpr std::string_view kEndOfText = "<|endoftext|>";
    std::optional<int32_t> end_of_text;
    for (const auto& [spelling, id] : spec.vocab) {
        if (spelling == kEndOfText) end_of_text = id;
    }
    if (end_of_text) spec.added_tokens.push_back({.content = std::string(kEndOfText), .id = *end_of_text});
    spec.pre_tokenizer.add_byte_level(false, true);

    auto tokenizer = make_bpe_tokenizer(std::move(spec));
    tokenizer->bos_id = tokenizer->eos_id = end_of_text;
    return tokenizer;
}

}  // namespace sinklab
