// A llama2.c checkpoint (.bin): the header, the weights, and the model built from them.
#include "fuzz_support.h"
#include "model/hf_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sinklab;
    const auto file = fuzz::write_input_files(data, size, {"model.bin"}) / "model.bin";
    fuzz::expect_clear_refusal_or_success([&] { load_model(file); });
    return 0;
}
