#include "probe/probe_model.h"

#include <fmt/format.h>

namespace sinklab {

void check_tokenizer_fits(const Tokenizer& tokenizer, const std::filesystem::path& tokenizer_path, int64_t model_vocab) {
    const int64_t vocab = tokenizer.vocab_size();
    if (vocab <= model_vocab && model_vocab - vocab < kMaxVocabPadding) return;
    throw TokenizerMismatch("probe", fmt::format("--tokenizer {}: its vocabulary has {} tokens but the model's has {}; "
                                                 "pass the tokenizer the model was trained with",
                                                 tokenizer_path.string(), vocab, model_vocab));
}

ProbeModel load_probe_model(const std::filesystem::path& path, const std::filesystem::path& tokenizer) {
    ProbeModel p;
    p.model = load_model(path, &p.info);
    if (!tokenizer.empty()) {
        p.tokenizer = load_tokenizer(tokenizer);
        check_tokenizer_fits(*p.tokenizer, tokenizer, p.model->config().vocab_size);
    } else if (!p.info.tokenizer.empty())
        p.tokenizer = load_tokenizer(p.info.tokenizer);
    else if (p.info.source == "sinklab")  // byte-level; trained with --bos: vocab 257, BOS 256
        p.tokenizer = make_byte_tokenizer(p.info.bos_id.has_value());
    p.bos_id = p.tokenizer && p.tokenizer->bos_id ? p.tokenizer->bos_id : p.info.bos_id;
    p.adds_bos = p.tokenizer && p.tokenizer->add_bos_by_default;
    if (!p.model->config().causal) {
        const Tokenizer* t = p.tokenizer.get();
        p.cls_id = t && t->cls_id ? t->cls_id : p.info.bos_id;
        p.sep_id = t && t->sep_id ? t->sep_id
                   : p.info.eos_ids.empty() ? std::nullopt
                                            : std::optional<int32_t>(p.info.eos_ids.front());
        if (t) p.mask_id = t->mask_id;
    }
    return p;
}

SampleFrame sample_frame(const ProbeModel& p, BosMode mode) {
    const int V = p.model->config().vocab_size;
    if (!p.model->config().causal) return resolve_encoder_frame(mode, p.cls_id, p.sep_id, V);
    return resolve_bos(mode, p.bos_id, p.adds_bos, V);
}

}  // namespace sinklab
