// A model folder's tokenizer.model: load_tokenizer tells a tiktoken-format file (Llama 3) from a
// SentencePiece protobuf (Llama 2, Gemma) and loads either.
#include "tokenizer_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sinklab;
    const auto folder = fuzz::write_input_files(data, size, {"tokenizer.model"});
    fuzz::expect_clear_refusal_or_success([&] { fuzz::exercise(load_tokenizer(folder)); });
    return 0;
}
