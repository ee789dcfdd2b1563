#include "model/kv_cache.h"

#include "core/error.h"

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

}  // namespace sinklab
