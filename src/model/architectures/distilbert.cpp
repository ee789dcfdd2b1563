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
    ModelConfig c = ModelConfig::for_style("gpt2");  // LayerNorm, learned positions, biases
    c.causal = false;
    c.norm_placement = NormPlacement::post;
    c.vocab_size = hf.positive_int("vocab_size");
    c.d_model = hf.positive_int("dim");
    c.n_layers = hf.positive_int("n_layers");
    c.n_heads = hf.positive_int("n_heads");
    c.n_kv_heads = c.n_heads;
    if (c.d_model % c.n_heads != 0) hf.fail("n_heads", fmt::format("({}) must divide dim ({})", c.n_heads, c.d_model));
    c.d_ff = hf.positive_int("hidden_dim");
    c.max_seq_len = hf.positive_int("max_position_embeddings", 512);
    c.norm_eps = 1e-12f;  // transformers' DistilBERT fixes every LayerNorm's eps
    c.mlp = bert_activation(hf, "activation", hf.string("activation", "gelu"));
    c.head_transform = c.mlp;  // DistilBertForMaskedLM applies `activation` to vocab_transform
    c.head_bias = true;
    c.embed_norm = true;
    c.tied_embeddings = hf.boolean("tie_weights_", true);
    c.init_std = static_cast<float>(hf.positive_number("initializer_range", 0.02));
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
