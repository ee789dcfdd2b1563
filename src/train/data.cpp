#include "train/data.h"

#include <algorithm>

#include "core/error.h"

namespace sinklab {

namespace fs = std::filesystem;

void fill_window(const uint8_t* bytes, int T, bool bos, int32_t* tokens, int32_t* targets) {
    if (bos) {
        tokens[0] = kByteBos;
        for (int t = 1; t < T; ++t) tokens[t] = bytes[t - 1];
        for (int t = 0; t < T; ++t) targets[t] = bytes[t];
    } else {
        for (int t = 0; t < T; ++t) {
            tokens[t] = bytes[t];
            targets[t] = bytes[t + 1];
        }
    }
}

BatchSampler::BatchSampler(const std::vector<uint8_t>& bytes, int B, int T, bool bos, uint64_t seed)
    : bytes_(bytes), B_(B), T_(T), bos_(bos), rng_(seed) {
    SINKLAB_CHECK(bytes.size() > static_cast<size_t>(window_bytes(T, bos)), "data",
                  "the training split ({} bytes) is shorter than one window of seq-len {}", bytes.size(), T);
}

void BatchSampler::next(int32_t* tokens, int32_t* targets, int first, int rows) {
    SINKLAB_ASSERT(first >= 0 && rows >= 0 && first + rows <= B_);
    const size_t span = bytes_.size() - static_cast<size_t>(window_bytes(T_, bos_)) + 1;
    for (int b = 0; b < B_; ++b) {
        const size_t offset = rng_.below(span);
        if (b < first || b >= first + rows) continue;
        const long row = b - first;
        fill_window(bytes_.data() + offset, T_, bos_, tokens + row * T_, targets + row * T_);
    }
}

std::vector<size_t> validation_windows(size_t n_bytes, int T, bool bos, int limit) {
    const size_t need = static_cast<size_t>(window_bytes(T, bos));
    // consecutive windows share one byte when there is no BOS (the last target is the next input)
    const size_t count = n_bytes >= need ? (n_bytes - (need - T)) / T : 0;
    SINKLAB_CHECK(count > 0, "data", "the validation split ({} bytes) is shorter than one window of seq-len {}",
                  n_bytes, T);
    std::vector<size_t> offsets;
    if (limit <= 0 || static_cast<size_t>(limit) >= count) {
        for (size_t i = 0; i < count; ++i) offsets.push_back(i * T);
    } else {
        for (int i = 0; i < limit; ++i) offsets.push_back((count * i / limit) * T);
    }
    return offsets;
}

}  // namespace sinklab
