#pragma once
// ModelConfig: the blueprint of one transformer. One schema covers sinklab's own styles and the
// pretrained families (DESIGN.md section 3); the blocks read it and never test an architecture name.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/attention_spec.h"

namespace sinklab {

enum class NormKind { layernorm, rmsnorm };
// Where a block normalises, for a sub-layer f (attention or MLP) and residual stream x:
// pre: x + f(norm(x)); post: norm(x + f(x)); sandwich: x + norm'(f(norm(x))) (Gemma 2);
// output: x + norm'(f(x)) (OLMo 2), norm' being a second norm with its own weights.
enum class NormPlacement { pre, post, sandwich, output };
enum class PositionKind { none, learned, sinusoidal, rope, alibi, relative };
// gelu: tanh approximation (GPT-2's gelu_new); gelu_erf: exact (GPT-NeoX's gelu). swiglu_clamped:
// gpt-oss's gated activation, gate clamped to <= swiglu_limit and up to [-limit, limit], then
// gate sigmoid(swiglu_alpha gate) (up + 1) (ops/activations.h).
enum class MlpKind { gelu, gelu_erf, relu, swiglu, geglu, swiglu_clamped };
// RMSNorm of the queries and keys before RoPE: per_head normalises each head's HS values with one
// (HS) weight shared by the heads (Qwen3); full normalises the whole NH*HS (NKV*HS) projection (OLMo 2).
enum class QkNorm { none, per_head, full };

struct ModelConfig {
    std::string style = "gpt2";  // gpt2 | llama: the family of defaults the config started from
    int vocab_size = 256;
    int d_model = 128;      // C
    int n_layers = 4;       // L
    int n_heads = 4;        // NH
    int n_kv_heads = 4;     // NKV
    int head_dim = 0;       // HS; 0 means d_model / n_heads
    int d_ff = 0;           // MLP hidden size; 0 means 4 C (gelu, relu) or the llama rule (swiglu)
    int max_seq_len = 1024; // positions the model can see (learned tables are this long)
    NormKind norm = NormKind::layernorm;
    NormPlacement norm_placement = NormPlacement::pre;
    PositionKind positions = PositionKind::learned;
    MlpKind mlp = MlpKind::gelu;
    bool linear_bias = true;  // biases on attention and MLP projections (gated MLPs: on the down projection)
    // Exceptions to linear_bias for the q/k/v projections and the attention output projection
    // (Qwen2: q/k/v biases only; Llama's attention_bias); unset means linear_bias.
    std::optional<bool> qkv_bias, out_bias;
    bool tied_embeddings = false;
    float norm_eps = 1e-5f;
    bool norm_affine = true;          // false: norms without weight or bias (OLMo's LayerNorm)
    float norm_weight_offset = 0.0f;  // RMSNorm scales by (offset + weight): Gemma stores w for 1 + w
    double rope_theta = 10000.0;
    // RoPE beyond plain theta^(-2i/R), computed by the checkpoint's architecture mapping (llama3,
    // linear and longrope scaling): rotary_dim R (0: the head size; GPT-NeoX rotates 25%), the R/2
    // inverse frequencies (empty: theta^(-2i/R)) and a factor multiplying cos and sin. longrope
    // (Phi-3) has a second set of frequencies for a forward whose last position is at least
    // rope_long_from, as Hugging Face switches between short and long factors.
    int rotary_dim = 0;
    std::vector<double> rope_inv_freq;
    double rope_attention_factor = 1.0;
    std::vector<double> rope_long_inv_freq;
    int rope_long_from = 0;
    AttentionSpec attention;
    int window = 0;  // sliding window (keys seen by a query, itself included); 0 = full causal
    // Per-layer windows overriding `window` (Gemma 2 alternates local and global layers); empty: all `window`.
    std::vector<int> layer_windows;
    int prefix = 0;  // prefix LM: the first `prefix` tokens are visible to every query
    float init_std = 0.02f;
    // Pretrained families' extras, off by default.
    bool parallel_residual = false;  // x + attn(norm1(x)) + mlp(norm2(x)) (GPT-NeoX)
    QkNorm qk_norm = QkNorm::none;
    // Attention logit soft-capping (Gemma 2) is attention.softcap (JSON key attn_logit_softcap).
    float final_logit_softcap = 0.0f;  // the same on the logits
    float embed_scale = 1.0f;          // token embeddings are multiplied by it (Gemma: sqrt(C))
    float swiglu_limit = 7.0f;         // mlp swiglu_clamped: the clamp (gpt-oss swiglu_limit)
    float swiglu_alpha = 1.702f;       // mlp swiglu_clamped: the sigmoid's slope (gpt-oss: 1.702)
    // Mixture of experts (gpt-oss, ops/moe.h): every block's MLP is moe_experts expert MLPs of
    // width d_ff with biases, moe_top_k of them chosen per token by a router (a linear layer with
    // bias) and weighted by the softmax of their router logits. The expert matrices are held in
    // MXFP4 (Transformer::quantized). 0: one dense MLP.
    int moe_experts = 0;
    int moe_top_k = 0;
    // Encoders (BERT, RoBERTa, XLM-R, DistilBERT), off by default.
    // causal false: bidirectional attention, every query sees every key (AttentionMask::causal).
    bool causal = true;
    // Learned positions: token t reads row t + position_offset (RoBERTa counts from padding_idx + 1).
    // padding_id (RoBERTa's create_position_ids_from_input_ids): a token of this id reads row
    // padding_id and is not counted, so the tokens after it keep their positions among the others.
    int position_offset = 0;
    std::optional<int> padding_id;
    int type_vocab_size = 0;  // token-type (segment) embeddings added to the tokens' (BERT: 2); 0: none
    bool embed_norm = false;  // a norm over the summed embeddings before the first block
    // The masked-LM head: a dense C -> C layer and this activation before the final norm, which
    // then normalises the head's hidden state rather than the last block's output (BERT's
    // cls.predictions.transform); unset: the final norm reads the last block.
    std::optional<MlpKind> head_transform;
    bool head_bias = false;  // a bias on the logits (the masked-LM decoder's)

    int hs() const { return head_dim > 0 ? head_dim : d_model / n_heads; }
    int ff() const;
    bool gated_mlp() const { return mlp == MlpKind::swiglu || mlp == MlpKind::geglu || mlp == MlpKind::swiglu_clamped; }
    int up_width() const { return gated_mlp() ? 2 * ff() : ff(); }  // rows of the up projection (gate, then up)
    bool moe() const { return moe_experts > 0; }
    int qkv_width() const { return (n_heads + 2 * n_kv_heads) * hs(); }
    bool has_qkv_bias() const { return qkv_bias.value_or(linear_bias); }
    bool has_out_bias() const { return out_bias.value_or(linear_bias); }
    int rope_dim() const { return rotary_dim > 0 ? rotary_dim : hs(); }
    int window_of(int layer) const { return layer_windows.empty() ? window : layer_windows[layer]; }
    // Rows of the position tables (learned, sinusoidal, RoPE): max_seq_len tokens, after the sink
    // token of sink_token attention, which takes position 0, and after position_offset rows.
    int position_rows() const { return max_seq_len + position_offset + (attention.uses_sink_token() ? 1 : 0); }
    // Positions enter as an additive score bias (AttentionInputs::score_bias, ops/position_bias.h).
    bool has_score_bias() const { return positions == PositionKind::alibi || positions == PositionKind::relative; }
    // A norm on each sub-layer's input (pre, sandwich) and on its output before the residual add
    // (sandwich, output). post normalises the residual sum instead, with the same two norms as pre
    // (attn_norm, mlp_norm).
    bool norms_sublayer_inputs() const {
        return norm_placement == NormPlacement::pre || norm_placement == NormPlacement::sandwich;
    }
    bool norms_sublayer_outputs() const {
        return norm_placement == NormPlacement::sandwich || norm_placement == NormPlacement::output;
    }
    // The features this configuration uses that Transformer::backward does not differentiate yet
    // (the pretrained families' extras), comma-separated; empty when the model is trainable.
    std::string inference_only_features() const;

    // Throws sinklab::Error("config", ...) naming the offending key.
    void validate() const;
    nlohmann::json to_json() const;
    // `source` names the file or flag the JSON came from, for error messages.
    static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
    // Defaults of a style ("gpt2": LayerNorm, learned positions, GELU, biases; "llama": RMSNorm,
    // RoPE, SwiGLU, no biases).
    static ModelConfig for_style(const std::string& style);
};

std::string to_string(NormKind v);
std::string to_string(NormPlacement v);
std::string to_string(PositionKind v);
std::string to_string(MlpKind v);
std::string to_string(QkNorm v);
NormKind parse_norm(const std::string& s);
NormPlacement parse_norm_placement(const std::string& s);
PositionKind parse_positions(const std::string& s);
MlpKind parse_mlp(const std::string& s);
QkNorm parse_qk_norm(const std::string& s);

}  // namespace sinklab
