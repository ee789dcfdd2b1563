#include "metrics/sink_scores.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace sinklab {

SinkScoreAccumulator::SinkScoreAccumulator(int layers, int heads, int positions, float eps, bool causal)
    : L_(layers), H_(heads), K_(positions), eps_(eps), causal_(causal),
      alpha_sum_(static_cast<size_t>(layers) * heads * (positions + 1), 0.0),
      above_(static_cast<size_t>(layers) * heads * (positions + 1), 0),
      samples_(layers, 0) {}

std::size_t SinkScoreAccumulator::index(int layer, int head, int k) const {
    SINKLAB_CHECK((k >= 1 && k <= K_) || (k == kSlot && has_slot_), "metrics",
                  "sink scores: position {} is not tracked ({})", k,
                  k == kSlot ? "these weights have no slot column" : fmt::format("positions 1..{}", K_));
    return (static_cast<size_t>(layer) * H_ + head) * (K_ + 1) + k;
}

void SinkScoreAccumulator::add(int layer, const float* weights, int B, int T) {
    add(layer, weights, nullptr, B, T, ProxyKind::none);
}

void SinkScoreAccumulator::begin_add(bool with_slot) {
    SINKLAB_CHECK(!any_added_ || has_slot_ == with_slot, "metrics",
                  "sink scores: slot weights must be given on every add or on none");
    any_added_ = true;
    has_slot_ = with_slot;
}

void SinkScoreAccumulator::record(int layer, int head, int k, double alpha) {
    alpha_sum_[index(layer, head, k)] += alpha;
    above_[index(layer, head, k)] += alpha > eps_;
}

void SinkScoreAccumulator::add(int layer, const float* weights, const float* slot_weights, int B, int T,
                               ProxyKind proxy) {
    SINKLAB_ASSERT(layer >= 0 && layer < L_);
    begin_add(slot_weights != nullptr);
    const int K = K_ < T ? K_ : T;
    std::vector<double> row_scale(T, 1.0);  // per query row, over its tokens and slot (metrics/proxy.h)
    auto read = [proxy](float w) { return proxy_read(proxy, w); };
    for (int b = 0; b < B; ++b) {
        for (int h = 0; h < H_; ++h) {
            const float* A = weights + (static_cast<long>(b) * H_ + h) * T * T;
            const float* S = slot_weights ? slot_weights + (static_cast<long>(b) * H_ + h) * T : nullptr;
            if (proxy != ProxyKind::none)
                for (int t = 0; t < T; ++t)
                    row_scale[t] = proxy_row_scale(proxy, A + static_cast<long>(t) * T, T, S ? read(S[t]) : 0.0);
            if (S) {
                double sum = 0.0;
                for (int t = 0; t < T; ++t) sum += read(S[t]) * row_scale[t];
                record(layer, h, kSlot, sum / T);
            }
            for (int k = 1; k <= K; ++k) {
                // the queries that see key k: t >= k, or all of them without a causal mask
                const int first_query = causal_ ? k : 1;
                double sum = 0.0;
                for (int t = first_query; t <= T; ++t)
                    sum += read(A[static_cast<long>(t - 1) * T + (k - 1)]) * row_scale[t - 1];
                record(layer, h, k, sum / (T - first_query + 1));
            }
        }
    }
    samples_[layer] += B;
}

void SinkScoreAccumulator::add_column_sums(int layer, const float* column_sums, const float* slot_sums, int B, int T,
                                           int columns) {
    if (columns == 0) columns = T;
    SINKLAB_ASSERT(layer >= 0 && layer < L_ && K_ <= T && K_ <= columns);
    begin_add(slot_sums != nullptr);
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < H_; ++h) {
            const long bh = static_cast<long>(b) * H_ + h;
            if (slot_sums) record(layer, h, kSlot, slot_sums[bh] / static_cast<double>(T));
            for (int k = 1; k <= K_; ++k)
                record(layer, h, k, column_sums[bh * columns + k - 1] / static_cast<double>(causal_ ? T - k + 1 : T));
        }
    samples_[layer] += B;
}

double SinkScoreAccumulator::sink_percent(int k) const {
    long above = 0, total = 0;
    for (int l = 0; l < L_; ++l) {
        for (int h = 0; h < H_; ++h) above += above_[index(l, h, k)];
        total += samples_[l] * H_;
    }
    return total > 0 ? 100.0 * above / total : 0.0;
}

std::vector<double> SinkScoreAccumulator::sink_percent_per_layer(int k) const {
    std::vector<double> out(L_, 0.0);
    for (int l = 0; l < L_; ++l) {
        long above = 0;
        for (int h = 0; h < H_; ++h) above += above_[index(l, h, k)];
        out[l] = samples_[l] > 0 ? 100.0 * above / (samples_[l] * H_) : 0.0;
    }
    return out;
}

std::vector<std::vector<double>> SinkScoreAccumulator::alpha(int k) const {
    std::vector<std::vector<double>> out(L_, std::vector<double>(H_, 0.0));
    for (int l = 0; l < L_; ++l)
        for (int h = 0; h < H_; ++h)
            out[l][h] = samples_[l] > 0 ? alpha_sum_[index(l, h, k)] / samples_[l] : 0.0;
    return out;
}

std::vector<double> SinkScoreAccumulator::alpha_per_layer(int k) const {
    std::vector<double> out(L_, 0.0);
    auto a = alpha(k);
    for (int l = 0; l < L_; ++l) {
        for (int h = 0; h < H_; ++h) out[l] += a[l][h];
        out[l] /= H_;
    }
    return out;
}

std::vector<double> SinkScoreAccumulator::totals() const {
    std::vector<double> t(alpha_sum_.begin(), alpha_sum_.end());
    t.insert(t.end(), above_.begin(), above_.end());
    t.insert(t.end(), samples_.begin(), samples_.end());
    t.push_back(has_slot_ ? 1.0 : 0.0);
    t.push_back(any_added_ ? 1.0 : 0.0);
    return t;
}

void SinkScoreAccumulator::set_totals(const std::vector<double>& t) {
    const size_t n = alpha_sum_.size();
    SINKLAB_ASSERT(t.size() == 2 * n + samples_.size() + 2);
    std::copy(t.begin(), t.begin() + static_cast<long>(n), alpha_sum_.begin());
    for (size_t i = 0; i < n; ++i) above_[i] = static_cast<long>(t[n + i]);
    for (size_t l = 0; l < samples_.size(); ++l) samples_[l] = static_cast<long>(t[2 * n + l]);
    has_slot_ = t[t.size() - 2] > 0;
    any_added_ = t[t.size() - 1] > 0;
}

void SlotWeightsTap::keep(int layer, const float* slot_weights, const Shape& shape) {
    weights_.assign(slot_weights, slot_weights + shape_numel(shape));
    layer_ = layer;
}

const float* SlotWeightsTap::take(int layer) {
    const float* kept = layer_ == layer ? weights_.data() : nullptr;
    layer_ = -1;
    return kept;
}

}  // namespace sinklab
