#pragma once
// Additive positional score biases, as (NH, T, T) tables for AttentionInputs::score_bias:
// bias(h, i, j) is added to the scaled score of query i and key j in head h (token columns only).
//
// ALiBi (Press et al. 2022, ofirpress/attention_with_linear_biases): bias = -m_h |i - j| with the
// fixed geometric slopes m_h of the paper's get_slopes. The reference code adds m_h j (the key
// position), which softmax cannot tell from -m_h (i - j); sinklab uses the distance itself so that
// the unnormalised designs (sigmoid, elu1, identity) see the paper's bias too. A prefix-LM query
// sees keys after it at the same distance penalty.
//
// Relative (T5, Raffel et al. 2020; Hugging Face T5Attention._relative_position_bucket with
// bidirectional=False): bias = table[bucket(j - i), h] with a learnable table (buckets, NH) shared
// by all layers, as T5 computes it once in its first layer and passes it down. Keys after the query
// (prefix LM) fall in bucket 0, as in T5's decoder.
#include <vector>

namespace sinklab {

inline constexpr int kRelativeBuckets = 32;
inline constexpr int kRelativeMaxDistance = 128;

// The ALiBi slope of each of NH heads: 2^(-8 (h + 1) / NH) for a power of two NH; otherwise the
// slopes of the nearest lower power of two followed by every other slope of twice that many.
std::vector<float> alibi_slopes(int NH);
// bias (NH, T, T) = -slope_h |i - j|
void alibi_bias(float* bias, int NH, int T);

// T5's unidirectional bucket of relative position j - i: exact up to buckets / 2, then log-spaced
// up to max_distance, the last bucket beyond.
int relative_position_bucket(int relative_position, int buckets = kRelativeBuckets,
                             int max_distance = kRelativeMaxDistance);
// bias (NH, T, T) from table (buckets, NH)
void relative_bias_forward(float* bias, const float* table, int NH, int T);
// Accumulates dtable (buckets, NH) from dbias (NH, T, T).
void relative_bias_backward(float* dtable, const float* dbias, int NH, int T);

}  // namespace sinklab
