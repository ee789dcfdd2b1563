#pragma once
// One head's rotary rotation, for kernels that rotate inside their own loops: rope_forward (all the
// heads of many tokens) and the KV cache, whose keys are held before RoPE and rotated at their rows'
// positions as the cache kernel reads them (model/kv_cache.h).
#include <cstddef>

#include "ops/rope.h"

namespace sinklab {

// Rotates one head (its first rotary_dim floats) in place to `position`; sign -1 rotates back.
inline void rope_rotate_head(float* v, const RopeTable& table, int position, float sign = 1.0f) {
    const int half = table.rotary_dim / 2;
    const float* c = table.cos.data() + static_cast<size_t>(position) * half;
    const float* s = table.sin.data() + static_cast<size_t>(position) * half;
    #pragma omp simd
    for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - sign * b * s[i];
        v[i + half] = b * c[i] + sign * a * s[i];
    }
}

}  // namespace sinklab
