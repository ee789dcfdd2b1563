// RoBERTa (RobertaForMaskedLM): the BERT family's encoder whose positions count the tokens that
// are not padding from padding_idx + 1 (pad_token_id, 1), so that position_embeddings holds
// max_position_embeddings = usable positions + padding_idx + 1 rows (514 = 512 + 2), while padding
// tokens read row padding_idx; one token type; the head lm_head, whose activation is the exact GELU
// whatever hidden_act says.
#include <fmt/format.h>

#include "model/architectures/architecture.h"
#include "model/architectures/bert_family.h"
#include "model/architectures/roberta.h"

namespace sinklab {

ModelConfig read_roberta_config(const HfConfig& hf) {
    ModelConfig c = read_bert_family_config(hf);
    c.type_vocab_size = hf.positive_int("type_vocab_size", 1);
    const int padding_idx = hf.has("pad_token_id") ? static_cast<int>(hf.token_ids("pad_token_id").front()) : 1;
    const int rows = hf.positive_int("max_position_embeddings", 514);
    if (rows <= padding_idx + 1)
        hf.fail("max_position_embeddings",
                fmt::format("({}) must exceed pad_token_id + 1 ({}): RoBERTa's positions start at padding_idx + 1", rows,
                            padding_idx + 1));
    c.position_offset = padding_idx + 1;
    c.padding_id = padding_idx;
    c.max_seq_len = rows - c.position_offset;
    c.head_transform = MlpKind::gelu_erf;  // RobertaLMHead calls gelu itself
    return c;
}

void load_roberta_weights(WeightLoader& loader) {
    load_bert_family_weights(loader,
                             {"roberta.", "lm_head.dense", "lm_head.layer_norm", "lm_head.bias", "lm_head.decoder"});
}

const Architecture& roberta_architecture() {
    static const Architecture architecture{"roberta", read_roberta_config, load_roberta_weights};
    return architecture;
}

}  // namespace sinklab
