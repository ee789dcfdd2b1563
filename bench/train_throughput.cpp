// Training throughput of sinklab on a preset, for comparison with bench/torch_train.py in the
// same run (bench/train_throughput.sh, bench/train_long.sh). Prints one JSON line.
// usage: train_throughput [PRESET] [STEPS] [WARMUP_STEPS] [SEQ_LEN] [BATCH]
//   SEQ_LEN, BATCH: the preset at another T (its positions grow with it) and batch; 0 keeps the preset's.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "core/threads.h"
#include "training_steps.h"

using namespace sinklab;

int main(int argc, char** argv) {
    std::string preset = argc > 1 ? argv[1] : "tiny";
    const int steps = argc > 2 ? std::atoi(argv[2]) : 20;
    const int warmup_steps = argc > 3 ? std::atoi(argv[3]) : 3;
    set_threads(0);
    TrainConfig c = preset_config(preset);
    if (const int T = argc > 4 ? std::atoi(argv[4]) : 0; T > 0) c.seq_len = c.model.max_seq_len = T;
    if (const int B = argc > 5 ? std::atoi(argv[5]) : 0; B > 0) c.batch = B;
    ByteCorpus corpus = load_byte_corpus(default_corpus_path(), c.val_fraction);
    bench::TrainingSteps training(c, corpus);
    for (int s = 1; s <= warmup_steps; ++s) training.step(s);
    auto t0 = std::chrono::steady_clock::now();
    double loss = 0;
    for (int s = 1; s <= steps; ++s) loss = training.step(warmup_steps + s);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tokens_per_s = static_cast<double>(steps) * c.batch * c.seq_len / secs;
    // Model FLOPs per token: 6 x (parameters in matrix products) + 12 L T C for attention scores
    // and values (forward and backward, over the full T x T as PyTorch computes it; the blockwise
    // kernel computes the causal half, so at long T this count overstates sinklab's rate and
    // bench/train_long.sh compares tokens/s only).
    double matmul_params = 0;
    for (const auto& p : training.model().params())
        if (p.shape.size() == 2 && p.name != "embed.tokens" && p.name != "embed.positions") matmul_params += p.numel;
    const double flops_per_token = 6.0 * matmul_params + 12.0 * c.model.n_layers * c.seq_len * c.model.d_model;
    nlohmann::json out = {{"engine", "sinklab"},
                          {"preset", preset},
                          {"threads", num_threads()},
                          {"steps", steps},
                          {"seq_len", c.seq_len},
                          {"batch", c.batch},
                          {"tokens_per_s", tokens_per_s},
                          {"gflops", tokens_per_s * flops_per_token / 1e9},
                          {"loss", loss}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
}
