// A Hugging Face tokenizer.json (byte-level BPE), with an optional tokenizer_config.json after it.
#include "tokenizer_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sinklab;
    const auto folder = fuzz::write_input_files(data, size, {"tokenizer.json", "tokenizer_config.json"});
    fuzz::expect_clear_refusal_or_success([&] { fuzz::exercise(load_tokenizer(folder)); });
    return 0;
}
