#include "ops/cross_entropy.h"

#include <cmath>

#include "core/reduce.h"
#include "ops/vector_math.h"

namespace sinklab {

int count_targets(const int32_t* targets, int N) {
    int n = 0;
    for (int i = 0; i < N; ++i) n += targets[i] >= 0;
    return n;
}

double cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits, const int32_t* targets,
                                      int N, int V, float loss_scale) {
    const int counted = count_targets(targets, N);
    const float inv = counted > 0 ? loss_scale / counted : 0.0f;
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
        const float* z = logits + static_cast<long>(n) * V;
        float* dz = dlogits ? dlogits + static_cast<long>(n) * V : nullptr;
        const int target = targets[n];
        if (target < 0) {
            losses[n] = 0.0f;
            if (dz)
                for (int v = 0; v < V; ++v) dz[v] = 0.0f;
            continue;
        }
        float maxv = z[0];
        #pragma omp simd reduction(max : maxv)
        for (int v = 1; v < V; ++v) maxv = z[v] > maxv ? z[v] : maxv;
        // The exponentials go straight into dz (when wanted), then one scaling pass.
        float sum = 0.0f;
        if (dz) {
            #pragma omp simd reduction(+ : sum)
            for (int v = 0; v < V; ++v) {
                dz[v] = exp_fast(z[v] - maxv);
                sum += dz[v];
            }
        } else {
            #pragma omp simd reduction(+ : sum)
            for (int v = 0; v < V; ++v) sum += exp_fast(z[v] - maxv);
        }
        const float log_sum = std::log(sum) + maxv;
        const float loss = log_sum - z[target];
        losses[n] = loss;
        if (dz) {
            const float scale = inv / sum;
            #pragma omp simd
            for (int v = 0; v < V; ++v) dz[v] *= scale;
            dz[target] -= inv;
        }
    }
    const double total = deterministic_sum(N, [losses](long n) { return static_cast<double>(losses[n]); });
    return counted > 0 ? total / counted : 0.0;
}

}  // namespace sinklab
