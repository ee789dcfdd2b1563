// llama2.c's tokenizer.bin, read to its end (as for a model folder) and at a vocabulary size
// taken from the input's last byte (as run.c takes it from the model header).
#include "tokenizer_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sinklab;
    const auto file = fuzz::write_input_files(data, size, {"tokenizer.bin"}) / "tokenizer.bin";
    fuzz::expect_clear_refusal_or_success([&] { fuzz::exercise(load_llama2c_tokenizer(file, 0)); });
    const int64_t vocab = size > 0 ? 256 + data[size - 1] : 1;
    fuzz::expect_clear_refusal_or_success([&] { fuzz::exercise(load_llama2c_tokenizer(file, vocab)); });
    return 0;
}
