#include "cli/probe_samples.h"

#include "core/files.h"
#include "model/transformer.h"
#include "probe/probe.h"

namespace sinklab::cli {

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
