// Decoding speed of the streaming caches on a GPT-2-124M-shaped model (d 768, 12 layers, 12 heads,
// vocab 50257, tied embeddings, GELU, LayerNorm, learned positions; random weights: speed does not
// depend on them), in one run:
// - sink:4+W against recompute:W+5 (the same attention span, C = W + 5 tokens) at C = 256, 512,
//   1024 and 2048, with the ratio printed (StreamingLLM's Table 5 reports up to 22.2x on a GPU);
// - each sink figure against the memory bound: the bytes one token reads (every weight once, and
//   the keys and values of the C cached tokens in every layer) over the bandwidth measured in the
//   same run (a parallel read of 512 MiB, best of 5). The goal is at least half of the bound.
// Prints one JSON line per cache size and a summary. usage: stream_decode [SINK_STEPS] [RECOMPUTE_STEPS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "core/rng.h"
#include "core/threads.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "stream/streaming_cache.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace sinklab;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Bytes per second of a parallel read of a buffer far larger than the caches (best of 5). Each
// thread sums its contiguous share into 64 independent accumulators, so that the loads, not an
// add's latency, set the pace.
double read_bandwidth() {
    const size_t n = (size_t(512) << 20) / sizeof(float);
    std::vector<float> buffer(n, 1.0f);
    double best = 0.0;
    for (int r = 0; r < 5; ++r) {
        double sum = 0.0;
        const auto t0 = Clock::now();
        #pragma omp parallel reduction(+ : sum)
        {
            const size_t team = omp_get_num_threads(), tid = omp_get_thread_num(), blocks = n / 64;
            const size_t begin = blocks * tid / team * 64, end = blocks * (tid + 1) / team * 64;
            float acc[64] = {};
            for (size_t i = begin; i < end; i += 64)
                #pragma omp simd
                for (int k = 0; k < 64; ++k) acc[k] += buffer[i + k];
            for (float a : acc) sum += a;
        }
        const double s = seconds_since(t0);
        if (sum != static_cast<double>(n)) std::printf("# read check failed: %g\n", sum);  // keeps the sum
        best = std::max(best, n * sizeof(float) / s);
    }
    return best;
}

std::vector<int32_t> random_tokens(const Transformer& model, int n) {
    Rng rng(5);
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& id : ids) id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(model.config().vocab_size)));
    return ids;
}

// Tokens per second of `steps` one-token steps of sink:4+(C - 5) after its cache was filled with C - 1 tokens.
double sink_rate(Transformer& model, int C, int steps) {
    StreamingCache cache(model, SinkCache{4, C - 5});
    const std::vector<int32_t> ids = random_tokens(model, C - 1 + steps);
    cache.step(ids.data(), C - 1);
    const auto t0 = Clock::now();
    for (int s = 0; s < steps; ++s) cache.step(&ids[static_cast<size_t>(C - 1 + s)], 1);
    return steps / seconds_since(t0);
}

// Tokens per second of recompute:C once its window is full: each token is a forward over the last C
// tokens in a fresh cache, which is StreamingCache::recompute_step's work (timed here without the
// C - 1 warm-up tokens that fill its window, which would cost C / 2 such forwards).
double recompute_rate(Transformer& model, int C, int steps) {
    KVCache cache(model.config(), C);
    const std::vector<int32_t> ids = random_tokens(model, C + steps);
    std::vector<int> positions(static_cast<size_t>(C));
    std::iota(positions.begin(), positions.end(), 0);
    const auto t0 = Clock::now();
    for (int s = 0; s < steps; ++s) {
        cache.clear();
        model.forward_step(&ids[static_cast<size_t>(s + 1)], positions.data(), C, cache);
    }
    return steps / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
    const int sink_steps = argc > 1 ? std::atoi(argv[1]) : 32;
    const int recompute_steps = argc > 2 ? std::atoi(argv[2]) : 2;
    ModelConfig c = ModelConfig::for_style("gpt2");
    c.vocab_size = 50257;
    c.d_model = 768;
    c.n_layers = 12;
    c.n_heads = c.n_kv_heads = 12;
    c.max_seq_len = 2048;
    c.tied_embeddings = true;
    Transformer model(c);
    model.init_weights(1);
    const double bandwidth = read_bandwidth();
    const double weight_bytes = static_cast<double>(model.num_params()) * sizeof(float);
    std::printf("# GPT-2-124M shape: %zu parameters, %d threads, read bandwidth %.1f GB/s\n", model.num_params(),
                num_threads(), bandwidth * 1e-9);
    for (int C : {256, 512, 1024, 2048}) {
        // both attend over C tokens: sink's 4 + (C - 5) + the new one, recompute's window of C
        const double sink = sink_rate(model, C, sink_steps);
        const double recompute = recompute_rate(model, C, recompute_steps);
        const double cache_bytes = static_cast<double>(C) * c.n_layers * 2 * c.d_model * sizeof(float);
        const double bound = bandwidth / (weight_bytes + cache_bytes);
        const nlohmann::json line = {{"cache", C},
                                     {"sink_tokens_per_s", sink},
                                     {"recompute_tokens_per_s", recompute},
                                     {"speedup", sink / recompute},
                                     {"bytes_per_token", weight_bytes + cache_bytes},
                                     {"memory_bound_tokens_per_s", bound},
                                     {"share_of_bound", sink / bound},
                                     {"threads", num_threads()}};
        std::printf("%s\n", line.dump().c_str());
        std::printf("# cache %4d: sink %.2f tok/s, recompute %.3f tok/s, %.1fx; memory bound %.2f tok/s, sink at "
                    "%.0f%% of it\n",
                    C, sink, recompute, sink / recompute, bound, 100.0 * sink / bound);
        std::fflush(stdout);
    }
    return 0;
}
