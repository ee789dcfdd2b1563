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
#include <vector>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "core/threads.h"
#include "model/transformer.h"
#include "stream/streaming_cache.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace sinklab;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Bytes per second of a parallel read of a buffer far larger than the caches.
double read_bandwidth() {
    const size_t n = (size_t(512) << 20) / sizeof(float);
    std::vector<float> buffer(n, 1.0f);
    double best = 0.0;
    for (int r = 0; r < 5; ++r) {
        float sum = 0.0f;
        const auto t0 = Clock::now();
        #pragma omp parallel for simd reduction(+ : sum) schedule(static)
        for (size_t i = 0; i < n; ++i) sum += buffer[i];
        const double s = seconds_since(t0);
        if (sum != static_cast<float>(n) && sum != sum) std::printf("?");  // keeps the sum
        best = std::max(best, n * sizeof(float) / s);
    }
    return best;
}

// Tokens per second of `steps` one-token steps after a cache already filled with `fill` tokens.
double decode_rate(Transformer& model, const CachePolicy& policy, int fill, int steps) {
    StreamingCache cache(model, policy);
    Rng rng(5);
    std::vector<int32_t> ids(static_cast<size_t>(fill + steps));
    for (auto& id : ids) id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(model.config().vocab_size)));
    cache.step(ids.data(), fill);
    const auto t0 = Clock::now();
    for (int s = 0; s < steps; ++s) cache.step(&ids[static_cast<size_t>(fill + s)], 1);
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
        const SinkCache sink{4, C - 5};  // attends over C tokens: 4 + (C - 5) + the new one
        const RecomputeWindow recompute{C};
        const double sink_rate = decode_rate(model, sink, C - 1, sink_steps);
        const double recompute_rate = decode_rate(model, recompute, 0, recompute_steps);
        const double cache_bytes = static_cast<double>(C) * c.n_layers * 2 * c.d_model * sizeof(float);
        const double bound = bandwidth / (weight_bytes + cache_bytes);
        const nlohmann::json line = {{"cache", C},
                                     {"sink_tokens_per_s", sink_rate},
                                     {"recompute_tokens_per_s", recompute_rate},
                                     {"speedup", sink_rate / recompute_rate},
                                     {"bytes_per_token", weight_bytes + cache_bytes},
                                     {"memory_bound_tokens_per_s", bound},
                                     {"share_of_bound", sink_rate / bound},
                                     {"threads", num_threads()}};
        std::printf("%s\n", line.dump().c_str());
        std::printf("# cache %4d: sink %.2f tok/s, recompute %.3f tok/s, %.1fx; memory bound %.2f tok/s, sink at "
                    "%.0f%% of it\n",
                    C, sink_rate, recompute_rate, sink_rate / recompute_rate, bound, 100.0 * sink_rate / bound);
        std::fflush(stdout);
    }
    return 0;
}
