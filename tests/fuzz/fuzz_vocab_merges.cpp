// GPT-2's vocab.json and merges.txt (two files).
#include "tokenizer_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sinklab;
    const auto folder = fuzz::write_input_files(data, size, {"vocab.json", "merges.txt"});
    fuzz::expect_clear_refusal_or_success([&] { fuzz::exercise(load_tokenizer(folder)); });
    return 0;
}
