// A `sinklab train` TOML config: read, applied over the tiny preset and validated (the memory
// estimate included), as `sinklab train CONFIG.toml` does before training.
#include "fuzz_support.h"
#include "train/trainer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sinklab;
    const auto file = fuzz::write_input_files(data, size, {"config.toml"}) / "config.toml";
    fuzz::expect_clear_refusal_or_success([&] {
        TrainConfig config = preset_config("tiny");
        apply_settings(config, read_toml_settings(file), file.string());
        const TrainConfig prepared = prepare_train_config(config);
        train_config_from_json(prepared.to_json(), "round trip");
    });
    return 0;
}
