// frame_sequence: an encoder's special tokens around one sequence or a pair (transformers'
// build_inputs_with_special_tokens and create_token_type_ids_from_sequences).
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace sinklab {

FramedInput frame_sequence(const Tokenizer& tokenizer, std::span<const int32_t> first,
                           std::optional<std::span<const int32_t>> second) {
    SINKLAB_CHECK(tokenizer.framing != SequenceFraming::none && tokenizer.cls_id && tokenizer.sep_id, "tokenizer",
                  "this {} tokenizer does not frame sequences with [CLS] / [SEP] tokens (only encoders' do)",
                  tokenizer.kind());
    const int32_t cls = *tokenizer.cls_id, sep = *tokenizer.sep_id;
    FramedInput out;
    out.ids.push_back(cls);
    out.ids.insert(out.ids.end(), first.begin(), first.end());
    out.ids.push_back(sep);
    out.token_types.assign(out.ids.size(), 0);
    if (!second) return out;
    const bool bert = tokenizer.framing == SequenceFraming::bert;
    if (!bert) out.ids.push_back(sep);  // <s> A </s></s> B </s>
    out.ids.insert(out.ids.end(), second->begin(), second->end());
    out.ids.push_back(sep);
    out.token_types.resize(out.ids.size(), bert ? 1 : 0);
    return out;
}

}  // namespace sinklab
