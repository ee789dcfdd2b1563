// A tiktoken rank file with its rules: a sibling <name>.json when the input has a second file,
// otherwise tiktoken's own cl100k_base rules (the file is named after it).
#include "tokenizer_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sinklab;
    const std::string name = fuzz::split_files(data, size, 2).size() > 1 ? "ranks" : "cl100k_base";
    const auto folder = fuzz::write_input_files(data, size, {name + ".tiktoken", name + ".json"});
    fuzz::expect_clear_refusal_or_success([&] { fuzz::exercise(load_tokenizer(folder / (name + ".tiktoken"))); });
    return 0;
}
