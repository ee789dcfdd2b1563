#pragma once
// Where the sink key sits among the queries: cosines of queries and keys after RoPE (Tap::qkv).
#include <vector>

namespace sinklab {

// The sink key's own manifold: per layer and query head, the mean over queries t of cos(q_t, k_1),
// and the mean over queries t > 1 of the mean over keys 1 < j <= t of cos(q_t, k_j) (causal
// pairs; prefix sums of the unit keys make it linear in T). Queries and keys after RoPE.
// Bidirectional models (causal false): the mean over all queries t of the mean over keys 1 < j <= T.
class SinkGeometryAccumulator {
public:
    SinkGeometryAccumulator(int layers, int heads, int kv_heads, int head_size, bool causal = true);
    void add(int layer, const float* qkv, int B, int T);  // qkv (B*T, (NH + 2 NKV) * HS)
    std::vector<std::vector<double>> cos_first() const;   // [layer][head]
    std::vector<std::vector<double>> cos_rest() const;

private:
    int L_, NH_, NKV_, HS_;
    bool causal_;
    std::vector<double> first_sum_, rest_sum_;  // (L, NH) of per-sample means
    std::vector<long> samples_;
};

}  // namespace sinklab
