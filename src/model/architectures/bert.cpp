// BERT (BertForMaskedLM, BertForPreTraining): the BERT family's encoder with positions from 0, two
// token types (sentence A and B) and the head of cls.predictions.
#include "model/architectures/architecture.h"
#include "model/architectures/bert_family.h"

namespace sinklab {

namespace {

ModelConfig read_config(const HfConfig& hf) { return read_bert_family_config(hf); }

void load_weights(WeightLoader& loader) {
    load_bert_family_weights(loader, {"bert.", "cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm",
                                      "cls.predictions.bias", "cls.predictions.decoder"});
}

}  // namespace

const Architecture& bert_architecture() {
    static const Architecture architecture{"bert", read_config, load_weights};
    return architecture;
}

}  // namespace sinklab
