// The attention kernel alone, forward and backward, causal softmax, at the shapes the presets train
// (tiny: B 16, 4 heads of 32; small: B 8, 6 heads of 64; T 256). Prints one JSON line per shape:
// the best milliseconds per call over REPEATS calls, and GFLOP/s over the causal half of the
// kernel's products (two forward, four backward). bench/attention_kernel.sh compares with PyTorch.
// usage: attention_kernel [REPEATS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/attention.h"
#include "core/rng.h"
#include "core/threads.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

nlohmann::json time_shape(const char* preset, int B, int NH, int HS, int T, int repeats) {
    using namespace sinklab;
    const AttentionDims d{B, T, NH, NH, HS};
    Rng rng(7);
    std::vector<float> qkv(static_cast<size_t>(B) * T * d.qkv_stride()),
        dout(static_cast<size_t>(B) * T * d.out_stride());
    for (float& x : qkv) x = static_cast<float>(rng.normal());
    for (float& x : dout) x = static_cast<float>(rng.normal());
    std::vector<float> out(dout.size()), dqkv(qkv.size()), weights(static_cast<size_t>(B) * NH * T * T);
    const AttentionSpec spec;  // softmax
    const AttentionMask mask;  // causal
    const AttentionInputs in{qkv.data()};
    double fwd = 1e30, bwd = 1e30;
    for (int r = 0; r < repeats; ++r) {
        auto t0 = Clock::now();
        attention_forward(out.data(), weights.data(), in, d, spec, mask);
        fwd = std::min(fwd, seconds_since(t0));
        std::fill(dqkv.begin(), dqkv.end(), 0.0f);
        t0 = Clock::now();
        attention_backward(dqkv.data(), dout.data(), in, weights.data(), d, spec, mask);
        bwd = std::min(bwd, seconds_since(t0));
    }
    const double causal_flops = 2.0 * B * NH * HS * (T * (T + 1) / 2.0);  // one product over the causal half
    return {{"engine", "sinklab"},
            {"preset", preset},
            {"B", B},
            {"heads", NH},
            {"head_size", HS},
            {"T", T},
            {"threads", sinklab::num_threads()},
            {"forward_ms", fwd * 1e3},
            {"backward_ms", bwd * 1e3},
            {"forward_gflops", 2 * causal_flops / fwd * 1e-9},
            {"backward_gflops", 4 * causal_flops / bwd * 1e-9}};
}

}  // namespace

int main(int argc, char** argv) {
    const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
    std::printf("%s\n", time_shape("tiny", 16, 4, 32, 256, repeats).dump().c_str());
    std::printf("%s\n", time_shape("small", 8, 6, 64, 256, repeats).dump().c_str());
}
