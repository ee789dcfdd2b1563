#include "model/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "ops/rope_head.h"

namespace sinklab {

KVCache::KVCache(const ModelConfig& config, int capacity, const KvStorage& storage)
    : layers_(config.n_layers),
      capacity_(capacity),
      row_width_(static_cast<long>(config.n_kv_heads) * config.hs()),
      precision_(storage.precision) {
    SINKLAB_CHECK(capacity > 0, "model", "a KV cache needs room for at least one token, got capacity {}", capacity);
    const bool quantized = precision_ != KvPrecision::f32;
    SINKLAB_CHECK(!quantized || row_width_ % 2 == 0, "model", "int4 codes pair channels: NKV * HS ({}) must be even",
                  row_width_);
    float_slots_ = quantized ? std::clamp(storage.float_rows, 1, capacity) : capacity;
    float_keys_ = Tensor({layers_, float_slots_, row_width_});
    float_values_ = Tensor({layers_, float_slots_, row_width_});
    slot_.assign(static_cast<size_t>(capacity_), -1);
    if (!quantized)
        for (int row = 0; row < capacity_; ++row) slot_[row] = row;  // float32 rows stay in place
    positions_.reserve(capacity_);
    if (quantized) {
        const size_t rows = static_cast<size_t>(layers_) * capacity_;
        key_codes_.assign(rows * code_bytes(), 0);
        value_codes_.assign(rows * code_bytes(), 0);
        value_ranges_.assign(rows * 2 * value_groups(), 0.0f);
        key_group_.assign(static_cast<size_t>(capacity_), -1);
    }
    clear();
}

size_t KVCache::bytes() const {
    return static_cast<size_t>(float_keys_.numel() + float_values_.numel() + value_ranges_.size() + key_ranges_.size()) *
               sizeof(float) +
           key_codes_.size() + value_codes_.size();
}

void KVCache::clear() {
    length_ = 0;
    positions_.clear();
    free_slots_.clear();
    if (precision_ == KvPrecision::f32) return;
    std::fill(slot_.begin(), slot_.end(), -1);
    for (int s = float_slots_ - 1; s >= 0; --s) free_slots_.push_back(s);
    std::fill(key_group_.begin(), key_group_.end(), -1);
    group_rows_.clear();
    free_groups_.clear();
    key_ranges_.clear();
}

void KVCache::reserve(int n) {
    SINKLAB_ASSERT(n >= 0 && length_ + n <= capacity_);
    if (precision_ == KvPrecision::f32) return;
    for (int row = length_; row < length_ + n; ++row) {
        SINKLAB_CHECK(!free_slots_.empty(), "model",
                      "the quantized KV cache has no float32 room left for new tokens ({} rows)", float_slots_);
        slot_[row] = free_slots_.back();
        free_slots_.pop_back();
    }
}

float* KVCache::key_row(int layer, int row) {
    return float_keys_.data() + (static_cast<long>(layer) * float_slots_ + slot_[row]) * row_width_;
}
float* KVCache::value_row(int layer, int row) {
    return float_values_.data() + (static_cast<long>(layer) * float_slots_ + slot_[row]) * row_width_;
}
const float* KVCache::key_row(int layer, int row) const {
    return float_keys_.data() + (static_cast<long>(layer) * float_slots_ + slot_[row]) * row_width_;
}
const float* KVCache::value_row(int layer, int row) const {
    return float_values_.data() + (static_cast<long>(layer) * float_slots_ + slot_[row]) * row_width_;
}

float* KVCache::key_range(int group, int layer) {
    return key_ranges_.data() + (static_cast<size_t>(group) * layers_ + layer) * 2 * row_width_;
}
const float* KVCache::key_range(int group, int layer) const {
    return key_ranges_.data() + (static_cast<size_t>(group) * layers_ + layer) * 2 * row_width_;
}

void KVCache::commit(int n, const int* positions) {
    SINKLAB_ASSERT(n >= 0 && length_ + n <= capacity_);
    for (int row = length_; row < length_ + n; ++row) SINKLAB_ASSERT(slot_[row] >= 0);
    positions_.insert(positions_.end(), positions, positions + n);
    length_ += n;
}

const std::vector<int>& KVCache::key_positions_with(std::span<const int> incoming) {
    key_positions_.assign(positions_.begin(), positions_.end());
    key_positions_.insert(key_positions_.end(), incoming.begin(), incoming.end());
    return key_positions_;
}

void KVCache::set_position(int row, int position) {
    SINKLAB_ASSERT(row >= 0 && row < length_ && position >= 0);
    positions_[row] = position;
}

void KVCache::release_group(int group) {
    if (--group_rows_[group] == 0) free_groups_.push_back(group);
}

void KVCache::move_row(int from, int to) {
    positions_[to] = positions_[from];
    if (precision_ == KvPrecision::f32) {
        // float32 rows stay where their row is, so that the kernel reads them in place
        for (int l = 0; l < layers_; ++l) {
            std::memcpy(key_row(l, to), key_row(l, from), row_width_ * sizeof(float));
            std::memcpy(value_row(l, to), value_row(l, from), row_width_ * sizeof(float));
        }
        return;
    }
    slot_[to] = slot_[from];  // a float row keeps its slot
    slot_[from] = -1;
    key_group_[to] = key_group_[from];
    key_group_[from] = -1;
    const size_t bytes = code_bytes(), ranges = 2 * static_cast<size_t>(value_groups());
    for (int l = 0; l < layers_; ++l) {
        const size_t a = static_cast<size_t>(l) * capacity_ + from, b = static_cast<size_t>(l) * capacity_ + to;
        std::memcpy(&key_codes_[b * bytes], &key_codes_[a * bytes], bytes);
        std::memcpy(&value_codes_[b * bytes], &value_codes_[a * bytes], bytes);
        std::memcpy(&value_ranges_[b * ranges], &value_ranges_[a * ranges], ranges * sizeof(float));
    }
}

void KVCache::remove_rows(std::span<const int> rows, const std::function<void(int from, int to)>& moved) {
    const int n = static_cast<int>(rows.size());
    if (n == 0) return;
    SINKLAB_ASSERT(n <= length_);
    const int kept = length_ - n;
    // The holes below `kept` are filled by the survivors above it, in order.
    std::vector<char>& removed = removed_;
    removed.assign(static_cast<size_t>(length_), 0);
    for (int r : rows) {
        SINKLAB_ASSERT(r >= 0 && r < length_ && !removed[r]);
        removed[r] = 1;
        if (precision_ != KvPrecision::f32) {
            if (slot_[r] >= 0) free_slots_.push_back(slot_[r]);
            if (key_group_[r] >= 0) release_group(key_group_[r]);
            slot_[r] = -1;
            key_group_[r] = -1;
        }
    }
    int source = kept;
    for (int hole = 0; hole < kept; ++hole) {
        if (!removed[hole]) continue;
        while (removed[source]) ++source;
        move_row(source, hole);
        if (moved) moved(source, hole);
        ++source;
    }
    positions_.resize(kept);
    length_ = kept;
}

void KVCache::quantize(std::span<const int> rows) {
    SINKLAB_ASSERT(precision_ != KvPrecision::f32);
    const int n = static_cast<int>(rows.size());
    if (n == 0) return;
    int group;
    if (!free_groups_.empty()) {
        group = free_groups_.back();
        free_groups_.pop_back();
    } else {
        group = static_cast<int>(group_rows_.size());
        group_rows_.push_back(0);
        key_ranges_.resize(key_ranges_.size() + static_cast<size_t>(layers_) * 2 * row_width_);
    }
    group_rows_[group] = n;
    const int bits = kv_bits(precision_), W = static_cast<int>(row_width_);
    const size_t bytes = code_bytes(), ranges = 2 * static_cast<size_t>(value_groups());
    std::vector<float> keys(static_cast<size_t>(n) * row_width_);
    std::vector<uint8_t> codes(static_cast<size_t>(n) * bytes);
    for (int l = 0; l < layers_; ++l) {
        for (int i = 0; i < n; ++i) {
            SINKLAB_ASSERT(rows[i] < length_ && slot_[rows[i]] >= 0);
            std::memcpy(keys.data() + static_cast<size_t>(i) * row_width_, key_row(l, rows[i]), row_width_ * sizeof(float));
        }
        float* range = key_range(group, l);
        quantize_key_group(codes.data(), static_cast<long>(bytes), range, range + row_width_, keys.data(), row_width_, n,
                           W, bits);
        for (int i = 0; i < n; ++i) {
            const size_t at = static_cast<size_t>(l) * capacity_ + rows[i];
            std::memcpy(&key_codes_[at * bytes], codes.data() + i * bytes, bytes);
            float* value_range = &value_ranges_[at * ranges];
            quantize_value_row(&value_codes_[at * bytes], value_range, value_range + value_groups(), value_row(l, rows[i]),
                               W, bits);
        }
    }
    for (int row : rows) {
        free_slots_.push_back(slot_[row]);
        slot_[row] = -1;
        key_group_[row] = group;
    }
}

const float* KVCache::key_tile(int layer, int head, int HS, int j0, int j1, const int* positions,
                               const RopeTable* rope, float* scratch, long& stride) const {
    const long offset = static_cast<long>(head) * HS;
    if (precision_ == KvPrecision::f32 && !rope) {
        stride = row_width_;
        return key_row(layer, j0) + offset;
    }
    stride = HS;
    const int bits = kv_bits(precision_);
    for (int j = j0; j < j1; ++j) {
        float* out = scratch + static_cast<long>(j - j0) * HS;
        if (slot_[j] >= 0) {
            std::memcpy(out, key_row(layer, j) + offset, HS * sizeof(float));
        } else {
            const float* range = key_range(key_group_[j], layer);
            const size_t at = static_cast<size_t>(layer) * capacity_ + j;
            dequantize_key_row(out, &key_codes_[at * code_bytes()], range, range + row_width_, static_cast<int>(offset), HS,
                               bits);
        }
        if (rope) rope_rotate_head(out, *rope, positions[j]);
    }
    return scratch;
}

const float* KVCache::value_tile(int layer, int head, int HS, int j0, int j1, float* scratch, long& stride) const {
    const long offset = static_cast<long>(head) * HS;
    if (precision_ == KvPrecision::f32) {
        stride = row_width_;
        return value_row(layer, j0) + offset;
    }
    stride = HS;
    const int bits = kv_bits(precision_);
    const size_t ranges = 2 * static_cast<size_t>(value_groups());
    for (int j = j0; j < j1; ++j) {
        float* out = scratch + static_cast<long>(j - j0) * HS;
        if (slot_[j] >= 0) {
            std::memcpy(out, value_row(layer, j) + offset, HS * sizeof(float));
        } else {
            const size_t at = static_cast<size_t>(layer) * capacity_ + j;
            const float* range = &value_ranges_[at * ranges];
            dequantize_value_row(out, &value_codes_[at * code_bytes()], range, range + value_groups(),
                                 static_cast<int>(offset), HS, bits);
        }
    }
    return scratch;
}

}  // namespace sinklab
