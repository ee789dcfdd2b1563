#pragma once
// Transformer: parameters (one flat buffer, named views), forward with taps, backward.
// One engine for training, probing, generation and streaming (DESIGN.md section 1).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "attention/attention.h"
#include "core/tensor.h"
#include "model/config.h"
#include "ops/rope.h"

namespace sinklab {

struct ParamInfo {
    std::string name;
    Shape shape;
    size_t offset = 0;  // into the flat parameter (and gradient) buffer
    size_t numel = 0;
    bool decay = false;  // AdamW weight decay applies (matrices of linear layers)
};

// The named capture hook: every intermediate a tool may want passes through here
// (llama.cpp's cb(tensor, name, layer)). Names: "embed" (B*T, C), "qkv" (B*T, QKV) after RoPE,
// "attn_weights" (B, NH, T, T), "block_out" (B*T, C), "final_norm" (B*T, C), "logits" (B*T, V).
class TensorObserver {
public:
    virtual ~TensorObserver() = default;
    virtual void observe(std::string_view name, int layer, const float* data, const Shape& shape) = 0;
};

struct ForwardOptions {
    bool training = true;  // keep every layer's activations for backward; false reuses one layer's buffers
    TensorObserver* observer = nullptr;
};

class Transformer {
public:
    explicit Transformer(const ModelConfig& config);

    const ModelConfig& config() const { return config_; }
    const std::vector<ParamInfo>& params() const { return params_; }
    size_t num_params() const { return num_params_; }
    float* param_data() { return weights_.data(); }
    const float* param_data() const { return weights_.data(); }
    float* grad_data() { return grads_.data(); }
    const float* grad_data() const { return grads_.data(); }
    const ParamInfo* find(std::string_view name) const;
    float* param(std::string_view name);  // throws when the model has no such parameter
    float* grad(std::string_view name);

    // N(0, init_std) for matrices and embeddings, residual output projections scaled by
    // 1/sqrt(2 L) (GPT-2), biases zero, norm weights one.
    void init_weights(uint64_t seed);

    // tokens, targets (B, T); targets may be null (no loss) and entries < 0 are ignored.
    // Returns the mean loss over counted targets (0 without targets).
    double forward(const int32_t* tokens, const int32_t* targets, int B, int T, const ForwardOptions& options = {});
    // After a training forward with targets: accumulates d(mean loss)/d(params) into the gradients.
    void backward();
    void zero_grad();

    // Views of the last forward.
    const float* logits() const { return acts_.logits.data(); }            // (B, T, V)
    const float* losses() const { return acts_.losses.data(); }            // (B, T)
    const float* attention_weights(int layer) const;                        // (B, NH, T, T), training forward
    const float* hidden(int layer) const;                                   // (B, T, C), 0 = embeddings, training forward
    int last_B() const { return acts_.B; }
    int last_T() const { return acts_.T; }

private:
    struct Layer;  // pointers to one layer's parameters (or gradients)
    Layer layer_view(float* base, int l) const;
    void build_param_table();
    void ensure_activations(int B, int T, bool training);
    void ensure_gradient_buffers();

    ModelConfig config_;
    std::vector<ParamInfo> params_;
    size_t num_params_ = 0;
    Tensor weights_, grads_;
    RopeTable rope_;
    Tensor sinusoidal_;  // (max_seq_len, C) when positions are sinusoidal

    struct Activations {
        int B = 0, T = 0, slots = 0;
        bool training = false, has_targets = false;
        std::vector<int32_t> tokens, targets;
        std::vector<int> positions;
        Tensor resid;                            // (slots + 1, N, C) residual stream
        Tensor norm1, norm1_mean, norm1_rstd;    // (slots, N, C), (slots, N)
        Tensor qkv;                              // (slots, N, QKV)
        Tensor attw;                             // (slots, B, NH, T, T)
        Tensor attout;                           // (slots, N, NH*HS)
        Tensor mid;                              // (slots, N, C)
        Tensor norm2, norm2_mean, norm2_rstd;    // (slots, N, C), (slots, N)
        Tensor mlp_pre;                          // (slots, N, F or 2F)
        Tensor mlp_act;                          // (slots, N, F)
        Tensor scratch;                          // (N, C)
        Tensor final_norm, final_mean, final_rstd;  // (N, C), (N)
        Tensor logits, dlogits;                  // (N, V)
        Tensor losses;                           // (N)
    } acts_;
    struct Gradients {
        long N = 0;
        Tensor dresid, dmid, dnorm, dfinal;  // (N, C)
        Tensor dact, dpre;                   // (N, F), (N, F or 2F)
        Tensor datt;                         // (N, NH*HS)
        Tensor dqkv;                         // (N, QKV)
    } dacts_;
};

}  // namespace sinklab
