// The attention kernels alone, causal softmax: the materialised (reference) kernel and the blockwise
// one, forward and backward, at the shapes the presets train (tiny: B 16, 4 heads of 32; small:
// B 8, 6 heads of 64; T 256), at short T (16, 32 and a probe's default 64, 4096 tokens, tiny's heads), at long T (tiny's
// heads at T 4096, B 1), and the blockwise forward alone at a probe's shape (12 heads of 64, T 8192). Prints one JSON line per kernel and shape: the
// best milliseconds per call over REPEATS calls, and GFLOP/s over the causal half of the products
// (two forward, four backward; the blockwise backward computes a fifth, its scores again, which
// is not counted). bench/attention_kernel.sh compares with PyTorch.
// usage: attention_kernel [REPEATS] [QUERY_ROWS KEY_COLUMNS [SHAPE]]   (the blockwise tiles, 0 0 for the
//        kernel's own; SHAPE: one of the shapes' names alone)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/attention.h"
#include "attention/blockwise_attention.h"
#include "core/rng.h"
#include "core/threads.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace sinklab;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Shape {
    const char* name;
    int B, NH, HS, T;
    bool materialised, backward;
};

nlohmann::json time_shape(const Shape& s, bool blockwise, int repeats, const BlockwiseTiles& tiles) {
    const AttentionDims d{s.B, s.T, s.NH, s.NH, s.HS};
    Rng rng(7);
    std::vector<float> qkv(static_cast<size_t>(s.B) * s.T * d.qkv_stride()),
        dout(static_cast<size_t>(s.B) * s.T * d.out_stride());
    for (float& x : qkv) x = static_cast<float>(rng.normal());
    for (float& x : dout) x = static_cast<float>(rng.normal());
    const size_t rows = static_cast<size_t>(s.B) * s.NH * s.T;
    std::vector<float> out(dout.size()), dqkv(qkv.size()), shift(rows), sum(rows);
    std::vector<float> weights(blockwise ? 0 : rows * s.T);
    const AttentionSpec spec;  // softmax
    const AttentionMask mask;  // causal
    const AttentionInputs in{qkv.data(), {}};
    const AttentionRowStats stats{shift.data(), sum.data(), nullptr};
    double fwd = 1e30, bwd = 1e30;
    for (int r = 0; r < repeats; ++r) {
        auto t0 = Clock::now();
        if (blockwise)
            blockwise_attention_forward(out.data(), stats, {}, in, {}, d, spec, mask, tiles);
        else
            attention_forward(out.data(), weights.data(), in, d, spec, mask);
        fwd = std::min(fwd, seconds_since(t0));
        if (!s.backward) continue;
        std::fill(dqkv.begin(), dqkv.end(), 0.0f);
        t0 = Clock::now();
        if (blockwise)
            blockwise_attention_backward(dqkv.data(), {}, dout.data(), out.data(), in, {}, stats, d, spec, mask,
                                         GradWrite::accumulate, tiles);
        else
            attention_backward(dqkv.data(), dout.data(), in, weights.data(), d, spec, mask);
        bwd = std::min(bwd, seconds_since(t0));
    }
    const double causal_flops = 2.0 * s.B * s.NH * s.HS * (s.T * (s.T + 1) / 2.0);  // one product, causal half
    nlohmann::json j = {{"engine", "sinklab"},
                        {"kernel", blockwise ? "blockwise" : "materialised"},
                        {"preset", s.name},
                        {"B", s.B},
                        {"heads", s.NH},
                        {"head_size", s.HS},
                        {"T", s.T},
                        {"threads", num_threads()},
                        {"forward_ms", fwd * 1e3},
                        {"forward_gflops", 2 * causal_flops / fwd * 1e-9}};
    if (s.backward) {
        j["backward_ms"] = bwd * 1e3;
        j["backward_gflops"] = 4 * causal_flops / bwd * 1e-9;
    }
    if (blockwise) j["tiles"] = {tiles.query_rows, tiles.key_columns};
    return j;
}

}  // namespace

int main(int argc, char** argv) {
    const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
    BlockwiseTiles tiles;
    if (argc > 3 && std::atoi(argv[2]) > 0) tiles = {std::atoi(argv[2]), std::atoi(argv[3])};
    const std::string only = argc > 4 ? argv[4] : "";
    const Shape shapes[] = {{"tiny_T16", 256, 4, 32, 16, true, true},
                            {"tiny_T32", 128, 4, 32, 32, true, true},
                            {"tiny_T64", 64, 4, 32, 64, true, true},
                            {"tiny", 16, 4, 32, 256, true, true},
                            {"small", 8, 6, 64, 256, true, true},
                            {"tiny_T4096", 1, 4, 32, 4096, true, true},
                            {"probe_T8192", 1, 12, 64, 8192, false, false}};
    for (const Shape& s : shapes) {
        if (!only.empty() && only != s.name) continue;
        if (s.materialised) std::printf("%s\n", time_shape(s, false, repeats, tiles).dump().c_str());
        std::printf("%s\n", time_shape(s, true, s.T > 4096 ? std::min(repeats, 3) : repeats, tiles).dump().c_str());
        std::fflush(stdout);
    }
}
