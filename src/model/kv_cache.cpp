#include "model/kv_cache.h"

#include <cmath>

#include "core/error.h"
#include "ops/vector_math.h"

namespace sinklab {

KVCache::KVCache(const ModelConfig& config, int capacity)
    : layers_(config.n_layers),
      capacity_(capacity),
      row_width_(static_cast<long>(config.n_kv_heads) * config.hs()) {
    SINKLAB_CHECK(capacity > 0, "model", "a KV cache needs room for at least one token, got capacity {}", capacity);
    keys_ = Tensor({layers_, capacity_, row_width_});
    values_ = Tensor({layers_, capacity_, row_width_});
    positions_.reserve(capacity_);
}

void KVCache::clear() {
    length_ = 0;
    positions_.clear();
}

float* KVCache::keys(int layer) { return keys_.data() + static_cast<long>(layer) * capacity_ * row_width_; }
float* KVCache::values(int layer) { return values_.data() + static_cast<long>(layer) * capacity_ * row_width_; }
const float* KVCache::keys(int layer) const {
    return keys_.data() + static_cast<long>(layer) * capacity_ * row_width_;
}
const float* KVCache::values(int layer) const {
    return values_.data() + static_cast<long>(layer) * capacity_ * row_width_;
}

void KVCache::commit(int n, const int* positions) {
    SINKLAB_ASSERT(n >= 0 && length_ + n <= capacity_);
    positions_.insert(positions_.end(), positions, positions + n);
    length_ += n;
}

void cached_attention_forward(float* out, long out_stride, float* weights, const CachedAttentionInputs& in,
                              const CachedAttentionDims& d, const AttentionMask& mask) {
    SINKLAB_ASSERT(d.NH % d.NKV == 0 && d.first_query + d.n_queries <= d.n_keys);
    const int group = d.NH / d.NKV, HS = d.HS, nq = d.n_queries, nk = d.n_keys;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int h = 0; h < d.NH; ++h) {
        for (int i = 0; i < nq; ++i) {
            const int kv_offset = (h / group) * HS;
            const float* q = in.q + static_cast<long>(i) * in.q_stride + static_cast<long>(h) * HS;
            float* row = weights + (static_cast<long>(h) * nq + i) * nk;  // (n_keys)
            const int query = d.first_query + i;
            const int lo = mask.lo(query), hi = mask.hi(query, nk);
            // scores s_j = scale <q, k_j>, optionally soft-capped, then the max-subtracted softmax
            float maxv = -INFINITY;
            for (int j = lo; j <= hi; ++j) {
                const float* k = in.k + static_cast<long>(j) * in.kv_stride + kv_offset;
                float dot = 0.0f;
                #pragma omp simd reduction(+ : dot)
                for (int c = 0; c < HS; ++c) dot += q[c] * k[c];
                float s = dot * in.scale;
                if (in.softcap > 0.0f) s = in.softcap * std::tanh(s / in.softcap);
                row[j] = s;
                maxv = s > maxv ? s : maxv;
            }
            float sum = 0.0f;
            #pragma omp simd reduction(+ : sum)
            for (int j = lo; j <= hi; ++j) {
                row[j] = exp_fast(row[j] - maxv);
                sum += row[j];
            }
            const float inv = 1.0f / sum;
            for (int j = 0; j < lo; ++j) row[j] = 0.0f;
            for (int j = lo; j <= hi; ++j) row[j] *= inv;
            for (int j = hi + 1; j < nk; ++j) row[j] = 0.0f;
            // out_h = sum_j w_j v_j
            float* o = out + static_cast<long>(i) * out_stride + static_cast<long>(h) * HS;
            for (int c = 0; c < HS; ++c) o[c] = 0.0f;
            for (int j = lo; j <= hi; ++j) {
                const float* v = in.v + static_cast<long>(j) * in.kv_stride + kv_offset;
                const float w = row[j];
                for (int c = 0; c < HS; ++c) o[c] += w * v[c];
            }
        }
    }
}

}  // namespace sinklab
