#pragma once
// The tokenizer a command uses, shared by `generate` and `tokenize`.
#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace sinklab::cli {

// --tokenizer when given; else the tokenizer shipped with the --model (a Hugging Face folder's
// tokenizer files, llama2.c's tokenizer.bin or tok<vocab>.bin beside the .bin); else, for
// sinklab's own byte-level models, the byte tokenizer (with BOS id 256 when the vocabulary has
// 257 entries). Null when neither flag leads to one.
std::unique_ptr<Tokenizer> choose_tokenizer(const std::string& tokenizer_flag, const std::string& model_flag);

}  // namespace sinklab::cli
