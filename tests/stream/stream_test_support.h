#pragma once
// Helpers shared by the streaming tests.
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace sinklab::test {

// n token ids drawn uniformly from [0, vocab).
inline std::vector<int32_t> random_ids(int n, int vocab, uint64_t seed) {
    Rng rng(seed);
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& id : ids) id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab)));
    return ids;
}

}  // namespace sinklab::test
