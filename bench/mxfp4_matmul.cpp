// The MXFP4 expert product alone (ops/mxfp4.h) at gpt-oss-20b's expert shapes (gate_up 5760 x 2880,
// down 2880 x 2880), for 1 token (a generation step), 16 and 128 tokens (an expert's share of a
// prompt): mxfp4_matmul, which decodes 16 rows at a time inside the product, against the float32
// product with the matrix decoded once beforehand (matmul_forward, OpenBLAS sgemm; 7.5 times the
// memory). Prints one JSON line per shape: the best milliseconds per call over REPEATS calls and
// GFLOP/s. bench/mxfp4_matmul.sh adds PyTorch and the ratios.
// usage: mxfp4_matmul [REPEATS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "core/threads.h"
#include "ops/matmul.h"
#include "ops/mxfp4.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

nlohmann::json time_shape(const char* name, int rows, int cols, int n, int repeats) {
    using namespace sinklab;
    Rng rng(7);
    Mxfp4Matrices w(1, rows, cols);
    for (int r = 0; r < rows; ++r) {
        for (int i = 0; i < w.blocks_per_row() * kMxfp4BlockBytes; ++i) w.row_blocks(0, r)[i] = static_cast<uint8_t>(rng.below(256));
        for (int b = 0; b < w.blocks_per_row(); ++b) w.row_scales(0, r)[b] = static_cast<uint8_t>(118 + rng.below(4));
    }
    std::vector<float> decoded(static_cast<size_t>(rows) * cols), x(static_cast<size_t>(n) * cols),
        out(static_cast<size_t>(n) * rows), bias(rows);
    w.decode_rows(0, 0, rows, decoded.data());
    for (float& v : x) v = static_cast<float>(rng.normal());
    for (float& v : bias) v = static_cast<float>(rng.normal());
    double mxfp4 = 1e30, f32 = 1e30;
    for (int r = 0; r < repeats; ++r) {
        auto t0 = Clock::now();
        mxfp4_matmul(out.data(), x.data(), n, w, 0, bias.data());
        mxfp4 = std::min(mxfp4, seconds_since(t0));
        t0 = Clock::now();
        matmul_forward(out.data(), x.data(), decoded.data(), bias.data(), n, cols, rows);
        f32 = std::min(f32, seconds_since(t0));
    }
    const double flops = 2.0 * n * rows * cols;
    return {{"engine", "sinklab"}, {"matrix", name}, {"rows", rows}, {"cols", cols}, {"tokens", n},
            {"threads", num_threads()}, {"mxfp4_ms", mxfp4 * 1e3}, {"float32_ms", f32 * 1e3},
            {"mxfp4_gflops", flops / mxfp4 * 1e-9}, {"float32_gflops", flops / f32 * 1e-9},
            {"mxfp4_bytes", w.bytes()}, {"float32_bytes", decoded.size() * sizeof(float)}};
}

}  // namespace

int main(int argc, char** argv) {
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 10;
    for (const auto& [name, rows, cols] : {std::tuple{"gate_up", 5760, 2880}, std::tuple{"down", 2880, 2880}})
        for (int n : {1, 16, 128}) std::printf("%s\n", time_shape(name, rows, cols, n, repeats).dump().c_str());
    return 0;
}
