// An encoder's WordPiece tokenizer (BERT): vocab.txt and an optional tokenizer_config.json
// (do_lower_case, strip_accents, never_split, the special tokens), as load_tokenizer finds them in
// a model folder. A tokenizer that loads also frames a sentence pair ([CLS] A [SEP] B [SEP]).
#include "tokenizer_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sinklab;
    const auto folder = fuzz::write_input_files(data, size, {"vocab.txt", "tokenizer_config.json"});
    fuzz::expect_clear_refusal_or_success([&] { fuzz::exercise(load_tokenizer(folder)); });
    return 0;
}
