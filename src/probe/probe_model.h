#pragma once
// The model a probe runs, with what the inputs need from its folder: the tokenizer and the BOS token.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>

#include "core/error.h"
#include "model/hf_loader.h"
#include "probe/probe_input.h"
#include "tokenizer/tokenizer.h"

namespace sinklab {

struct ProbeModel {
    std::unique_ptr<Transformer> model;
    ModelInfo info;
    std::unique_ptr<Tokenizer> tokenizer;  // null when the folder has none (natural input then fails)
    std::optional<int32_t> bos_id;         // the tokenizer's, else the model config's
    bool adds_bos = false;                 // the tokenizer puts BOS first by default
    // Encoders: the tokenizer's [CLS] / [SEP] (else the config's BOS / EOS, RoBERTa's <s> / </s>) and
    // the mask token of masked-LM inputs (the tokenizer's only).
    std::optional<int32_t> cls_id, sep_id, mask_id;
};

// The special tokens around the samples under --bos: a decoder's BOS (resolve_bos), an encoder's
// [CLS] ... [SEP] frame (resolve_encoder_frame).
SampleFrame sample_frame(const ProbeModel& model, BosMode mode);

// Seeded masking rate of an encoder's masked-LM loss (BERT's 15%).
inline constexpr double kMaskedLmRate = 0.15;

// Any model load_model reads: sinklab folders and runs (byte tokenizer, BOS 256 for vocab 257),
// Hugging Face folders (their tokenizer files when present), llama2.c checkpoints. `tokenizer`
// (--tokenizer), when given, replaces the model's own: any file or folder load_tokenizer reads, whose
// vocabulary must fit the model's (check_tokenizer_fits).
ProbeModel load_probe_model(const std::filesystem::path& path, const std::filesystem::path& tokenizer = {});

// A tokenizer fits a model whose embedding table has `model_vocab` rows when its ids all have a row
// (vocab <= model_vocab) and it is not a different tokenizer: embedding tables are padded past the
// tokenizer to a multiple of 64 to 256 ids (Qwen2: 151,665 -> 151,936), never by 1,024 or more.
// Throws TokenizerMismatch naming --tokenizer otherwise: a flag error, which a report does not turn
// into a note about one model.
class TokenizerMismatch : public Error {
public:
    using Error::Error;
};
void check_tokenizer_fits(const Tokenizer& tokenizer, const std::filesystem::path& tokenizer_path, int64_t model_vocab);
inline constexpr int64_t kMaxVocabPadding = 1024;

}  // namespace sinklab
