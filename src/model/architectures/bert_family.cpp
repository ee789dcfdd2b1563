#include "model/architectures/bert_family.h"

#include <fmt/format.h>

#include "core/error.h"

namespace sinklab {

MlpKind bert_activation(const HfConfig& hf, const char* key, const std::string& activation) {
    if (activation == "gelu") return MlpKind::gelu_erf;
    if (activation == "gelu_new" || activation == "gelu_pytorch_tanh" || activation == "gelu_fast") return MlpKind::gelu;
    if (activation == "relu") return MlpKind::relu;
    hf.fail(key, fmt::format("is '{}' (supported: gelu, gelu_new, gelu_pytorch_tanh, relu)", activation));
}

ModelConfig read_encoder_config(const HfConfig& hf, const EncoderKeys& keys) {
    ModelConfig c = ModelConfig::for_style("gpt2");  // LayerNorm, learned positions, biases
    c.causal = false;
    c.norm_placement = NormPlacement::post;
    c.vocab_size = hf.positive_int("vocab_size");
    c.d_model = hf.positive_int(keys.width);
    c.n_layers = hf.positive_int(keys.layers);
    c.n_heads = hf.positive_int(keys.heads);
    c.n_kv_heads = c.n_heads;
    if (c.d_model % c.n_heads != 0)
        hf.fail(keys.heads, fmt::format("({}) must divide {} ({})", c.n_heads, keys.width, c.d_model));
    c.d_ff = hf.positive_int(keys.ff);
    c.max_seq_len = hf.positive_int("max_position_embeddings", 512);
    c.mlp = bert_activation(hf, keys.activation, hf.string(keys.activation, "gelu"));
    c.head_transform = c.mlp;  // the head's transform applies the same activation (BERT, DistilBERT)
    c.head_bias = true;
    c.embed_norm = true;
    c.init_std = static_cast<float>(hf.positive_number("initializer_range", 0.02));
    return c;
}

ModelConfig read_bert_family_config(const HfConfig& hf) {
    ModelConfig c = read_encoder_config(
        hf, {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act"});
    c.type_vocab_size = hf.positive_int("type_vocab_size", 2);
    c.norm_eps = static_cast<float>(hf.positive_number("layer_norm_eps", 1e-12));
    c.tied_embeddings = hf.boolean("tie_word_embeddings", true);
    const std::string positions = hf.string("position_embedding_type", "absolute");
    if (positions != "absolute")
        hf.fail("position_embedding_type", "is '" + positions + "'; sinklab computes absolute positions only");
    if (hf.boolean("is_decoder", false))
        hf.fail("is_decoder", "is true; sinklab runs the BERT family as bidirectional encoders");
    if (hf.boolean("add_cross_attention", false))
        hf.fail("add_cross_attention", "is true; sinklab's encoders have no cross-attention");
    return c;
}

void load_bert_family_weights(WeightLoader& loader, const BertFamilyLayout& layout) {
    const ModelConfig& c = loader.config();
    // *ForMaskedLM saves "bert.embeddings...", the bare model "embeddings..."
    const std::string root = loader.has(layout.root + "embeddings.word_embeddings.weight") ? layout.root : "";
    SINKLAB_CHECK(loader.has(layout.head_bias), "model",
                  "{}: no masked-LM head ({} missing): sinklab loads masked-LM checkpoints (*ForMaskedLM, "
                  "*ForPreTraining), not the bare encoder", loader.origin(), layout.head_bias);
    // LayerNorm: weight and bias, or gamma and beta in checkpoints converted from TensorFlow
    auto norm = [&](const std::string& hf, const std::string& own) {
        const bool tf_names = !loader.has(hf + ".weight") && loader.has(hf + ".gamma");
        loader.copy(hf + (tf_names ? ".gamma" : ".weight"), own + ".weight");
        loader.copy(hf + (tf_names ? ".beta" : ".bias"), own + ".bias");
    };
    auto linear = [&](const std::string& hf, const std::string& own_weight, const std::string& own_bias) {
        loader.copy(hf + ".weight", own_weight);
        loader.copy(hf + ".bias", own_bias);
    };
    const std::string embeddings = root + "embeddings.";
    loader.copy(embeddings + "word_embeddings.weight", "embed.tokens");
    loader.copy(embeddings + "position_embeddings.weight", "embed.positions");
    loader.copy(embeddings + "token_type_embeddings.weight", "embed.token_types");
    norm(embeddings + "LayerNorm", "embed.norm");
    loader.skip_if_present(embeddings + "position_ids");
    loader.skip_if_present(embeddings + "token_type_ids");
    for (int l = 0; l < c.n_layers; ++l) {
        const std::string hf = fmt::format("{}encoder.layer.{}.", root, l), own = fmt::format("layers.{}.", l);
        linear(hf + "attention.self.query", own + "attn.wq", own + "attn.bq");
        linear(hf + "attention.self.key", own + "attn.wk", own + "attn.bk");
        linear(hf + "attention.self.value", own + "attn.wv", own + "attn.bv");
        linear(hf + "attention.output.dense", own + "attn.wo", own + "attn.bo");
        // post-norm: attn_norm normalises x + attention, mlp_norm the block's output
        norm(hf + "attention.output.LayerNorm", own + "attn_norm");
        linear(hf + "intermediate.dense", own + "mlp.w_up", own + "mlp.b_up");
        linear(hf + "output.dense", own + "mlp.w_down", own + "mlp.b_down");
        norm(hf + "output.LayerNorm", own + "mlp_norm");
    }
    linear(layout.head_dense, "head.transform.weight", "head.transform.bias");
    norm(layout.head_norm, "final_norm");
    loader.copy(layout.head_bias, "head.bias");
    if (c.tied_embeddings)
        loader.skip_if_present(layout.head_decoder + ".weight");
    else
        loader.copy(layout.head_decoder + ".weight", "lm_head");
    loader.skip_if_present(layout.head_decoder + ".bias");  // transformers ties it to the head's bias
    for (const char* unused : {"pooler.dense.weight", "pooler.dense.bias"}) loader.skip_if_present(root + unused);
    for (const char* unused : {"cls.seq_relationship.weight", "cls.seq_relationship.bias"}) loader.skip_if_present(unused);
}

}  // namespace sinklab
