#pragma once
// Text <-> token ids for every tokenizer format sinklab loads: raw bytes, byte-level BPE (GPT-2
// vocab.json + merges.txt, Hugging Face tokenizer.json), tiktoken rank files, SentencePiece models
// and llama2.c's tokenizer.bin. Each format reproduces the ids of its reference implementation.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sinklab {

// How an encoder's tokenizer frames its inputs (transformers' build_inputs_with_special_tokens):
// bert: [CLS] A [SEP] and [CLS] A [SEP] B [SEP], token types 0 up to the first [SEP] and 1 after;
// roberta (RoBERTa, XLM-R): <s> A </s> and <s> A </s></s> B </s>, every token type 0.
enum class SequenceFraming { none, bert, roberta };

class Tokenizer {
public:
    virtual ~Tokenizer() = default;

    // Text to ids. Never adds BOS/EOS (see add_bos_by_default). Special tokens written in the text
    // (e.g. "<|endoftext|>") become their ids, as tiktoken's allowed_special="all" and Hugging Face
    // tokenizers do.
    virtual std::vector<int32_t> encode(std::string_view text) const = 0;
    // Like encode, but special-token strings are ordinary text (tiktoken's encode_ordinary, Hugging
    // Face's split_special_tokens=True). The default suits formats that never read special tokens
    // from text (bytes, SentencePiece control symbols, llama2.c).
    virtual std::vector<int32_t> encode_ordinary(std::string_view text) const { return encode(text); }
    // Ids to text, following each format's reference: special tokens render as their text in BPE and
    // tiktoken, control tokens (BOS/EOS) render as nothing in SentencePiece, llama2.c and bytes.
    // SentencePiece and llama2.c encode with a dummy leading space ("hi" -> " hi"); their decode drops
    // it again at the start of the ids or after BOS, so decode(encode(text)) == text.
    // Throws for an id outside the vocabulary.
    virtual std::string decode(std::span<const int32_t> ids) const = 0;
    // The bytes one token stands for, for streaming display and debugging: may be part of a UTF-8
    // character; control tokens show their name (e.g. "<s>").
    virtual std::string token_text(int32_t id) const = 0;
    // The id whose token_text is `text` (special tokens included), e.g. to find "<|eot_id|>".
    virtual std::optional<int32_t> token_id(std::string_view text) const = 0;
    // One past the largest id (ids in between may be unused, as in tiktoken's cl100k_base).
    virtual int64_t vocab_size() const = 0;
    // "bytes", "bpe", "tiktoken", "sentencepiece", "llama2c" or "wordpiece".
    virtual std::string kind() const = 0;

    std::optional<int32_t> bos_id, eos_id;  // from the files when they say
    bool add_bos_by_default = false;        // tokenizer.json post-processor / tokenizer_config.json
    // Encoders' special tokens (tokenizer_config.json's cls_token, sep_token, mask_token, pad_token,
    // unk_token, or the format's defaults) and how they frame a sequence; none for decoders'.
    std::optional<int32_t> cls_id, sep_id, mask_id, pad_id, unk_id;
    SequenceFraming framing = SequenceFraming::none;
};

// An encoder's input: ids with the framing's special tokens, and their token types.
struct FramedInput {
    std::vector<int32_t> ids, token_types;
};
// `first` (and `second`, a sentence pair) framed as the tokenizer's framing says; throws for a
// tokenizer without one (or without its [CLS] / [SEP] ids).
FramedInput frame_sequence(const Tokenizer& tokenizer, std::span<const int32_t> first,
                           std::optional<std::span<const int32_t>> second = std::nullopt);

// Ids 0..255 are the bytes; with_bos adds id 256 as BOS (vocab 257).
std::unique_ptr<Tokenizer> make_byte_tokenizer(bool with_bos);

// Loads any supported tokenizer. `path` is one of:
// - a model folder holding tokenizer.json, or vocab.json + merges.txt, or tokenizer.model, or
//   tokenizer.bin (llama2.c), or an encoder's vocab.txt (WordPiece) or sentencepiece.bpe.model
//   (XLM-R); a tokenizer_config.json beside them sets bos/eos/add_bos and the encoders' special tokens;
// - a vocab.txt file (WordPiece, BERT's defaults or the tokenizer_config.json beside it);
// - a tokenizer.json file (byte-level BPE);
// - a .tiktoken rank file, with its split pattern and special tokens from a sibling <name>.json
//   ({"pat_str", "special_tokens"}) or, lacking one, from tiktoken's own encodings of that name;
// - a SentencePiece .model (or a tiktoken-format .model, as Llama 3 ships);
// - a llama2.c tokenizer .bin.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path);

// The per-format loaders load_tokenizer dispatches to.
std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::filesystem::path& tokenizer_json);
std::unique_ptr<Tokenizer> load_gpt2_bpe(const std::filesystem::path& vocab_json,
                                         const std::filesystem::path& merges_txt);
std::unique_ptr<Tokenizer> load_tiktoken(const std::filesystem::path& rank_file);
std::unique_ptr<Tokenizer> load_sentencepiece(const std::filesystem::path& model_file);
// BERT's WordPiece: vocab.txt, with the options and special tokens of a tokenizer_config.json
// (do_lower_case, strip_accents, tokenize_chinese_chars, never_split; empty path: BERT's defaults).
std::unique_ptr<Tokenizer> load_wordpiece(const std::filesystem::path& vocab_txt,
                                          const std::filesystem::path& tokenizer_config = {});
// XLM-RoBERTa's tokenizer: a SentencePiece model (sentencepiece.bpe.model) under fairseq's ids:
// <s> 0, <pad> 1, </s> 2, <unk> 3, piece i of the model at i + 1, <mask> last (vocabulary size =
// pieces + 2).
std::unique_ptr<Tokenizer> load_xlm_roberta_sentencepiece(const std::filesystem::path& model_file);
// llama2.c's tokenizer.bin does not store its vocabulary size (run.c takes it from the model
// header); vocab_size 0 reads tokens up to the end of the file.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::filesystem::path& bin_file,
                                                  int64_t vocab_size);

}  // namespace sinklab
