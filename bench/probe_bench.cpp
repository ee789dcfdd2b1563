// The probe's benchmark models and its in-process run, for bench/probe_bench.sh and
// bench/probe_memory.sh. Model shapes (random weights, init_weights(1): the probe's figures do not
// depend on training):
//   gpt2-124m: GPT-2 small: gpt2 style, vocab 50257, d 768, 12 layers, 12 heads, 1024 learned
//              positions, tied embeddings (124M parameters)
//   long-768:  llama style (RoPE, SwiGLU), byte vocabulary 256, d 768, 12 layers, 12 heads,
//              made for 64 positions (max_seq_len 64): probes at any T extrapolate its RoPE positions
//   long-768-kv_bias: the same with the kv_bias design (a slot: a learned key and value per head)
// usage: probe_bench model DIR SHAPE          writes the model folder
//        probe_bench run SHAPE TEXT T THREADS  builds the same model in memory and probes the first
//                                              T bytes of TEXT (all metrics, one sample); prints one
//                                              JSON line: seconds, peak RSS and the metrics
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/threads.h"
#include "model/checkpoint.h"
#include "probe/probe.h"
#include "probe/probe_report.h"
#include "tokenizer/tokenizer.h"

using namespace sinklab;

namespace {

std::unique_ptr<Transformer> bench_model(const std::string& shape) {
    SINKLAB_CHECK(shape == "gpt2-124m" || shape == "long-768" || shape == "long-768-kv_bias", "bench",
                  "unknown shape '{}' (gpt2-124m, long-768, long-768-kv_bias)", shape);
    ModelConfig c = ModelConfig::for_style(shape == "gpt2-124m" ? "gpt2" : "llama");
    c.d_model = 768;
    c.n_layers = 12;
    c.n_heads = c.n_kv_heads = 12;
    if (shape == "gpt2-124m") {
        c.vocab_size = 50257;
        c.max_seq_len = 1024;
        c.tied_embeddings = true;
    } else {
        c.vocab_size = 256;
        c.max_seq_len = 64;
        if (shape == "long-768-kv_bias") c.attention = AttentionSpec::parse("kv_bias");
    }
    auto model = std::make_unique<Transformer>(c);
    model->init_weights(1);
    return model;
}

int run(const std::string& shape, const std::string& text_file, int T, int threads) {
    set_threads(threads);
    auto model = bench_model(shape);
    const auto bytes = make_byte_tokenizer(false);
    const ProbeSamples samples = make_probe_samples(InputSpec::parse("natural:" + text_file),
                                                    read_text_file(text_file, "bench"), text_file, bytes.get(),
                                                    model->config().vocab_size, T, 1, std::nullopt, 0);
    const ProbeResult r = run_probe(*model, samples, ProbeOptions{});
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const nlohmann::json out = {{"engine", "sinklab"},
                                {"threads", threads},
                                {"seq_len", T},
                                {"attention_path", attention_kernel_name(r.kernel)},
                                {"seconds", r.seconds},
                                {"peak_rss_mb", usage.ru_maxrss / 1024.0},
                                {"metrics", probe_result_json(r)}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    try {
        if (mode == "model" && argc == 4) {
            auto model = bench_model(argv[3]);
            save_model_folder(*model, argv[2]);
            std::fprintf(stderr, "%s: %s, %zu parameters\n", argv[2], argv[3], model->num_params());
            return 0;
        }
        if (mode == "run" && argc == 6) return run(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]));
    } catch (const Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "usage: %s model DIR gpt2-124m|long-768|long-768-kv_bias\n       %s run SHAPE TEXT SEQ_LEN THREADS\n", argv[0],
                 argv[0]);
    return 2;
}
