#include "train/adamw.h"

#include <cmath>

#include "core/reduce.h"

namespace sinklab {

AdamW::AdamW(const Transformer& model, AdamWOptions options)
    : options_(options), m_({static_cast<int64_t>(model.num_params())}), v_({static_cast<int64_t>(model.num_params())}) {
    decays_.assign(model.num_params(), 0);
    for (const auto& p : model.params()) {
        const char decay = options_.decay_all || p.decay;
        for (size_t i = 0; i < p.numel; ++i) decays_[p.offset + i] = decay;
    }
}

void AdamW::update(Transformer& model, float lr, long step, float grad_scale) {
    float* w = model.param_data();
    const float* g = model.grad_data();
    float* m = m_.data();
    float* v = v_.data();
    const char* decays = decays_.data();
    const float b1 = options_.beta1, b2 = options_.beta2, eps = options_.eps;
    // torch.optim.AdamW (single-tensor path): w *= 1 - lr wd; m, v updated; w -= lr m_hat / (sqrt(v_hat) + eps)
    const float bias1 = 1.0f - std::pow(b1, static_cast<float>(step));
    const float bias2_sqrt = std::sqrt(1.0f - std::pow(b2, static_cast<float>(step)));
    const float step_size = lr / bias1;
    const float decay_factor = 1.0f - lr * options_.weight_decay;
    const long n = static_cast<long>(model.num_params());
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) {
        w[i] *= decays[i] ? decay_factor : 1.0f;  // a select, not a branch, so that the loop vectorises
        const float gi = g[i] * grad_scale;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        const float denom = std::sqrt(v[i]) / bias2_sqrt + eps;
        w[i] -= step_size * m[i] / denom;
    }
}

GradClip grad_clip(const Transformer& model, double max_norm) {
    const float* g = model.grad_data();
    const long n = static_cast<long>(model.num_params());
    const double norm = std::sqrt(deterministic_sum(n, [g](long i) { return static_cast<double>(g[i]) * g[i]; }));
    // torch: clip_coef = max_norm / (total_norm + 1e-6), applied when < 1
    const bool clips = max_norm > 0 && norm > max_norm;
    return {norm, clips ? static_cast<float>(max_norm / (norm + 1e-6)) : 1.0f};
}

float learning_rate_at(long step, long warmup, long total, float max_lr, float min_lr) {
    if (warmup > 0 && step <= warmup) return max_lr * static_cast<float>(step) / static_cast<float>(warmup);
    if (step >= total) return min_lr;
    const double progress = static_cast<double>(step - warmup) / static_cast<double>(total - warmup);
    const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
    return static_cast<float>(min_lr + (max_lr - min_lr) * cosine);
}

}  // namespace sinklab
