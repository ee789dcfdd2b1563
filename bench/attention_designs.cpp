// Training throughput of every attention design on one preset (tiny by default: d 128, 4 layers,
// 4 heads, seq 256, batch 16): tokens/s of full training steps (forward, backward, clipping,
// AdamW) and the ratio to softmax, one table (bench/attention_designs.sh). The designs are timed
// in turn, ROUNDS times over, each right after a softmax run; the table shows each design's best
// tokens/s and the median over rounds of its ratio to the softmax run beside it. Ratios are taken
// on tokens per CPU-second of this process (all its threads; run with OMP_WAIT_POLICY=PASSIVE so
// that waiting threads do not spin), which other processes' load disturbs much less than wall time.
// usage: attention_designs [PRESET] [STEPS] [WARMUP_STEPS] [ROUNDS] [DESIGN ...]
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/threads.h"
#include "training_steps.h"

using namespace sinklab;

namespace {

struct Throughput {
    double wall = 0.0;  // tokens per second
    double cpu = 0.0;   // tokens per CPU-second of the process
};

double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

Throughput throughput(const TrainConfig& c, const ByteCorpus& corpus, int steps, int warmup_steps) {
    bench::TrainingSteps training(c, corpus);
    for (int s = 1; s <= warmup_steps; ++s) training.step(s);
    const auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = cpu_seconds();
    for (int s = 1; s <= steps; ++s) training.step(warmup_steps + s);
    const double cpu = cpu_seconds() - cpu0;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double trained = static_cast<double>(steps) * c.batch * c.seq_len;
    return {trained / wall, trained / cpu};
}

}  // namespace

int main(int argc, char** argv) {
    const std::string preset = argc > 1 ? argv[1] : "tiny";
    const int steps = argc > 2 ? std::atoi(argv[2]) : 5;
    const int warmup_steps = argc > 3 ? std::atoi(argv[3]) : 1;
    const int rounds = argc > 4 ? std::max(1, std::atoi(argv[4])) : 2;
    std::vector<std::string> designs(argv + std::min(argc, 5), argv + argc);
    if (designs.empty()) designs = AttentionSpec::known_names();
    set_threads(0);
    TrainConfig base = preset_config(preset);
    const ByteCorpus corpus = load_byte_corpus(default_corpus_path(), base.val_fraction);
    std::printf("# preset %s (d %d, %d layers, %d heads, seq %d, batch %d), %d threads, %d steps after %d warm-up, "
                "best of %d rounds\n",
                preset.c_str(), base.model.d_model, base.model.n_layers, base.model.n_heads, base.seq_len, base.batch,
                num_threads(), steps, warmup_steps, rounds);
    std::printf("# OpenBLAS kernel: %s (%s)\n", openblas_get_corename(), openblas_get_config());
    // Each design runs right after a softmax run, and its ratio is taken against that run: the
    // speed of a shared virtual machine drifts over minutes, much less within one pair.
    TrainConfig softmax_config = base;
    softmax_config.model.attention = AttentionSpec::parse("softmax");
    std::vector<Throughput> best(designs.size());
    std::vector<std::vector<double>> ratios(designs.size());
    for (int round = 0; round < rounds; ++round)
        for (size_t d = 0; d < designs.size(); ++d) {
            const Throughput reference = throughput(softmax_config, corpus, steps, warmup_steps);
            TrainConfig c = base;
            c.model.attention = AttentionSpec::parse(designs[d]);
            const Throughput t = throughput(c, corpus, steps, warmup_steps);
            best[d].wall = std::max(best[d].wall, t.wall);
            best[d].cpu = std::max(best[d].cpu, t.cpu);
            ratios[d].push_back(t.cpu / reference.cpu);
        }
    std::printf("%-26s %12s %16s %12s\n", "design", "tokens/s", "tokens/cpu-s", "vs softmax");
    for (size_t d = 0; d < designs.size(); ++d) {
        std::vector<double>& r = ratios[d];
        std::sort(r.begin(), r.end());
        std::printf("%-26s %12.0f %16.0f %11.2fx\n", designs[d].c_str(), best[d].wall, best[d].cpu, r[r.size() / 2]);
    }
    return 0;
}
