// safetensors and the weight store: one file (model.safetensors), or an index
// (model.safetensors.index.json) and its shard (shard.safetensors). Every tensor is read.
#include "fuzz_support.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sinklab;
    const bool sharded = fuzz::split_files(data, size, 2).size() > 1;
    using Names = std::vector<std::string>;
    const Names names = sharded ? Names{"shard.safetensors", "model.safetensors.index.json"} : Names{"model.safetensors"};
    const auto folder = fuzz::write_input_files(data, size, names);
    fuzz::expect_clear_refusal_or_success([&] {
        const WeightStore store(folder);
        for (const std::string& name : store.names()) {
            const TensorInfo& info = store.info(name);
            fuzz::expect_clear_refusal_or_success([&] { store.read_f32(name); });
            fuzz::expect_clear_refusal_or_success([&] { store.read_f32(name, info.shape); });
        }
    });
    if (!sharded) {
        fuzz::expect_clear_refusal_or_success([&] {
            const SafetensorsFile file(folder / "model.safetensors");
            for (const std::string& name : file.names())
                if (dtype_is_integer(file.info(name).dtype)) file.read_i64(name);
        });
    }
    return 0;
}
