#pragma once
// AdamW with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW computes it, and
// global gradient-norm clipping (torch.nn.utils.clip_grad_norm_).
#include <cstddef>
#include <vector>

#include "core/tensor.h"
#include "model/transformer.h"

namespace sinklab {

struct AdamWOptions {
    float beta1 = 0.9f;
    float beta2 = 0.95f;
    float eps = 1e-8f;
    float weight_decay = 0.1f;
    bool decay_all = false;  // also decay norms, biases and embeddings
};

class AdamW {
public:
    AdamW(const Transformer& model, AdamWOptions options);
    // One update with learning rate lr; `step` counts from 1 (bias correction).
    void update(Transformer& model, float lr, long step);
    Tensor& first_moment() { return m_; }
    Tensor& second_moment() { return v_; }
    const AdamWOptions& options() const { return options_; }

private:
    AdamWOptions options_;
    std::vector<char> decays_;  // per parameter scalar, flattened
    Tensor m_, v_;
};

// Scales all gradients so that their global L2 norm is at most max_norm (no-op when max_norm <= 0).
// Returns the norm before clipping.
double clip_grad_norm(Transformer& model, double max_norm);

// Linear warmup from 0 over `warmup` steps, then cosine decay to min_lr at `total` steps.
// `step` counts from 1, as torch's LambdaLR evaluated after `step - 1` scheduler steps.
float learning_rate_at(long step, long warmup, long total, float max_lr, float min_lr);

}  // namespace sinklab
