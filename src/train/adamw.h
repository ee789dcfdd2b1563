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
    // One update with learning rate lr; `step` counts from 1 (bias correction). The gradients enter
    // multiplied by grad_scale (GradClip::scale), the same values as clipping them in place first,
    // without a pass of its own over them.
    void update(Transformer& model, float lr, long step, float grad_scale = 1.0f);
    Tensor& first_moment() { return m_; }
    Tensor& second_moment() { return v_; }
    const AdamWOptions& options() const { return options_; }

private:
    AdamWOptions options_;
    std::vector<char> decays_;  // per parameter scalar, flattened
    Tensor m_, v_;
};

// Global gradient-norm clipping as torch.nn.utils.clip_grad_norm_ does it: `norm` is the L2 norm of
// all gradients, and `scale` the factor that brings it to at most max_norm (1 when max_norm <= 0).
struct GradClip {
    double norm;
    float scale;
};
GradClip grad_clip(const Transformer& model, double max_norm);

// Linear warmup from 0 over `warmup` steps, then cosine decay to min_lr at `total` steps.
// `step` counts from 1, as torch's LambdaLR evaluated after `step - 1` scheduler steps.
float learning_rate_at(long step, long warmup, long total, float max_lr, float min_lr);

}  // namespace sinklab
