#pragma once
// The BERT family's encoder, shared by BERT, RoBERTa and XLM-RoBERTa: config keys (hidden_size,
// num_hidden_layers, intermediate_size, hidden_act, type_vocab_size, layer_norm_eps, ...) and
// tensor names ({root}embeddings.word_embeddings, {root}encoder.layer.{i}.attention.self.query, ...).
// The blocks it configures are the engine's: bidirectional attention (causal false), post-norm
// LayerNorm blocks with biases, learned absolute positions, token-type embeddings, the embedding
// LayerNorm, and the masked-LM head (dense, activation, LayerNorm, decoder tied to the token
// embeddings, bias). Each family's file states its differences: RoBERTa's position offset and head names.
#include <string>

#include "model/architectures/hf_config.h"
#include "model/architectures/weight_loader.h"
#include "model/config.h"

namespace sinklab {

// hidden_act as the engine's activation: gelu is the exact (erf) GELU in transformers, gelu_new and
// gelu_pytorch_tanh the tanh approximation; relu.
MlpKind bert_activation(const HfConfig& hf, const char* key, const std::string& activation);

// The keys that name an encoder's sizes and activation (BERT: hidden_size, num_hidden_layers,
// num_attention_heads, intermediate_size, hidden_act; DistilBERT: dim, n_layers, n_heads,
// hidden_dim, activation).
struct EncoderKeys {
    const char *width, *layers, *heads, *ff, *activation;
};

// An encoder's design, shared by the families: bidirectional attention, post-norm LayerNorm blocks
// with biases, learned positions (max_position_embeddings), the embedding norm and the masked-LM
// head (the activation, a bias, the decoder tied unless the family's file says otherwise).
ModelConfig read_encoder_config(const HfConfig& hf, const EncoderKeys& keys);

// BERT's keys. Refuses what the engine does not compute: relative position embeddings
// (position_embedding_type other than absolute), is_decoder and cross-attention.
ModelConfig read_bert_family_config(const HfConfig& hf);

// Where a family keeps its tensors: the encoder under `root` ("bert.", "roberta."; a checkpoint
// saved without the prefix is read too) and the masked-LM head's names.
struct BertFamilyLayout {
    std::string root;
    std::string head_dense;    // cls.predictions.transform.dense | lm_head.dense
    std::string head_norm;     // cls.predictions.transform.LayerNorm | lm_head.layer_norm
    std::string head_bias;     // cls.predictions.bias | lm_head.bias
    std::string head_decoder;  // cls.predictions.decoder | lm_head.decoder (tied: omitted or skipped)
};

// Fills every parameter. The pooler and the next-sentence head of pre-training checkpoints
// ({root}pooler.*, cls.seq_relationship.*) and the cached position_ids buffer are skipped: the
// masked-LM forward does not read them. LayerNorm weights may carry the TensorFlow-era names
// gamma and beta (bert-base-uncased).
void load_bert_family_weights(WeightLoader& loader, const BertFamilyLayout& layout);

}  // namespace sinklab
