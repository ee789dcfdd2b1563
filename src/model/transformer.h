#pragma once
// Transformer: parameters (one flat buffer, named views), forward with taps, backward.
// One engine for training, probing, generation and streaming (DESIGN.md section 1).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "attention/attention.h"
#include "attention/attention_kernel.h"
#include "attention/blockwise_attention.h"
#include "core/tensor.h"
#include "metrics/taps.h"
#include "model/config.h"
#include "ops/mxfp4.h"
#include "ops/rope.h"

namespace sinklab {

struct ParamInfo {
    std::string name;
    Shape shape;
    size_t offset = 0;  // into the flat parameter (and gradient) buffer
    size_t numel = 0;
    bool decay = false;  // AdamW weight decay applies (matrices of linear layers)
};

// Weights held quantized, outside the float32 parameter buffer: the experts' matrices of a
// mixture-of-experts MLP, `count` matrices of rows x cols values in MXFP4 (ops/mxfp4.h).
struct QuantizedInfo {
    std::string name;
    int count = 0, rows = 0, cols = 0;
};

// The named capture hook: every intermediate a tool may want passes through here
// (llama.cpp's cb(tensor, name, layer)), under one of the names of metrics/taps.h, which gives
// each tap's shape and order.
class TensorObserver {
public:
    virtual ~TensorObserver() = default;
    virtual void observe(Tap tap, int layer, const float* data, const Shape& shape) = 0;
    // Called with Tap::block_out just before it is observed and fed to the next block: an observer
    // may change the residual stream there (interventions, Sun et al. 2024). The default leaves it alone.
    virtual void intervene(Tap tap, int layer, float* data, const Shape& shape) {}
};

// How a forward computes attention (attention/attention_kernel.h; every design runs on both kernels).
// materialised: the reference kernel, whose (B, NH, T, T) weights are tapped as Tap::attn_weights
// and kept for backward. blockwise: never stores a T x T matrix, keeps a few numbers per query row
// for backward; taps Tap::attn_column_sums (B, NH, attention_columns), the weight each of the first
// keys receives, and Tap::attn_row_entropy (B, NH, T) instead, read through the design's proxy
// (metrics/proxy.h). Both tap Tap::attn_slot_weights first for designs with a slot.
struct ForwardOptions {
    bool training = true;  // keep every layer's activations for backward; false reuses one layer's buffers
    TensorObserver* observer = nullptr;
    AttentionKernel attention_kernel = AttentionKernel::automatic;
    int attention_columns = 1;  // blockwise taps: column sums of the first keys (a probe's positions)
    // false: stop after the last block (no final norm, logits or loss), for readers of the blocks'
    // taps; the (B*T, V) logits are then never allocated.
    bool logits = true;
    // A sink intervention on every layer's attention (attention_spec.h): the first keys hidden or
    // key 0 reweighted. With sink_token the sink token is key 0. Inference only (training = false).
    FirstKeyEdit first_keys{};
    // (B, T) segment ids of models with token-type embeddings (BERT's sentence pairs: 0 for
    // [CLS] A [SEP], 1 for B [SEP]); null: every token has type 0.
    const int32_t* token_types = nullptr;
    // (B) a right-padded batch: sequence b holds lengths[b] real tokens (1..T) and padding after
    // them, whose keys get weight exactly 0 in every query's row (AttentionMask::key_lengths; the
    // padded rows are computed as Hugging Face computes them, and their targets should be -1).
    // null: every sequence is T tokens long.
    const int* lengths = nullptr;
};

class KVCache;

class Transformer {
public:
    explicit Transformer(const ModelConfig& config);
    // The parameters a configuration has, in buffer order, without allocating them.
    static std::vector<ParamInfo> param_table(const ModelConfig& config);
    // Its quantized weights (the MoE experts' matrices: layers.{l}.mlp.experts.w_up (E, up_width, C)
    // and .w_down (E, C, F)), without allocating them.
    static std::vector<QuantizedInfo> quantized_table(const ModelConfig& config);

    const ModelConfig& config() const { return config_; }
    const std::vector<ParamInfo>& params() const { return params_; }
    size_t num_params() const { return num_params_; }
    float* param_data() { return weights_.data(); }
    const float* param_data() const { return weights_.data(); }
    float* grad_data() { return gradients(); }
    const float* grad_data() const { return grads_.data(); }  // null until a gradient is first needed
    const ParamInfo* find(std::string_view name) const;
    float* param(std::string_view name);  // throws when the model has no such parameter
    float* grad(std::string_view name);
    const std::vector<QuantizedInfo>& quantized_params() const { return quantized_infos_; }
    Mxfp4Matrices& quantized(std::string_view name);  // throws when the model has no such weight
    size_t quantized_bytes() const;                    // held by the quantized weights

    // N(0, init_std) for matrices and embeddings, residual output projections scaled by
    // 1/sqrt(2 L) (GPT-2), biases zero, norms the identity (weights one, or zero when
    // norm_weight_offset is one).
    void init_weights(uint64_t seed);

    // tokens, targets (B, T); targets may be null (no loss) and entries < 0 are ignored.
    // Returns the mean loss over counted targets (0 without targets).
    double forward(const int32_t* tokens, const int32_t* targets, int B, int T, const ForwardOptions& options = {});
    // Inference with a KV cache: runs `n` new tokens of one sequence, token i at position
    // positions[i] (RoPE angle, learned or sinusoidal position row), after the tokens the cache
    // holds; appends their keys and values to the cache. The new tokens attend to every held token
    // and causally among themselves (within the window). Returns their logits (n, V).
    // Full recompute and cached steps agree to float32 rounding (longrope switches its frequencies
    // on the positions of each call, as Hugging Face's cache does).
    const float* forward_step(const int32_t* tokens, const int* positions, int n, KVCache& cache,
                              TensorObserver* observer = nullptr);
    // After a training forward with targets: accumulates d(mean loss)/d(params) into the gradients.
    // Throws for the configurations whose extras have no backward yet (ModelConfig::inference_only_features).
    // `ready`, when given, hears of each part [first, last) of the gradient buffer as soon as backward
    // is done with it: the final norm and head first, then each layer from the last to the first,
    // then the embeddings; each part ends where the previous one began, and together they cover the
    // buffer (data-parallel training reduces them across ranks while backward computes the rest).
    using GradientsReady = std::function<void(size_t first, size_t last)>;
    void backward(const GradientsReady& ready = {});
    void zero_grad();

    // Views of the last forward. With sink_token, attention weights and hidden states cover the
    // T + 1 positions the blocks see (the sink token first); logits and losses the T real tokens.
    const float* logits() const { return acts_.logits.data(); }            // (B, T, V)
    const float* losses() const { return acts_.losses.data(); }            // (B, T)
    const float* attention_weights(int layer) const;                        // (B, NH, T, T), training forward
    const float* hidden(int layer) const;                                   // (B, T, C), 0 = embeddings, training forward
    int last_B() const { return acts_.B; }
    int last_T() const { return acts_.T; }

private:
    struct Layer;  // pointers to one layer's parameters (or gradients)
    // Where one block reads and writes its activations (block_buffers): its layer's own copy of each
    // when training, or the one copy inference shares among layers.
    struct BlockBuffers {
        const float* x = nullptr;  // (N, C) block input
        float* out = nullptr;      // (N, C) block output
        float *norm1 = nullptr, *norm1_mean = nullptr, *norm1_rstd = nullptr;
        float* qkv = nullptr;     // (N, QKV)
        float* attout = nullptr;  // (N, NH*HS)
        float* gate_logits = nullptr;  // (N, G) gated designs: x W_g, G = output_gate_width
        float* gated = nullptr;        // (N, NH*HS) gated designs: attout * sigmoid(gate_logits)
        float* mid = nullptr;     // (N, C)
        float *norm2 = nullptr, *norm2_mean = nullptr, *norm2_rstd = nullptr;
        // post placement: norm1 (norm2) holds the residual sum x + attn (mid + mlp) that the norm reads
        float* mlp_pre = nullptr;  // (N, F or 2F); null with a mixture of experts
        float* mlp_act = nullptr;  // (N, F)
        AttentionSaved saved;          // materialised: what the kernel keeps (weights (B, NH, T, T), ...)
        AttentionRowStats row_stats;   // blockwise: what the kernel keeps per query row (training)
    };
    // The attention of one block: from buf.qkv (N, QKV) after RoPE to buf.attout (N, NH*HS), over
    // whole sequences (forward, saving into buf.saved) or the KV cache (forward_step).
    using AttendFn = std::function<void(int layer, const BlockBuffers& buf)>;

    Layer layer_view(float* base, int l) const;
    // The design's learnable tensors of layer l (attention_param_infos), in the parameters or gradients.
    AttentionParams attention_params(int l);
    AttentionParamGrads attention_param_grads(int l);
    // The positional score bias the kernels compute (pe alibi, relative), none for the others.
    ScoreBias score_bias();
    // Prefix LM with a sink token: the prefix grows by the sink so that it covers the same tokens.
    // Bidirectional models and the key lengths of the last forward's padded batch are mask data too.
    AttentionMask attention_mask(int l, int sink) const;
    // The gradient buffer, allocated (zeroed) on first use: a model that only runs inference never holds one.
    float* gradients();
    void ensure_activations(int B, int T, bool training, AttentionKernel kernel = AttentionKernel::materialised);
    void ensure_gradient_buffers();
    const RopeTable& rope_table(int last_position);
    // The absolute position rows (learned or sinusoidal) from the row of position 0 (RoBERTa's
    // padding offset applied), or null for the other position kinds.
    const float* position_table();
    // Refuses a position beyond a learned table (nothing to extrapolate from); grows the sinusoidal
    // table. RoPE, ALiBi, relative and no positions take any position (rope_table grows).
    void check_positions(int last_position);
    // out (B*T, C): token embeddings, the sink token over row 0 of each sequence (sink_token), the
    // absolute position and the token type (token_types (B*T): models with token-type embeddings) of
    // each row, then the embedding norm of encoders.
    void embed(float* out, const int32_t* tokens, const int* positions, const int* token_types, int B, int T,
               bool sink_token);
    // The forward's token types, key lengths (padded batches) and positions (RoBERTa's padding ids
    // keep row padding_idx), from the options; B sequences of T tokens after `sink` sink tokens.
    void set_positions_and_padding(const ForwardOptions& options, int B, int T, int sink);
    // Layer l's buffers in the activations of the last ensure_activations, wired in one place for
    // forward, forward_step and backward.
    BlockBuffers block_buffers(int l);
    void block_forward(int l, const BlockBuffers& buf, int N, const int* positions, const RopeTable* rope,
                       const AttendFn& attend, TensorObserver* obs);
    // The gradient of block_forward, read from its saved buffers: dacts_.dresid holds dL/d(block
    // output) on entry and dL/d(block input) on return; the layer's parameter gradients accumulate.
    void block_backward(int l, const BlockBuffers& buf, int N, const AttentionDims& dims, const ScoreBias& bias);
    void head_forward(const float* last, int N, TensorObserver* obs);

    ModelConfig config_;
    std::vector<AttentionParamInfo> attention_param_infos_;  // the design's per-layer tensors
    std::vector<ParamInfo> params_;
    std::vector<QuantizedInfo> quantized_infos_;
    std::vector<Mxfp4Matrices> quantized_;  // in quantized_infos_ order
    size_t num_params_ = 0;
    Tensor weights_, grads_;
    RopeTable rope_, rope_long_;  // built on demand up to the positions used (rope_long_: longrope)
    Tensor sinusoidal_;  // (sinusoidal_rows_, C) when positions are sinusoidal: position_rows(), or more
    int sinusoidal_rows_ = 0;
    Tensor step_weights_;       // (NH, n, K) attention weights of the last forward_step
    Tensor step_slot_weights_;  // (NH, n) its slot weights (designs with a slot)

    struct Activations {
        int B = 0, T = 0;  // T: positions the blocks see, the sink token included
        // Copies of each per-layer activation: n_layers when training (backward reads every layer's),
        // 1 in inference (the layers take turns).
        int layer_copies = 0;
        int sink = 0;                  // 1 with sink_token: position 0 of every sequence is the sink
        FirstKeyEdit first_keys;       // the forward's ForwardOptions::first_keys
        bool training = false, has_targets = false;
        std::vector<int32_t> tokens, targets;
        std::vector<int> token_types;            // (N) models with token-type embeddings
        std::vector<int> positions;
        std::vector<int> lengths;                // (B) real tokens per sequence; empty: all T
        const RopeTable* rope = nullptr;         // the table the forward rotated with
        Tensor resid;                            // (layer_copies + 1, N, C) residual stream; 2 in inference
        Tensor norm1, norm1_mean, norm1_rstd;    // (layer_copies, N, C), (layer_copies, N)
        Tensor qkv;                              // (layer_copies, N, QKV)
        AttentionKernel kernel = AttentionKernel::materialised;  // the kernel this forward runs
        Tensor attw;                             // (layer_copies, B, NH, T, T), materialised kernel
        Tensor slot_weights;                     // (layer_copies, B, NH, T) designs with a slot, materialised
        Tensor row_sums;                         // (layer_copies, B, NH, T) designs that keep them (attention.h)
        Tensor scores;                           // (layer_copies, B, NH, T, T) designs that keep them
        Tensor row_shift, row_sum;               // (layer_copies, B, NH, T) blockwise training (blockwise_attention.h)
        std::vector<int32_t> row_argmax;         // (layer_copies, B, NH, T) blockwise training, softpick
        Tensor gate_logits;                      // (layer_copies, N, G) gated designs
        Tensor gated;                            // (layer_copies, N, NH*HS) gated designs
        Tensor attn_stats;                       // (3, B, NH, T) blockwise inference taps: column sums, row
                                                 // entropies, slot weights
        Tensor attout;                           // (layer_copies, N, NH*HS)
        Tensor mid;                              // (layer_copies, N, C)
        Tensor norm2, norm2_mean, norm2_rstd;    // (layer_copies, N, C), (layer_copies, N)
        Tensor mlp_pre;                          // (layer_copies, N, F or 2F)
        Tensor mlp_act;                          // (layer_copies, N, F)
        Tensor router_logits, routing;           // (N, E), (N, E): mixture-of-experts MLPs
        Tensor scratch;                          // (N, C)
        Tensor out_norm, out_norm_mean, out_norm_rstd;  // (N, C), (N), (N): sandwich / output norms
        Tensor qk_rows, qk_rstd;                 // (N * NH, HS or NH*HS) gathered q or k heads, their rstd
        Tensor head_in;                          // (B*T_real, C) sink_token: the real tokens' last hidden rows
        Tensor head_act;                         // (N, C) head_transform: the masked-LM head's activation
        Tensor final_norm, final_mean, final_rstd;  // (N, C), (N)
        Tensor logits, dlogits;                  // (N, V)
        Tensor losses;                           // (N)
        AttentionSaved saved_attention(int copy);  // copy's views of attw, slot_weights, row_sums, scores
        AttentionRowStats row_stats(int copy);     // copy's views of row_shift, row_sum, row_argmax
    } acts_;
    struct Gradients {
        long N = 0;
        Tensor dresid, dmid, dnorm, dfinal;  // (N, C); dmid for post-norm only
        Tensor dact, dpre;                   // (N, F), (N, F or 2F)
        Tensor datt;                         // (N, NH*HS)
        Tensor dgated, dgate;                // (N, NH*HS), (N, G) gated designs
        Tensor dqkv;                         // (N, QKV)
    } dacts_;
};

}  // namespace sinklab
