#pragma once
// Byte-level BPE (GPT-2, Llama 3, Qwen2, ...): what the vocab.json + merges.txt and tokenizer.json
// loaders read, and the tokenizer built from it.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace sinklab {

struct BpeSpec {
    std::string source;                                   // the file(s), for error messages
    std::vector<std::pair<std::string, int32_t>> vocab;   // byte-level spelling -> id
    std::vector<std::pair<std::string, std::string>> merges;  // byte-level spellings, by rank
    std::function<std::string(size_t)> describe_merge;    // "merges.txt line 7", for errors
    std::vector<AddedToken> added_tokens;
    Normalizer normalizer;
    PreTokenizer pre_tokenizer;
    bool ignore_merges = false;  // a piece that is itself in the vocabulary skips merging (Llama 3)
};

std::unique_ptr<Tokenizer> make_bpe_tokenizer(BpeSpec spec);

}  // namespace sinklab
