// config.json through every architecture: a Hugging Face config (any supported model_type) or a
// sinklab one ("model_type": "sinklab"), with an optional model.safetensors after it. The model is
// built only when the weights hold what the config asks for.
#include "fuzz_support.h"
#include "model/hf_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sinklab;
    const auto folder = fuzz::write_input_files(data, size, {"config.json", "model.safetensors"});
    fuzz::expect_clear_refusal_or_success([&] { load_model(folder); });
    return 0;
}
