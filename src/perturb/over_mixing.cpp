#include "perturb/over_mixing.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/progress.h"

namespace sinklab {

ChangeSummary summarize_changes(std::vector<float> values) {
    values.erase(std::remove_if(values.begin(), values.end(), [](float v) { return std::isnan(v); }), values.end());
    ChangeSummary s;
    s.count = static_cast<long>(values.size());
    if (values.empty()) return s;
    double sum = 0.0;
    for (float v : values) sum += v;
    s.mean = sum / static_cast<double>(values.size());
    // linear interpolation between the order statistics around rank 0.9 (n - 1)
    const double rank = 0.9 * static_cast<double>(values.size() - 1);
    const size_t below = static_cast<size_t>(std::floor(rank));
    std::nth_element(values.begin(), values.begin() + static_cast<long>(below), values.end());
    const double low = values[below];
    const double high =
        below + 1 < values.size() ? *std::min_element(values.begin() + static_cast<long>(below) + 1, values.end()) : low;
    s.p90 = low + (rank - static_cast<double>(below)) * (high - low);
    return s;
}

namespace {

// ||a - b|| / ||b|| over n floats in double; NaN when ||b|| = 0.
float relative_change(const float* a, const float* b, int n) {
    double diff = 0.0, norm = 0.0;
    for (int i = 0; i < n; ++i) {
        const double d = static_cast<double>(a[i]) - b[i];
        diff += d * d;
        norm += static_cast<double>(b[i]) * b[i];
    }
    return norm > 0.0 ? static_cast<float>(std::sqrt(diff / norm)) : std::numeric_limits<float>::quiet_NaN();
}

// The positions a perturbation is measured at (OverMixingResult::distance_convention), in order:
// with `bidirectional` those before its first replaced token, then those after its last one.
struct MeasuredPositions {
    int before = 0, count = 0, last = 0;
    MeasuredPositions(const Perturbation& p, int T, bool bidirectional)
        : before(bidirectional ? p.first : 0), count(before + T - 1 - p.last()), last(p.last()) {}
    int position(int i) const { return i < before ? i : last + 1 + (i - before); }
    bool covers(int t) const { return t < before || t > last; }
    int distance(int t) const { return t > last ? t - last : before - t; }  // |d|, from 1
};

// Where each perturbation's values live: the residual stream at every position, the heads at the
// positions it is measured at.
struct Layout {
    int T = 0, L = 0, NH = 0;
    bool bidirectional = false;
    std::vector<long> head_offset;  // [perturbation] first pair of its measured positions
    long head_pairs = 0;
};

// Keeps the taps of a clean window's forward, then compares each perturbed forward's taps with them.
class ChangeObserver final : public TensorObserver {
public:
    ChangeObserver(const PerturbationSet& set, const Layout& layout, int sink, int C, int HS,
                   std::vector<std::vector<float>>& residual, std::vector<std::vector<float>>& heads)
        : set_(set), layout_(layout), sink_(sink), C_(C), HS_(HS), residual_(residual), heads_(heads),
          clean_blocks_(layout.L), clean_heads_(layout.L) {}

    // The next forward is the clean window (kept), or perturbation k (compared with it).
    void expect_clean() { perturbation_ = -1; }
    void expect_perturbation(int k) { perturbation_ = k; }

    void observe(Tap tap, int layer, const float* data, const Shape& shape) override {
        const bool block = tap == Tap::block_out;
        if (!block && tap != Tap::attn_out) return;
        std::vector<float>& clean = block ? clean_blocks_[layer] : clean_heads_[layer];
        if (perturbation_ < 0) {
            clean.assign(data, data + shape_numel(shape));
            return;
        }
        const int T = layout_.T, k = perturbation_;
        const MeasuredPositions measured(set_.perturbations[k], T, layout_.bidirectional);
        const long width = shape[1];
        if (block) {
            float* out = residual_[layer].data() + static_cast<long>(k) * T;
            #pragma omp parallel for schedule(static)
            for (int t = 0; t < T; ++t) {
                const long at = static_cast<long>(t + sink_) * width;
                out[t] = relative_change(data + at, clean.data() + at, C_);
            }
            return;
        }
        #pragma omp parallel for collapse(2) schedule(static)
        for (int h = 0; h < layout_.NH; ++h)
            for (int i = 0; i < measured.count; ++i) {
                const long at = static_cast<long>(measured.position(i) + sink_) * width + static_cast<long>(h) * HS_;
                heads_[static_cast<size_t>(layer) * layout_.NH + h][layout_.head_offset[k] + i] =
                    relative_change(data + at, clean.data() + at, HS_);
            }
    }

private:
    const PerturbationSet& set_;
    const Layout& layout_;
    int sink_, C_, HS_;
    std::vector<std::vector<float>>& residual_;  // [layer] (P, T)
    std::vector<std::vector<float>>& heads_;     // [layer * NH + head] (head pairs)
    std::vector<std::vector<float>> clean_blocks_, clean_heads_;  // [layer] the clean window's taps
    int perturbation_ = -1;
};

}  // namespace

OverMixingResult measure_over_mixing(Transformer& model, const PerturbationSet& set, const OverMixingOptions& options) {
    const auto start = std::chrono::steady_clock::now();
    const ModelConfig& c = model.config();
    set.validate(c.vocab_size);
    SINKLAB_CHECK(!set.perturbations.empty(), "perturb", "nothing to perturb");
    const int T = set.T, L = c.n_layers, NH = c.n_heads, HS = c.hs(), C = c.d_model;
    const int sink = c.attention.uses_sink_token() ? 1 : 0;
    const int P = static_cast<int>(set.perturbations.size()), W = set.window_count();

    const bool bidirectional = !c.causal;
    Layout layout{T, L, NH, bidirectional, std::vector<long>(P), 0};
    for (int k = 0; k < P; ++k) {
        layout.head_offset[k] = layout.head_pairs;
        layout.head_pairs += MeasuredPositions(set.perturbations[k], T, bidirectional).count;
    }
    std::vector<std::vector<float>> residual(L, std::vector<float>(static_cast<size_t>(P) * T));
    std::vector<std::vector<float>> heads(static_cast<size_t>(L) * NH, std::vector<float>(layout.head_pairs));
    std::vector<std::vector<int>> by_window(W);
    for (int k = 0; k < P; ++k) by_window[set.perturbations[k].window].push_back(k);

    ChangeObserver observer(set, layout, sink, C, HS, residual, heads);
    ForwardOptions forward;
    forward.training = false;
    forward.observer = &observer;
    forward.attention_kernel = options.kernel;
    forward.logits = false;
    forward.first_keys = options.first_keys;
    const bool with_loss = !set.loss.empty();
    Progress progress(options.label, W * (with_loss ? 2 : 1) + P, options.progress);
    // One sequence per forward, the clean window first: a row's rounding in a matrix product can
    // depend on where the row sits in the batch, and with every sequence at the same place the
    // positions a perturbation cannot reach compare exactly (0, not float noise).
    long done = 0;
    for (int w = 0; w < W; ++w) {
        observer.expect_clean();
        model.forward(set.windows.data() + static_cast<long>(w) * T, nullptr, 1, T, forward);
        for (int k : by_window[w]) {
            const std::vector<int32_t> perturbed = set.perturbed(k);
            observer.expect_perturbation(k);
            model.forward(perturbed.data(), nullptr, 1, T, forward);
        }
        done += 1 + static_cast<long>(by_window[w].size());
        progress.update(done);
    }
    OverMixingResult r;
    if (with_loss) {
        // every window has as many targets (a fixed share of its text tokens), so the mean over
        // windows is the mean over all targets
        ForwardOptions scored = forward;
        scored.observer = nullptr;
        scored.logits = true;
        double sum = 0.0;
        for (int w = 0; w < W; ++w) {
            const long at = static_cast<long>(w) * T;
            sum += model.forward(set.loss_tokens.data() + at, set.loss_targets.data() + at, 1, T, scored);
            progress.update(++done);
        }
        r.loss = set.loss;
        r.loss_value = sum / W;
    }
    progress.finish();

    r.layers = L;
    r.distance_convention = bidirectional ? kBidirectionalDistances : kCausalDistances;
    r.heads = NH;
    r.seq_len = T;
    r.windows = W;
    r.perturbations = P;
    r.residual_by_distance.assign(L, std::vector<double>(T - 1, 0.0));
    r.heads_by_distance.assign(L, std::vector<double>(T - 1, 0.0));
    r.pairs_by_distance.assign(T - 1, 0);
    r.residual_by_position.assign(L, std::vector<double>(T, 0.0));
    for (int l = 0; l < L; ++l) {
        std::vector<float> after;  // the residual's values at each perturbation's measured positions
        std::vector<long> counted(T, 0), counted_distance(T - 1, 0), counted_heads(T - 1, 0);
        for (int k = 0; k < P; ++k) {
            const MeasuredPositions measured(set.perturbations[k], T, bidirectional);
            const float* values = residual[l].data() + static_cast<long>(k) * T;
            for (int t = 0; t < T; ++t) {
                const bool is_measured = measured.covers(t);
                if (std::isnan(values[t])) {
                    r.zero_norm_skipped += is_measured;
                    continue;
                }
                r.residual_by_position[l][t] += values[t];
                ++counted[t];
                if (!is_measured) continue;
                after.push_back(values[t]);
                r.residual_by_distance[l][measured.distance(t) - 1] += values[t];
                ++counted_distance[measured.distance(t) - 1];
            }
            if (l == 0)
                for (int i = 0; i < measured.count; ++i) ++r.pairs_by_distance[measured.distance(measured.position(i)) - 1];
            for (int h = 0; h < NH; ++h) {
                const float* head_values = heads[static_cast<size_t>(l) * NH + h].data() + layout.head_offset[k];
                for (int i = 0; i < measured.count; ++i) {
                    const float v = head_values[i];
                    if (std::isnan(v)) {
                        ++r.zero_norm_skipped;
                        continue;
                    }
                    const int d = measured.distance(measured.position(i));
                    r.heads_by_distance[l][d - 1] += v;
                    ++counted_heads[d - 1];
                }
            }
        }
        for (int t = 0; t < T; ++t)
            r.residual_by_position[l][t] = counted[t] ? r.residual_by_position[l][t] / counted[t] : std::nan("");
        for (int d = 0; d < T - 1; ++d) {
            r.residual_by_distance[l][d] =
                counted_distance[d] ? r.residual_by_distance[l][d] / counted_distance[d] : std::nan("");
            r.heads_by_distance[l][d] = counted_heads[d] ? r.heads_by_distance[l][d] / counted_heads[d] : std::nan("");
        }
        r.residual.push_back(summarize_changes(std::move(after)));
        std::vector<ChangeSummary> per_head;
        std::vector<float> pooled;
        for (int h = 0; h < NH; ++h) {
            const std::vector<float>& v = heads[static_cast<size_t>(l) * NH + h];
            pooled.insert(pooled.end(), v.begin(), v.end());
            per_head.push_back(summarize_changes(v));
        }
        r.head.push_back(std::move(per_head));
        r.heads_pooled.push_back(summarize_changes(std::move(pooled)));
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

}  // namespace sinklab
