// A gpt-oss folder: config.json (model_type gpt_oss, quantization_config mxfp4) and a
// model.safetensors whose experts are MXFP4 (`*_blocks` U8 codes, `*_scales` U8 exponents). A model
// that loads runs one forward over two tokens, so that the MXFP4 experts, the router and the sink
// logits are used, not only read. Seed: regressions/gpt_oss/ (make_gpt_oss_seed.py).
#include "fuzz_support.h"
#include "model/hf_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sinklab;
    const auto folder = fuzz::write_input_files(data, size, {"config.json", "model.safetensors"});
    fuzz::expect_clear_refusal_or_success([&] {
        const auto model = load_model(folder);
        const int last = model->config().vocab_size - 1;
        const int32_t tokens[2] = {0, last};
        model->forward(tokens, nullptr, 1, model->config().max_seq_len >= 2 ? 2 : 1);
    });
    return 0;
}
