// llama2.c's tokenizer.bin (karpathy/llama2.c, tokenizer.py export / run.c encode): a SentencePiece
// BPE vocabulary flattened to "int32 max_token_length, then per token: float score, int32 length,
// bytes", with "▁" already turned into " ". Encoding follows run.c: a dummy " " prefix, one token per
// UTF-8 character (byte fallback to ids 3 + byte for characters not in the vocabulary), then merge
// the adjacent pair whose concatenation has the highest score until none is in the vocabulary.
#include <cstring>

#include "core/error.h"
#include "core/files.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/string_map.h"
#include "tokenizer/tokenizer.h"

namespace sinklab {
namespace {

// run.c hard-codes these (the SentencePiece ids of the exported Llama 2 / TinyStories vocabularies).
constexpr int32_t kBosId = 1;
constexpr int32_t kEosId = 2;
constexpr int32_t kFirstByteId = 3;  // <0x00> .. <0xFF> are ids 3 .. 258
// run.c starts its best-score search at -1e10, so pairs scoring that low never merge.
constexpr float kLowestMergeableScore = -1e10f;

// The byte of a "<0xXX>" byte-fallback piece.
std::optional<char> byte_of_piece(std::string_view piece) {
    if (piece.size() != 6 || !piece.starts_with("<0x") || piece[5] != '>') return std::nullopt;
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    const int high = hex(piece[3]), low = hex(piece[4]);
    if (high < 0 || low < 0) return std::nullopt;
    return static_cast<char>(high * 16 + low);
}

class Llama2cTokenizer final : public Tokenizer {
public:
    Llama2cTokenizer(std::string source, std::vector<std::string> pieces, std::vector<float> scores)
        : source_(std::move(source)), pieces_(std::move(pieces)), scores_(std::move(scores)) {
        for (size_t id = 0; id < pieces_.size(); ++id) piece_to_id_.emplace(pieces_[id], static_cast<int32_t>(id));
        auto space = piece_to_id_.find(" ");
        SINKLAB_CHECK(space != piece_to_id_.end(), "tokenizer",
                      "{}: no \" \" token, which llama2.c's encoder needs as its dummy prefix", source_);
        dummy_prefix_id_ = space->second;
        SINKLAB_CHECK(vocab_size() >= kFirstByteId + 256, "tokenizer",
                      "{}: {} tokens, fewer than llama2.c's 3 control + 256 byte tokens", source_, vocab_size());
        bos_id = kBosId;
        eos_id = kEosId;
        add_bos_by_default = true;  // run.c's generate() always encodes with BOS
    }

    std::vector<int32_t> encode(std::string_view text) const override {
        if (text.empty()) return {};
        std::vector<BpeSymbol> symbols;  // byte ranges are unused: merges look up the pieces
        symbols.push_back({dummy_prefix_id_, 0, 0});
        // Group each lead byte with the continuation bytes after it (at most 4 bytes), as run.c does
        // without validating the UTF-8.
        size_t start = 0;
        while (start < text.size()) {
            size_t end = start + 1;
            while (end < text.size() && end - start < 4 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
            const std::string_view character = text.substr(start, end - start);
            if (auto it = piece_to_id_.find(character); it != piece_to_id_.end()) {
                symbols.push_back({it->second, 0, 0});
            } else {
                for (unsigned char byte : character) symbols.push_back({kFirstByteId + byte, 0, 0});
            }
            start = end;
        }
        std::string pair;
        auto find_merge = [&](const BpeSymbol& left, const BpeSymbol& right) -> std::optional<BpeMerge<float>> {
            pair = pieces_[left.id];
            pair += pieces_[right.id];
            auto it = piece_to_id_.find(pair);
            if (it == piece_to_id_.end() || !(scores_[it->second] > kLowestMergeableScore)) return std::nullopt;
            return BpeMerge<float>{-scores_[it->second], it->second};  // the highest score merges first
        };
        return bpe_merge<float>(std::move(symbols), find_merge);
    }

    // Drops the dummy-prefix space that encode added: the leading space of the first text token of
    // the sequence or after a BOS (run.c strips it only after BOS; stripping at the start as well
    // makes decode(encode(text)) == text). BOS and EOS render as nothing.
    std::string decode(std::span<const int32_t> ids) const override {
        std::string text;
        bool at_start = true;
        for (int32_t id : ids) {
            check_id(id);
            if (id == kBosId || id == kEosId) {
                at_start = id == kBosId;
                continue;
            }
            std::string piece = token_text(id);
            if (at_start && piece.starts_with(' ')) piece.erase(0, 1);
            text += piece;
            at_start = false;
        }
        return text;
    }

    std::string token_text(int32_t id) const override {
        check_id(id);
        if (auto byte = byte_of_piece(pieces_[id])) return std::string(1, *byte);
        return pieces_[id];
    }

    std::optional<int32_t> token_id(std::string_view text) const override {
        if (auto it = piece_to_id_.find(text); it != piece_to_id_.end()) return it->second;
        return std::nullopt;
    }

    int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
    std::string kind() const override { return "llama2c"; }

private:
    void check_id(int32_t id) const {
        SINKLAB_CHECK(id >= 0 && id < vocab_size(), "tokenizer", "{}: id {} is outside the vocabulary [0, {})",
                      source_, id, vocab_size());
    }

    std::string source_;
    std::vector<std::string> pieces_;
    std::vector<float> scores_;
    StringMap<int32_t> piece_to_id_;  // the first id of each piece, as a lookup must pick one
    int32_t dummy_prefix_id_ = 0;
};

}  // namespace

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::filesystem::path& bin_file, int64_t vocab_size) {
    const std::string origin = bin_file.string();
    SINKLAB_CHECK(vocab_size >= 0, "tokenizer", "{}: vocab_size {} is negative", origin, vocab_size);
    const std::string data = read_text_file(bin_file, "tokenizer");
    size_t offset = 0;
    auto read = [&](void* out, size_t size, const char* what, size_t token) {
        SINKLAB_CHECK(offset + size <= data.size(), "tokenizer",
                      "{}: ends inside the {} of token {} (byte {} of {}); a truncated file?", origin, what, token,
                      offset, data.size());
        std::memcpy(out, data.data() + offset, size);
        offset += size;
    };
    int32_t max_token_length = 0;
    read(&max_token_length, sizeof(max_token_length), "header", 0);
    SINKLAB_CHECK(max_token_length > 0, "tokenizer",
                  "{}: max_token_length {} in the header is not positive; not a llama2.c tokenizer.bin?", origin,
                  max_token_length);

    std::vector<std::string> pieces;
    std::vector<float> scores;
    for (size_t token = 0; vocab_size > 0 ? token < static_cast<size_t>(vocab_size) : offset < data.size(); ++token) {
        float score = 0;
        int32_t length = 0;
        read(&score, sizeof(score), "score", token);
        read(&length, sizeof(length), "length", token);
        SINKLAB_CHECK(length >= 0 && length <= max_token_length, "tokenizer",
                      "{}: token {} has length {}, outside [0, max_token_length {}]; not a llama2.c tokenizer.bin?",
                      origin, token, length, max_token_length);
        // The text is allocated only once the file is known to hold it.
        SINKLAB_CHECK(static_cast<size_t>(length) <= data.size() - offset, "tokenizer",
                      "{}: ends inside the text of token {} ({} bytes at byte {} of {}); a truncated file?", origin,
                      token, length, offset, data.size());
        std::string piece(static_cast<size_t>(length), '\0');
        read(piece.data(), piece.size(), "text", token);
        pieces.push_back(std::move(piece));
        scores.push_back(score);
    }
    return std::make_unique<Llama2cTokenizer>(origin, std::move(pieces), std::move(scores));
}

}  // namespace sinklab
