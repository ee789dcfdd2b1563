// XLM-RoBERTa (model_type xlm-roberta): RoBERTa's architecture and tensor names; what differs is
// the tokenizer (SentencePiece with fairseq's ids, tokenizer/xlm_roberta_tokenizer.cpp).
#include "model/architectures/architecture.h"
#include "model/architectures/roberta.h"

namespace sinklab {

const Architecture& xlm_roberta_architecture() {
    static const Architecture architecture{"xlm-roberta", read_roberta_config, load_roberta_weights};
    return architecture;
}

}  // namespace sinklab
