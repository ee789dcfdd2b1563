// SentencePiece models (Llama 2, Mistral v1, Gemma, T5, ...) through Google's own library, so
// normalization, the dummy "▁" prefix, byte fallback and unigram/BPE scoring match it exactly.
#include <sentencepiece_processor.h>

#include "core/error.h"
#include "core/files.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/tokenizer.h"

namespace sinklab {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // "▁", SentencePiece's visible space

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
    std::string out;
    for (size_t pos = 0;;) {
        const size_t found = text.find(from, pos);
        out.append(text.substr(pos, found == std::string_view::npos ? std::string_view::npos : found - pos));
        if (found == std::string_view::npos) return out;
        out.append(to);
        pos = found + from.size();
    }
}

class SentencePieceTokenizer final : public Tokenizer {
public:
    explicit SentencePieceTokenizer(const std::filesystem::path& model_file) : source_(model_file.string()) {
        sentencepiece::util::Status status;
        try {
            status = processor_.Load(source_);
        } catch (const std::exception& e) {
            // libsentencepiece reports most bad models by status, but its trie builder (darts-clone)
            // throws, e.g. for a zero-length piece (found by fuzz_xlmr_sentencepiece)
            fail("tokenizer", "{}: not a SentencePiece model sinklab can load: {}", source_, e.what());
        }
        SINKLAB_CHECK(status.ok(), "tokenizer", "{}: not a SentencePiece model: {}", source_, status.ToString());
        if (processor_.bos_id() >= 0) bos_id = processor_.bos_id();
        if (processor_.eos_id() >= 0) eos_id = processor_.eos_id();
    }

    std::vector<int32_t> encode(std::string_view text) const override {
        std::vector<int> ids;
        const auto status = processor_.Encode(text, &ids);
        SINKLAB_CHECK(status.ok(), "tokenizer", "{}: encode failed: {}", source_, status.ToString());
        return {ids.begin(), ids.end()};
    }

    std::string decode(std::span<const int32_t> ids) const override {
        for (int32_t id : ids) check_id(id);
        std::string text;
        const auto status = processor_.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
        SINKLAB_CHECK(status.ok(), "tokenizer", "{}: decode failed: {}", source_, status.ToString());
        return text;
    }

    std::string token_text(int32_t id) const override {
        check_id(id);
        const std::string& piece = processor_.IdToPiece(id);
        if (processor_.IsByte(id)) return std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
        if (processor_.IsControl(id) || processor_.IsUnknown(id)) return piece;
        return replace_all(piece, kSpaceMarker, " ");
    }

    std::optional<int32_t> token_id(std::string_view text) const override {
        const std::string piece = replace_all(text, " ", kSpaceMarker);
        const int id = processor_.PieceToId(piece);
        if (id != processor_.unk_id() || processor_.IdToPiece(id) == piece) return id;
        if (text.size() == 1) {  // a byte-fallback token <0xXX>
            const int byte_id = processor_.PieceToId(fmt::format("<0x{:02X}>", static_cast<unsigned char>(text[0])));
            if (processor_.IsByte(byte_id)) return byte_id;
        }
        return std::nullopt;
    }

    int64_t vocab_size() const override { return processor_.GetPieceSize(); }
    std::string kind() const override { return "sentencepiece"; }
    int32_t unk_piece() const { return processor_.unk_id(); }

private:
    void check_id(int32_t id) const {
        SINKLAB_CHECK(id >= 0 && id < vocab_size(), "tokenizer", "{}: id {} is outside the vocabulary [0, {})",
                      source_, id, vocab_size());
    }

    std::string source_;
    sentencepiece::SentencePieceProcessor processor_;
};

// XLM-RoBERTa's ids over a SentencePiece model (transformers' XLMRobertaTokenizer, after fairseq):
// the four specials first, every piece of the model one place up (its <unk>, piece 0, is <unk> 3),
// and <mask> after the last piece. Special tokens written in the text become their ids (<mask>
// swallows the spaces before it, as its lstrip says); the text between them is encoded alone.
class XlmRobertaTokenizer final : public Tokenizer {
public:
    explicit XlmRobertaTokenizer(const std::filesystem::path& model_file)
        : pieces_(model_file), source_(model_file.string()),
          mask_(static_cast<int32_t>(pieces_.vocab_size()) + kOffset),
          specials_({{"<s>", kBos}, {"<pad>", kPad}, {"</s>", kEos}, {"<unk>", kUnk},
                     {"<mask>", mask_, true, /*lstrip=*/true}}) {
        bos_id = cls_id = kBos;
        eos_id = sep_id = kEos;
        pad_id = kPad;
        unk_id = kUnk;
        mask_id = mask_;
        framing = SequenceFraming::roberta;
    }

    std::vector<int32_t> encode(std::string_view text) const override {
        std::vector<int32_t> ids;
        for (const AddedTokenMatcher::Segment& segment : specials_.split(text, true)) {
            if (segment.id) {
                ids.push_back(*segment.id);
            } else {
                for (int32_t id : pieces_.encode(segment.text)) ids.push_back(from_piece(id));
            }
        }
        return ids;
    }
    std::vector<int32_t> encode_ordinary(std::string_view text) const override {
        std::vector<int32_t> ids;
        for (int32_t id : pieces_.encode(text)) ids.push_back(from_piece(id));
        return ids;
    }

    std::string decode(std::span<const int32_t> ids) const override {
        std::string text;
        std::vector<int32_t> run;  // pieces, decoded together so that SentencePiece places the spaces
        auto flush = [&] {
            if (!run.empty()) text += pieces_.decode(run);
            run.clear();
        };
        for (int32_t id : ids) {
            check_id(id);
            if (id >= kFirstPiece && id != mask_) {
                run.push_back(id - kOffset);
            } else {
                flush();
                text += token_text(id);
            }
        }
        flush();
        return text;
    }

    std::string token_text(int32_t id) const override {
        check_id(id);
        switch (id) {
            case kBos: return "<s>";
            case kPad: return "<pad>";
            case kEos: return "</s>";
            case kUnk: return "<unk>";
            default: return id == mask_ ? "<mask>" : pieces_.token_text(id - kOffset);
        }
    }

    std::optional<int32_t> token_id(std::string_view text) const override {
        for (const auto& [name, id] : {std::pair<std::string_view, int32_t>{"<s>", kBos}, {"<pad>", kPad}, {"</s>", kEos},
                                       {"<unk>", kUnk}, {"<mask>", mask_}})
            if (text == name) return id;
        const std::optional<int32_t> piece = pieces_.token_id(text);
        if (!piece || *piece == pieces_.unk_piece()) return std::nullopt;
        return from_piece(*piece);
    }

    int64_t vocab_size() const override { return mask_ + 1; }
    std::string kind() const override { return "sentencepiece-xlmr"; }

private:
    static constexpr int32_t kBos = 0, kPad = 1, kEos = 2, kUnk = 3, kOffset = 1, kFirstPiece = 4;

    int32_t from_piece(int32_t piece) const { return piece == pieces_.unk_piece() ? kUnk : piece + kOffset; }
    void check_id(int32_t id) const {
        SINKLAB_CHECK(id >= 0 && id < vocab_size(), "tokenizer", "{}: id {} is outside the vocabulary [0, {})",
                      source_, id, vocab_size());
    }

    SentencePieceTokenizer pieces_;
    std::string source_;
    int32_t mask_;
    AddedTokenMatcher specials_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_xlm_roberta_sentencepiece(const std::filesystem::path& model_file) {
    require_input_file(model_file, "tokenizer");
    return std::make_unique<XlmRobertaTokenizer>(model_file);
}

std::unique_ptr<Tokenizer> load_sentencepiece(const std::filesystem::path& model_file) {
    require_input_file(model_file, "tokenizer");
    return std::make_unique<SentencePieceTokenizer>(model_file);
}

}  // namespace sinklab
