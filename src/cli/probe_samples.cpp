#include "cli/probe_samples.h"

#include "core/files.h"
#include "model/transformer.h"
#include "probe/probe.h"

namespace sinklab::cli {

void add_sample_options(CLI::App* cmd, SampleFlags& flags) {
    cmd->add_option("--input", flags.input,
                    "natural[:FILE] (text through the model's tokenizer; default: the default corpus's validation "
                    "split), random (uniform ids, seeded), repeat[:ID] (one id T times, default 0)")
        ->capture_default_str();
    cmd->add_option("--seq-len", flags.seq_len, "tokens per sample T")->capture_default_str();
    cmd->add_option("--samples", flags.samples, "samples N")->capture_default_str();
    cmd->add_option("--bos", flags.bos, "auto|on|off: put the model's BOS token first (auto: as its tokenizer does)")
        ->capture_default_str();
    cmd->add_option("--seed", flags.seed, "seed of --input random")->capture_default_str();
    cmd->add_option("--tokenizer", flags.tokenizer,
                    "tokenizer for natural input instead of the model's own (tokenizer.json, vocab.json + merges.txt "
                    "folder, tokenizer.model, .tiktoken, llama2.c tokenizer .bin); its vocabulary must fit the model's");
}

NamedText natural_text(const InputSpec& input, const char* command) {
    if (input.kind != InputKind::natural) return {};
    if (!input.file.empty()) return {read_text_file(input.file, command), input.file};
    return default_validation_text();
}

ProbeSamples probe_samples(const ProbeModel& pm, const InputSpec& input, const NamedText& text, BosMode bos, int T,
                           int N, uint64_t seed) {
    const ModelConfig& c = pm.model->config();
    check_probe_seq_len(c, T);
    const std::optional<int32_t> bos_id = resolve_bos(bos, pm.bos_id, pm.adds_bos, c.vocab_size);
    return make_probe_samples(input, text.text, text.source, pm.tokenizer.get(), c.vocab_size, T, N, bos_id, seed);
}

}  // namespace sinklab::cli
