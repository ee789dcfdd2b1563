// The machine's single-precision GEMM peak through the same OpenBLAS and thread pool as sinklab:
// square row-major products C = A B at n = 2048 and 4096, best of several runs each. Beside it, the
// ceiling of the cores' FMA units (fma_gflops): no product, OpenBLAS's or anyone's, runs faster. Prints
// one JSON line; bench/train_throughput.sh reports training throughput against both.
// usage: sgemm_peak [REPEATS]
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/threads.h"

namespace {

// 16 floats: one AVX-512 register, or two AVX2 ones where the machine has no AVX-512.
using Lanes = float __attribute__((vector_size(64)));
constexpr int kLanes = sizeof(Lanes) / sizeof(float);

// Where the chains' sum is stored, so that they are not optimised away.
volatile float fma_chains_sum;

// Every thread runs independent multiply-add chains, more of them than the FMA latency times the
// number of FMA units, so that the units never wait. -march=native (SINKLAB_NATIVE) makes each a fused
// multiply-add; a build without it measures what it targets instead.
double fma_ceiling_gflops() {
    constexpr int kChains = 16;
    constexpr long kRounds = 50'000'000;
    double best = 0.0;
    for (int attempt = 0; attempt < 3; ++attempt) {
        const auto t0 = std::chrono::steady_clock::now();
        float sink = 0.0f;
        #pragma omp parallel reduction(+ : sink)
        {
            Lanes acc[kChains];
            for (int c = 0; c < kChains; ++c) acc[c] = Lanes{} + static_cast<float>(c);
            const Lanes scale = Lanes{} + 0.999999f, shift = Lanes{} + 1e-7f;
            for (long r = 0; r < kRounds / kChains; ++r)
                for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * scale + shift;
            for (int c = 0; c < kChains; ++c)
                for (int l = 0; l < kLanes; ++l) sink += acc[c][l];
        }
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        fma_chains_sum = sink;
        best = std::max(best, 2.0 * kLanes * (kRounds / kChains) * kChains * sinklab::num_threads() / secs / 1e9);
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
    sinklab::set_threads(0);
    double best = 0.0;
    int best_n = 0;
    for (int n : {2048, 4096}) {
        std::vector<float> a(static_cast<size_t>(n) * n, 0.5f), b(a.size(), 0.25f), c(a.size());
        auto product = [&] {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f,
                        c.data(), n);
        };
        product();  // warm-up: page faults, OpenBLAS buffers
        for (int r = 0; r < repeats; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            product();
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const double gflops = 2.0 * n * n * static_cast<double>(n) / secs / 1e9;
            if (gflops > best) best = gflops, best_n = n;
        }
    }
    const nlohmann::json out = {{"engine", "openblas"},
                                {"kernel", openblas_get_corename()},
                                {"threads", sinklab::num_threads()},
                                {"n", best_n},
                                {"gflops", best},
                                {"fma_gflops", fma_ceiling_gflops()}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
}
