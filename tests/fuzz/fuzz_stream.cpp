// What `sinklab stream` reads that the model and tokenizer targets do not: its settings (the
// --policy list and --positions, --kv, --kv-exact, one per line, as a user types them), the
// trainer_state.json of the model's run (which text it trained on, for the overlap line), and the
// stream JSON it writes, as `sinklab report` reads it back. Settings that parse drive a
// StreamingCache of a tiny model (learned positions and RoPE) over the input's bytes as tokens, in
// steps of one to four tokens, so that every policy evicts, re-indexes and quantizes.
#include <algorithm>
#include <sstream>

#include "fuzz_support.h"
#include "io/corpus_bytes.h"
#include "lab/run_sources.h"
#include "lab/stream_run.h"
#include "model/transformer.h"
#include "ops/kv_quant.h"
#include "stream/streaming_cache.h"
#include "train/train_config.h"

namespace {

using namespace sinklab;

Transformer& tiny_model(const std::string& style) {
    auto make = [](const std::string& s) {
        ModelConfig c = ModelConfig::for_style(s);
        c.vocab_size = 64;
        c.d_model = 16;
        c.n_layers = 1;
        c.n_heads = 2;
        c.n_kv_heads = 1;
        c.max_seq_len = 48;
        auto model = std::make_unique<Transformer>(c);
        model->init_weights(23);
        return model;
    };
    static const std::unique_ptr<Transformer> gpt2 = make("gpt2"), llama = make("llama");
    return style == "gpt2" ? *gpt2 : *llama;
}

// A cache this large is one a user may ask for and get (RoPE has no position table to bound it);
// the fuzzer's 2 GB limit would call it a finding.
constexpr int kMostRowsFuzzed = 4096;

void stream_through(const std::string& style, const CachePolicy& policy, const StreamingOptions& options,
                    std::string_view bytes) {
    Transformer& model = tiny_model(style);
    if (policy_capacity(policy) > kMostRowsFuzzed) return;
    StreamingCache cache(model, policy, options);
    const size_t steps = std::min<size_t>(bytes.size(), 48);
    for (size_t i = 0; i < steps; ++i) {
        const int n = 1 + static_cast<unsigned char>(bytes[i]) % 4;
        int32_t tokens[4];
        for (int k = 0; k < n; ++k) tokens[k] = static_cast<unsigned char>(bytes[(i + k) % bytes.size()]) % 64;
        if (!cache.can_take(n)) return;
        cache.step(tokens, n);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto folder = fuzz::write_input_files(data, size, {"settings.txt", "trainer_state.json", "stream.json"});
    const std::vector<std::string_view> files = fuzz::split_files(data, size, 3);

    fuzz::expect_clear_refusal_or_success([&] {
        std::istringstream lines{std::string(files[0])};
        // the defaults of the flags (cli/streaming_flags.h), each parsed as the command parses it
        std::string policies = "sink:4+8", positions = "reindexed", kv = "f32", kv_exact = "none", line;
        for (std::string* setting : {&policies, &positions, &kv, &kv_exact})
            if (std::getline(lines, line)) *setting = line;
        const std::vector<CachePolicy> parsed = parse_cache_policies(policies);
        StreamingOptions options;
        options.positions = parse_stream_positions(positions);
        options.kv = parse_kv_precision(kv);
        options.exact = parse_exact_tokens(kv_exact);
        for (const CachePolicy& policy : parsed) {
            policy_name(policy);
            policy_settings(policy);
            for (const char* style : {"gpt2", "llama"})
                fuzz::expect_clear_refusal_or_success([&] { stream_through(style, policy, options, files[0]); });
        }
    });

    if (files.size() > 1) {
        fuzz::expect_clear_refusal_or_success([&] {
            const TrainConfig trained = recorded_train_config(folder / "trainer_state.json", "stream");
            validation_bytes(size_t{1} << 40, trained.val_fraction);
        });
    }

    if (files.size() > 2) {
        fuzz::expect_clear_refusal_or_success([&] {
            for (const StreamResults& stream : find_report_sources({folder / "stream.json"}).streams) {
                fuzz::expect_clear_refusal_or_success([&] { stream_figure(stream.json); });
                fuzz::expect_clear_refusal_or_success([&] { stream_table(stream.json); });
            }
        });
    }
    return 0;
}
