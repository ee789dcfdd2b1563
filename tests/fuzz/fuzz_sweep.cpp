// A sweep file: read, expanded and every run validated, as `sinklab sweep` does before training.
#include "fuzz_support.h"
#include "train/sweep.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sinklab;
    const auto file = fuzz::write_input_files(data, size, {"sweep.toml"}) / "sweep.toml";
    fuzz::expect_clear_refusal_or_success([&] {
        const SweepPlan plan = read_sweep(file, {});
        for (const SweepRun& run : plan.runs) sweep_run_name(run.values);
    });
    return 0;
}
