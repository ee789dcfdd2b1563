// DistilBERT (DistilBertForMaskedLM): the BERT family's blocks under other names and keys: no
// token types, positions from 0 (a sinusoidal table, sinusoidal_pos_embds, is stored in
// position_embeddings like a learned one and read as such), every LayerNorm with eps 1e-12, post-norm
// blocks (sa_layer_norm after attention, output_layer_norm after the FFN), and the masked-LM head
// vocab_transform, `activation`, vocab_layer_norm, vocab_projector tied to the token embeddings.
#include <fmt/format.h>

#include "core/error.h"
#include "model/architectures/architecture.h"
#include "model/architectures/bert_family.h"

namespace sinklab {

namespace {

ModelConfig read_config(const HfConfig& hf) {
    ModelConfig c = read_encoder_config(hf, {"dim", "n_layers", "n_heads", "hidden_dim", "activation"});
    c.norm_eps = 1e-12f;  // transformers' DistilBERT fixes every LayerNorm's eps
    c.tied_embeddings = hf.boolean("tie_weights_", true);
    return c;
}

void load_weights(WeightLoader& loader) {
    const ModelConfig& c = loader.config();
    SINKLAB_CHECK(loader.has("vocab_projector.bias"), "model",
                  "{}: no masked-LM head (vocab_projector.bias missing): sinklab loads DistilBertForMaskedLM "
                  "checkpoints, not the bare DistilBertModel",
                  loader.origin());
    auto linear = [&](const std::string& hf, const std::string& own_weight, const std::string& own_bias) {
        loader.copy(hf + ".weight", own_weight);
        loader.copy(hf + ".bias", own_bias);
    };
    loader.copy("distilbert.embeddings.word_embeddings.weight", "embed.tokens");
    loader.copy("distilbert.embeddings.position_embeddings.weight", "embed.positions");
    linear("distilbert.embeddings.LayerNorm", "embed.norm.weight", "embed.norm.bias");
    loader.skip_if_present("distilbert.embeddings.position_ids");
    for (int l = 0; l < c.n_layers; ++l) {
        const std::string hf = fmt::format("distilbert.transformer.layer.{}.", l), own = fmt::format("layers.{}.", l);
        linear(hf + "attention.q_lin", own + "attn.wq", own + "attn.bq");
        linear(hf + "attention.k_lin", own + "attn.wk", own + "attn.bk");
        linear(hf + "attention.v_lin", own + "attn.wv", own + "attn.bv");
        linear(hf + "attention.out_lin", own + "attn.wo", own + "attn.bo");
        linear(hf + "sa_layer_norm", own + "attn_norm.weight", own + "attn_norm.bias");
        linear(hf + "ffn.lin1", own + "mlp.w_up", own + "mlp.b_up");
        linear(hf + "ffn.lin2", own + "mlp.w_down", own + "mlp.b_down");
        linear(hf + "output_layer_norm", own + "mlp_norm.weight", own + "mlp_norm.bias");
    }
    linear("vocab_transform", "head.transform.weight", "head.transform.bias");
    linear("vocab_layer_norm", "final_norm.weight", "final_norm.bias");
    loader.copy("vocab_projector.bias", "head.bias");
    if (c.tied_embeddings)
        loader.skip_if_present("vocab_projector.weight");
    else
        loader.copy("vocab_projector.weight", "lm_head");
}

}  // namespace

const Architecture& distilbert_architecture() {
    static const Architecture architecture{"distilbert", read_config, load_weights};
    return architecture;
}

}  // namespace sinklab
