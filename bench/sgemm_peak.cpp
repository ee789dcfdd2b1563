// The machine's single-precision GEMM peak through the same OpenBLAS and thread pool as sinklab:
// square row-major products C = A B at n = 2048 and 4096, best of several runs each. Prints one
// JSON line; bench/train_throughput.sh reports training throughput against it.
// usage: sgemm_peak [REPEATS]
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/threads.h"

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
                                {"gflops", best}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
}
